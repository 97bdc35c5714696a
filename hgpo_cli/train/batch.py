"""Step samples as tensors for the PPO update: left-padded so every response ends at the last column."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TrainSample:
    """One LLM turn to train on.

    prompt_ids: (P,) prompt tokens.  response_ids: (R,) sampled tokens.  advantage: the step's scalar,
    broadcast to all R tokens, unless token_advantages (R,) gives one per token (PPO's GAE).
    old_log_probs / ref_log_probs: (R,) under the rollout policy / reference.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float = 0.0
    old_log_probs: list[float] | None = None
    ref_log_probs: list[float] | None = None
    meta: dict = field(default_factory=dict)
    token_advantages: list[float] | None = None


@dataclass
class Collated:
    """input_ids, attention_mask, position_ids: (B, L).  response_mask, advantages, old_log_probs,
    ref_log_probs: (B, Rmax), right-aligned: column j is the token at input position L - Rmax + j."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor
    advantages: torch.Tensor
    old_log_probs: torch.Tensor | None
    ref_log_probs: torch.Tensor | None
    response_width: int


def _right_aligned(rows: list[list[float]], width: int) -> torch.Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, row in enumerate(rows):
        if row:
            out[i, width - len(row) :] = torch.tensor(row, dtype=torch.float32)
    return out


def collate(samples: list[TrainSample], pad_id: int) -> Collated:
    """Left-pad prompt+response rows; responses are right-aligned (the last R_i columns of row i)."""
    lengths = [len(s.prompt_ids) + len(s.response_ids) for s in samples]
    width = max(lengths)
    r_max = max(1, max(len(s.response_ids) for s in samples))
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(samples), width), dtype=torch.long)
    for i, s in enumerate(samples):
        ids = s.prompt_ids + s.response_ids
        input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[i, width - len(ids) :] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    response_mask = _right_aligned([[1.0] * len(s.response_ids) for s in samples], r_max)
    per_token = [
        s.token_advantages if s.token_advantages is not None else [s.advantage] * len(s.response_ids) for s in samples
    ]
    advantages = _right_aligned(per_token, r_max)
    has_old = all(s.old_log_probs is not None for s in samples)
    has_ref = all(s.ref_log_probs is not None for s in samples)
    return Collated(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=position_ids,
        response_mask=response_mask,
        advantages=advantages,
        old_log_probs=_right_aligned([s.old_log_probs for s in samples], r_max) if has_old else None,
        ref_log_probs=_right_aligned([s.ref_log_probs for s in samples], r_max) if has_ref else None,
        response_width=r_max,
    )


def response_logits(model: torch.nn.Module, batch: Collated, temperature: float = 1.0) -> torch.Tensor:
    """Logits that predict the response tokens: (B, Rmax, V), aligned with `batch.response_mask`, divided
    by the sampling `temperature` (the trained policy is the distribution the rollouts were drawn from)."""
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=batch.response_width + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1, :].float()
    return logits / temperature if temperature not in (0.0, 1.0) else logits


def response_targets(batch: Collated) -> torch.Tensor:
    """The response token ids, (B, Rmax), aligned with `response_logits`."""
    return batch.input_ids[:, -batch.response_width :]


def chunks(items: list, size: int) -> list[list]:
    """Consecutive slices of at most `size` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]
