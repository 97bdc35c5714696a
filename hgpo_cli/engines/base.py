"""What every rollout engine returns and the interface it implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Generation:
    """One sampled response.

    token_ids: (R,) response tokens, ending with the end-of-turn token when the model stopped by itself.
    log_probs: (R,) log-probability of each sampled token under softmax(logits / T), T the sampling
    temperature (T = 1 when sampling greedily), before top-k / top-p truncation: the distribution the
    trainer's log-probs use (`PolicyWorker(temperature=T)`). The HF engine computes them on the device,
    one generated step at a time, gathering only the sampled token's entry (no (B, R, V) array); the vLLM
    engine returns vLLM's own log-probs (its default mode: the raw logits, T = 1).
    text: the decoded response without special tokens.  finished: stopped by end-of-turn, not by length.
    """

    token_ids: list[int]
    log_probs: list[float]
    text: str
    finished: bool


@dataclass
class SamplingSettings:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0


class RolloutEngine(Protocol):
    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]: ...

    def load_weights(self, state_dict: dict[str, Any], partial: bool = False) -> None:
        """New policy weights; `partial`: only some tensors (one bucket of a bucketed sync)."""
        ...

    def close(self) -> None: ...
