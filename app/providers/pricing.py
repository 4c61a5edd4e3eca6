"""Token prices as data: the packaged `prices.json`, optionally overridden by a user file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from app.providers.base import Usage


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens."""

    input: float
    cached_input: float
    output: float

    def cost(self, usage: Usage) -> float:
        fresh = max(0, usage.input_tokens - usage.cached_input_tokens)
        return (
            fresh * self.input
            + usage.cached_input_tokens * self.cached_input
            + usage.output_tokens * self.output
        ) / 1_000_000


def _parse(raw: dict[str, Any]) -> dict[str, dict[str, Price]]:
    table: dict[str, dict[str, Price]] = {}
    for provider, models in raw.items():
        if provider.startswith("_") or not isinstance(models, dict):
            continue
        for model, p in models.items():
            table.setdefault(provider, {})[model] = Price(
                float(p["input"]), float(p.get("cached_input", p["input"])), float(p["output"])
            )
    return table


class PriceTable:
    def __init__(self, prices: dict[str, dict[str, Price]]) -> None:
        self._prices = prices

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        packaged = resources.files("app.providers").joinpath("prices.json").read_text()
        table = _parse(json.loads(packaged))
        if override is not None:
            for provider, models in _parse(json.loads(override.read_text())).items():
                table.setdefault(provider, {}).update(models)
        return cls(table)

    def price(self, provider: str, model: str) -> Price | None:
        models = self._prices.get(provider, {})
        best = max((m for m in models if model.startswith(m)), key=len, default=None)
        return models[best] if best else None

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        price = self.price(provider, model)
        return price.cost(usage) if price else 0.0
