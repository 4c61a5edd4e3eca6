"""Realtime usage from `response.done`, priced per modality.

`usage` = `{input_tokens, output_tokens, total_tokens, input_token_details: {text_tokens,
audio_tokens, cached_tokens, cached_tokens_details?: {text_tokens, audio_tokens}},
output_token_details: {text_tokens, audio_tokens}}`. Text tokens are priced at the model's
`openai` entry of the price table; audio tokens at its `openai_audio` entry (same model
names, longest prefix) when the table has one, else at the text price. Without token details
every token counts as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.providers.base import Usage
from app.providers.pricing import PriceTable

TEXT_PRICES = "openai"
AUDIO_PRICES = "openai_audio"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class RealtimeUsage:
    text: Usage
    audio: Usage

    @property
    def total(self) -> Usage:
        return self.text + self.audio

    @classmethod
    def parse(cls, usage: Any) -> RealtimeUsage:
        usage = _dict(usage)
        inp, out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        in_details = _dict(usage.get("input_token_details"))
        out_details = _dict(usage.get("output_token_details"))
        audio_in = min(inp, _int(in_details.get("audio_tokens")))
        audio_out = min(out, _int(out_details.get("audio_tokens")))
        cached = min(inp, _int(in_details.get("cached_tokens")))
        cached_split = _dict(in_details.get("cached_tokens_details"))
        if cached_split:
            cached_audio = min(audio_in, _int(cached_split.get("audio_tokens")))
        else:  # no split: count cached tokens as text first
            cached_audio = max(0, cached - (inp - audio_in))
        cached_text = min(inp - audio_in, cached - cached_audio)
        return cls(
            text=Usage(inp - audio_in, out - audio_out, max(0, cached_text)),
            audio=Usage(audio_in, audio_out, cached_audio),
        )

    def cost(self, prices: PriceTable, model: str) -> float:
        text_price = prices.price(TEXT_PRICES, model)
        if text_price is None:
            return 0.0
        audio_price = prices.price(AUDIO_PRICES, model) or text_price
        return text_price.cost(self.text) + audio_price.cost(self.audio)
