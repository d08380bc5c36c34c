"""What asking a model cost: calls and tokens, as the SDKs' responses report them.

Tokens are counted the same way for both providers, so that dashboards add them up:

- ``input_tokens``: every prompt token, the cached ones included (OpenAI's ``prompt_tokens``;
  Anthropic's ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``);
- ``cached_tokens``: the part of the input read from the provider's prompt cache (OpenAI's
  ``prompt_tokens_details.cached_tokens``; Anthropic's ``cache_read_input_tokens``);
- ``output_tokens``: the answer (OpenAI's ``completion_tokens``; Anthropic's ``output_tokens``).

A call that failed before an answer came counts as a call with no tokens. Plain data: no SDK here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ModelUsage:
    """Calls made and tokens spent; values add up with ``+``."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _F})

    def __sub__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in _F})

    def tokens(self) -> dict[str, int]:
        """Tokens by kind, as the metrics label them: ``input``, ``output``, ``cached``."""
        return {
            "input": self.input_tokens,
            "output": self.output_tokens,
            "cached": self.cached_tokens,
        }

    def to_json(self) -> dict[str, int]:
        """The usage as a small JSON object (how the pipeline's steps hand it on)."""
        return {"calls": self.calls, **self.tokens()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ModelUsage:
        """Inverse of :meth:`to_json`; missing or malformed values count as 0."""
        data = data or {}
        return cls(
            calls=_count(data.get("calls")),
            input_tokens=_count(data.get("input")),
            output_tokens=_count(data.get("output")),
            cached_tokens=_count(data.get("cached")),
        )


_F = fields(ModelUsage)


def _count(value: object) -> int:
    """A non-negative whole number from a JSON value (0 for anything else)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))
