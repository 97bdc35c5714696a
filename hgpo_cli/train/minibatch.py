"""How one iteration's step samples become optimizer steps: padding, order, rank split, micro-batch weights.

Pure Python (no torch): lengths in, index lists and weights out. Every rank computes the same plan from
the same seed, so no communication is needed to agree on it.

Two ways to scale the loss (``trainer.loss_scale``):

- ``micro`` (verl's ``dp_actor.update_policy``): each micro-batch's loss is aggregated on its own
  (``token-mean`` = a mean over that micro-batch's tokens), divided by the gradient-accumulation count
  ``GA = (ppo_mini_batch_size / world_size) / micro_batch_size`` and averaged over the ``world_size``
  ranks. Every micro-batch therefore weighs ``1 / (GA * world_size) = micro_batch_size /
  ppo_mini_batch_size``, whatever its token count; a short last mini-batch with ``k`` micro-batches per
  rank weighs ``k / GA`` of a full one (its loss is still divided by the full ``GA``).
- ``global`` (ours): a true aggregate over the whole mini-batch (all ranks): a micro-batch weighs its
  share of the mini-batch's tokens (``token-mean``) or of its non-empty sequences (``seq-mean-*``),
  so every token (or sequence) of a mini-batch weighs the same and every mini-batch sums to 1.

Order (``trainer.shuffle``) and padding (``trainer.pad_batch``):

- verl-agent's HGPO recipe computes the advantages, then pads the batch with copies of randomly chosen
  samples (``adjust_batch(mode="copy")``, distinct samples, appended at the end) so that its size
  divides ``micro_batch_size * world_size``; then it balances the ranks (``_balance_batch``: equal-size
  partitions with equal total sequence lengths, prompt + response tokens, each kept in batch order) and
  cuts every rank's share into consecutive mini-batches of ``ppo_mini_batch_size / world_size`` and
  micro-batches of ``micro_batch_size``, in the same order for every epoch: ``shuffle=False``.
- ours (``shuffle=True``): a fresh random permutation per epoch, global mini-batches of
  ``ppo_mini_batch_size`` consecutive samples, rank ``r`` taking every ``world_size``-th one from ``r``.

The weights assume the gradients of all ranks are **summed** (``all_reduce(SUM)``); a reduction that
averages over ranks must multiply them by ``world_size``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hgpo_cli.dedup import group_by_key

__all__ = [
    "LOSS_SCALES",
    "PAD_MODES",
    "MicroBatch",
    "UpdatePlan",
    "balanced_partitions",
    "padding_copies",
    "plan_update",
    "prompt_chunks",
]

LOSS_SCALES: tuple[str, ...] = ("micro", "global")
PAD_MODES: tuple[str, ...] = ("copy", "none")


@dataclass(frozen=True)
class MicroBatch:
    """One forward/backward pass: ``indices`` into the sample list (a padding copy repeats an index);
    ``weight``: the factor the micro-batch's aggregated loss is multiplied by before ``backward``."""

    indices: tuple[int, ...]
    weight: float


@dataclass
class UpdatePlan:
    """``steps[s][r]``: the micro-batches rank ``r`` runs for optimizer step ``s`` (over all epochs);
    ``copies``: the sample indices appended as padding (empty when nothing was padded)."""

    steps: list[list[list[MicroBatch]]] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)


def padding_copies(n: int, divisor: int, rng: np.random.Generator) -> list[int]:
    """Indices of the samples to append so that ``n + len(copies)`` is a multiple of ``divisor``.

    As verl-agent's ``adjust_batch(mode="copy")``: ``divisor - n % divisor`` samples drawn at random
    without replacement (with replacement only when more copies than samples are needed). [] if none.
    """
    if n <= 0 or divisor <= 1 or n % divisor == 0:
        return []
    to_add = divisor - n % divisor
    return sorted(int(i) for i in rng.choice(n, size=to_add, replace=to_add > n))


def balanced_partitions(lengths: list[int], k: int) -> list[list[int]]:
    """Split positions ``0..len(lengths)-1`` into ``k`` partitions of equal size with totals as even as
    the largest differencing method (Karmarkar-Karp) makes them, as verl's ``_balance_batch`` does.

    Needs ``len(lengths) % k == 0``. Returns k lists of positions, each sorted ascending, the partition
    with the largest total first.
    """
    n = len(lengths)
    if k <= 0 or n % k:
        raise ValueError(f"{n} items cannot be split into {k} partitions of equal size")
    if k == 1:
        return [list(range(n))]
    ranked = sorted(range(n), key=lambda i: (lengths[i], i))
    # A state: k partial partitions as (total, positions), largest total first; the heap pops the state
    # with the widest spread first, and merging two states pairs the largest of one with the smallest of
    # the other, which is what keeps the final totals close.
    heap: list[tuple[int, int, list[tuple[int, list[int]]]]] = []
    for serial, start in enumerate(range(0, n, k)):
        parts = sorted(((lengths[i], [i]) for i in ranked[start : start + k]), key=lambda p: -p[0])
        heapq.heappush(heap, (-(parts[0][0] - parts[-1][0]), serial, parts))
    serial = len(heap)
    while len(heap) > 1:
        _, _, first = heapq.heappop(heap)
        _, _, second = heapq.heappop(heap)
        merged = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(first, reversed(second), strict=True)]
        merged.sort(key=lambda p: -p[0])
        heapq.heappush(heap, (-(merged[0][0] - merged[-1][0]), serial, merged))
        serial += 1
    return [sorted(positions) for _, positions in heap[0][2]]


def _micro_chunks(positions: list[int], size: int) -> list[list[int]]:
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def _row_chunks(positions: list[int], size: int, keys: Sequence[Hashable]) -> list[list[int]]:
    """Micro-batches of at most `size` distinct rows (`keys[position]`), each row with all its copies in
    this share (the forward pass runs once per distinct row; see hgpo_cli.dedup)."""
    groups = group_by_key(positions, keys)
    return [[p for group in groups[i : i + size] for p in group] for i in range(0, len(groups), size)]


def prompt_chunks(
    positions: list[int], size: int, prompt_keys: Sequence[Hashable], packed: Callable[[list[int]], int], sort: bool
) -> list[list[int]]:
    """Micro-batches of at most `size` distinct prompts (`prompt_keys[position]`), each with every sample of
    it in this share (one packed row per prompt; see hgpo_cli.train.shared_prompts); with `sort`, the
    prompts in order of their packed rows' lengths (`packed(group)`)."""
    groups = group_by_key(positions, prompt_keys)
    if sort:
        groups.sort(key=lambda group: (packed(group), group[0]))
    return [[p for group in groups[i : i + size] for p in group] for i in range(0, len(groups), size)]


def _rank_layout(order: list[int], lengths: list[int], world_size: int, balance: bool) -> list[list[int]]:
    """Each rank's share of ``order`` (as values of ``order``): balanced equal-size partitions kept in
    order when ``balance`` and the size divides, else every ``world_size``-th element."""
    if world_size == 1:
        return [list(order)]
    if balance and len(order) % world_size == 0 and order:
        parts = balanced_partitions([lengths[i] for i in order], world_size)
        return [[order[p] for p in part] for part in parts]
    return [order[r::world_size] for r in range(world_size)]


def plan_update(
    response_lengths: list[int],
    total_lengths: list[int],
    *,
    mini_batch_size: int,
    micro_batch_size: int,
    world_size: int = 1,
    epochs: int = 1,
    loss_scale: str = "micro",
    agg_mode: str = "token-mean",
    shuffle: bool = False,
    pad: str = "copy",
    seed: int = 0,
    sort_by_length: bool = False,
    row_keys: Sequence[Hashable] | None = None,
    prompt_keys: Sequence[Hashable] | None = None,
) -> UpdatePlan:
    """The optimizer steps of one PPO update over N samples.

    response_lengths: (N,) response tokens per sample (what the loss counts); total_lengths: (N,) prompt +
    response tokens (what verl balances the ranks on). See the module docstring for the two layouts and
    the two weightings. A micro-batch without response tokens gets weight 0 (its loss is 0 either way).
    sort_by_length (loss_scale=global only, where a micro-batch's make-up does not change the loss): each
    rank's share of a mini-batch is cut into micro-batches of similar total lengths (less padding).
    row_keys: (N,) what each sample's forward pass depends on (`hgpo_cli.dedup.row_key`); with
    loss_scale=global, a micro-batch holds up to `micro_batch_size` distinct rows and every copy of them
    in the rank's share of the mini-batch (its weight counts all of them), so identical samples share
    one forward pass. Ignored under loss_scale=micro, whose micro-batch make-up is part of the loss.
    prompt_keys: (N,) each sample's prompt (trainer.share_prompts); with loss_scale=global, a micro-batch
    holds up to `micro_batch_size` distinct prompts and every sample of them in the rank's share of the
    mini-batch (one packed row per prompt), in order of the packed rows' lengths under sort_by_length
    (each distinct response counted once: the distinct rows of `row_keys`, else every sample). Ignored
    under loss_scale=micro.
    """
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"unknown loss_scale {loss_scale!r}; allowed: {', '.join(LOSS_SCALES)}")
    if pad not in PAD_MODES:
        raise ValueError(f"unknown pad mode {pad!r}; allowed: {', '.join(PAD_MODES)}")
    if len(response_lengths) != len(total_lengths):
        raise ValueError("response_lengths and total_lengths differ in length")
    if min(mini_batch_size, micro_batch_size, world_size, epochs) < 1:
        raise ValueError("mini_batch_size, micro_batch_size, world_size and epochs must be >= 1")
    n = len(response_lengths)
    rng = np.random.default_rng(seed)
    copies = padding_copies(n, micro_batch_size * world_size, rng) if pad == "copy" else []
    samples = list(range(n)) + copies
    # positions in `samples` are what the layout works on; a copy has its own position
    resp = [response_lengths[i] for i in samples]
    total = [total_lengths[i] for i in samples]
    token_mean = agg_mode == "token-mean"
    keys = [row_keys[i] for i in samples] if row_keys is not None and loss_scale == "global" else None
    prompts = [prompt_keys[i] for i in samples] if prompt_keys is not None and loss_scale == "global" else None

    def packed(group: list[int]) -> int:
        """Tokens of the packed row of `group` (positions sharing a prompt): the prompt once, each
        distinct response once."""
        distinct = list({keys[p]: p for p in group}.values()) if keys is not None else group
        return total[group[0]] - resp[group[0]] + sum(resp[p] for p in distinct)

    def units(positions: list[int]) -> int:
        return sum(resp[p] for p in positions) if token_mean else sum(1 for p in positions if resp[p] > 0)

    plan = UpdatePlan(copies=copies)
    fixed = [] if shuffle else _rank_layout(list(range(len(samples))), total, world_size, balance=True)
    for _ in range(epochs):
        if shuffle:
            order = [int(i) for i in rng.permutation(len(samples))]
            minis = [order[i : i + mini_batch_size] for i in range(0, len(order), mini_batch_size)]
            per_step = [[mini[r::world_size] for r in range(world_size)] for mini in minis]
        else:
            share = max(1, mini_batch_size // world_size)
            count = max((math.ceil(len(part) / share) for part in fixed), default=0)
            per_step = [[part[s * share : (s + 1) * share] for part in fixed] for s in range(count)]
        for ranks in per_step:
            normaliser = max(1, sum(units(part) for part in ranks))
            step: list[list[MicroBatch]] = []
            for part in ranks:
                micros = []
                if sort_by_length and loss_scale == "global":
                    part = sorted(part, key=lambda p: (total[p], p))
                if prompts is not None:
                    chunks = prompt_chunks(part, micro_batch_size, prompts, packed, sort_by_length)
                elif keys is None:
                    chunks = _micro_chunks(part, micro_batch_size)
                else:
                    chunks = _row_chunks(part, micro_batch_size, keys)
                for chunk in chunks:
                    if units(chunk) == 0:
                        weight = 0.0
                    elif loss_scale == "micro":
                        weight = micro_batch_size / mini_batch_size
                    else:
                        weight = units(chunk) / normaliser
                    micros.append(MicroBatch(tuple(samples[p] for p in chunk), weight))
                step.append(micros)
            plan.steps.append(step)
    return plan
