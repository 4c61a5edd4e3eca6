"""Names the settings and the API shapes share: the providers the service knows and what a
model name may look like. Kept apart from `app.core.config` so the shapes (and the client that
reads them) load without pydantic-settings."""

from __future__ import annotations

from typing import Literal

ProviderName = Literal["openai", "anthropic", "gemini"]
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"  # a provider's model name
