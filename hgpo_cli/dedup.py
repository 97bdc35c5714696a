"""Identical rows share one forward pass: step samples in the log-prob passes and the update
(trainer.dedup_samples), prompts in the HF engine's prefill (rollout.dedup_prefill).

A group's rollouts often meet the same state with the same memory and reply alike: on the main job's
batches 12-19% of the step samples repeat another's prompt and response token for token (measured on
three iterations of the default preset). Their log-probabilities, entropies and gradients per token are
the same function of the same tokens, so one forward pass of the distinct row serves all its copies: the
loss still counts every sample with its own advantage and old / reference log-probs, and gradients flow
back through the row to each copy's loss term. Only the summation order changes (float rounding).

Pure Python: keys and index maps, no torch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any


def row_key(sample: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """What a forward pass of a TrainSample depends on: its prompt and response token ids."""
    return tuple(sample.prompt_ids), tuple(sample.response_ids)


def unique_rows(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """(first, row_of): `first[u]` is the position of the u-th distinct key in `keys` (first occurrence
    order) and `row_of[i]` the distinct row that position i maps to, so `keys[i] == keys[first[row_of[i]]]`."""
    row: dict[Hashable, int] = {}
    first: list[int] = []
    row_of: list[int] = []
    for i, key in enumerate(keys):
        if key not in row:
            row[key] = len(first)
            first.append(i)
        row_of.append(row[key])
    return first, row_of


def group_by_key(positions: Sequence[int], keys: Sequence[Hashable]) -> list[list[int]]:
    """`positions` grouped by `keys[position]`, groups in order of first occurrence, positions in order."""
    groups: dict[Hashable, list[int]] = {}
    for p in positions:
        groups.setdefault(keys[p], []).append(p)
    return list(groups.values())
