"""Step samples with the same prompt share its forward pass (`trainer.share_prompts`).

A group's first turn is one prompt answered `group_size` times, and rollouts that meet the same state with
the same memory repeat a prompt with another reply. Each distinct prompt becomes one packed row: the
prompt, then each of its distinct responses one after the other. The position ids restart after the
prompt for every response, and the attention mask lets a response token see the prompt and the earlier
tokens of its own response only. So every response token attends to exactly the keys and values it would
see in a row of its own, at the same positions: logits, log-probs and gradients are the same function of
the same tokens, equal to float rounding (the attention sums over a wider, masked row). Prefix Grouper
(arXiv 2506.05433) shares GRPO's common question this way.

On the main job's batches the distinct (prompt, response) rows of an iteration hold 11-18% fewer tokens
packed by prompt (the reference pass), 6-11% within a shuffled mini-batch of 64 (the update).

Pure torch and Python: samples in, tensors out; the policy worker runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hgpo_cli.train.minibatch import prompt_chunks

__all__ = [
    "SUPPORTED_ATTENTION",
    "PackedPrompts",
    "pack_by_prompt",
    "packed_response_logits",
    "prompt_micro_batches",
]

SUPPORTED_ATTENTION = ("sdpa", "eager")  # kernels that take an arbitrary 4D mask


@dataclass
class PackedPrompts:
    """U packed rows for S samples.

    input_ids, position_ids: (U, W), left-padded; attention_mask: (U, 1, W, W) bool, True where a query
    (dim 2) may attend a key (dim 3); keep: the logits of the last `keep` positions hold every one the
    samples need; rows, columns: (S, Rmax) the packed row and the kept position (0..keep-1) whose logits
    predict each response column (right-aligned as `batch.collate`'s: column Rmax - R_s + t is token t of
    sample s; columns left of a sample's response point anywhere valid); targets: (S, Rmax) the token ids
    there (the pad id left of a response)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    keep: int
    rows: torch.Tensor
    columns: torch.Tensor
    targets: torch.Tensor
    response_width: int

    def to(self, device: torch.device | str) -> PackedPrompts:
        moved = {name: getattr(self, name).to(device) for name in _TENSORS}
        return PackedPrompts(**moved, keep=self.keep, response_width=self.response_width)


_TENSORS = ("input_ids", "attention_mask", "position_ids", "rows", "columns", "targets")


def prompt_micro_batches(samples: Sequence[Any], size: int, sort: bool) -> list[list[int]]:
    """Indices into `samples` in micro-batches of at most `size` distinct prompts, every sample of a prompt
    in its micro-batch; with `sort`, the prompts in order of their packed rows' lengths (the prompt once,
    each distinct response once), so that a micro-batch pads little (`minibatch.prompt_chunks`)."""

    def packed(group: list[int]) -> int:
        responses = {tuple(samples[i].response_ids) for i in group}
        return len(samples[group[0]].prompt_ids) + sum(len(r) for r in responses)

    keys = [tuple(s.prompt_ids) for s in samples]
    return prompt_chunks(list(range(len(samples))), size, keys, packed, sort)


def pack_by_prompt(samples: Sequence[Any], pad_id: int) -> PackedPrompts:
    """The packed rows of `samples` (objects with `prompt_ids` and `response_ids` token lists): one row per
    distinct prompt (in order of first occurrence), each distinct response of it once (samples with the
    same prompt and response share its tokens)."""
    units: dict[tuple[int, ...], dict[tuple[int, ...], int]] = {}  # prompt -> response -> segment (1-based)
    row_of: dict[tuple[int, ...], int] = {}
    where: list[tuple[int, int]] = []  # per sample: (row, segment)
    for sample in samples:
        prompt, response = tuple(sample.prompt_ids), tuple(sample.response_ids)
        segments = units.setdefault(prompt, {})
        segment = segments.setdefault(response, len(segments) + 1)
        where.append((row_of.setdefault(prompt, len(row_of)), segment))
    lengths = [len(p) + sum(len(r) for r in segs) for p, segs in units.items()]
    width = max(lengths)
    count = len(units)
    input_ids = torch.full((count, width), pad_id, dtype=torch.long)
    position_ids = torch.ones((count, width), dtype=torch.long)  # HF's filler at padding
    segment_ids = torch.full((count, width), -1, dtype=torch.long)  # -1 padding, 0 prompt, j response j
    starts: list[dict[int, int]] = []  # per row: segment -> its first column
    last_prompt: list[int] = []  # per row: the column of its prompt's last token
    for row, (prompt, segs) in enumerate(units.items()):
        column = width - lengths[row]
        ids, positions, seg_ids, start = list(prompt), list(range(len(prompt))), [0] * len(prompt), {}
        for response, segment in segs.items():
            start[segment] = column + len(ids)
            ids += response
            positions += range(len(prompt), len(prompt) + len(response))
            seg_ids += [segment] * len(response)
        input_ids[row, column:] = torch.tensor(ids, dtype=torch.long)
        position_ids[row, column:] = torch.tensor(positions, dtype=torch.long)
        segment_ids[row, column:] = torch.tensor(seg_ids, dtype=torch.long)
        starts.append(start)
        last_prompt.append(column + len(prompt) - 1)
    query, key = segment_ids[:, :, None], segment_ids[:, None, :]
    order = torch.arange(width)
    causal = order[None, :, None] >= order[None, None, :]
    allowed = causal & (key >= 0) & ((key == 0) | (key == query))
    allowed |= torch.eye(width, dtype=torch.bool)[None]  # a padding query sees itself (no empty softmax row)
    keep = width - min(last_prompt)
    r_max = max(1, max(len(s.response_ids) for s in samples))
    rows = torch.zeros((len(samples), r_max), dtype=torch.long)
    columns = torch.zeros((len(samples), r_max), dtype=torch.long)
    targets = torch.full((len(samples), r_max), pad_id, dtype=torch.long)
    for s, (sample, (row, segment)) in enumerate(zip(samples, where, strict=True)):
        response = list(sample.response_ids)
        n = len(response)
        # token t of the response is predicted at the position before it: the prompt's last token for t = 0
        before = [last_prompt[row]] + [starts[row][segment] + t for t in range(n - 1)]
        rows[s] = row
        columns[s] = last_prompt[row] - (width - keep)
        if n:
            columns[s, r_max - n :] = torch.tensor(before) - (width - keep)
            targets[s, r_max - n :] = torch.tensor(response, dtype=torch.long)
    return PackedPrompts(
        input_ids=input_ids,
        attention_mask=allowed[:, None],
        position_ids=position_ids,
        keep=keep,
        rows=rows,
        columns=columns,
        targets=targets,
        response_width=r_max,
    )


def packed_response_logits(
    model: torch.nn.Module, packed: PackedPrompts, temperature: float = 1.0, implementation: str = "sdpa"
) -> torch.Tensor:
    """Each sample's response logits from the packed rows: (S, Rmax, V) float32, aligned with
    `batch.collate`'s response columns and divided by the sampling temperature, as `batch.response_logits`
    gives them from one row per sample."""
    mask = packed.attention_mask
    if implementation == "eager":  # eager adds its mask to the scores
        blocked = torch.zeros(mask.shape, dtype=model.dtype, device=mask.device)
        mask = blocked.masked_fill(~mask, torch.finfo(model.dtype).min)
    out = model(
        input_ids=packed.input_ids,
        attention_mask=mask,
        position_ids=packed.position_ids,
        logits_to_keep=packed.keep,
        use_cache=False,
    )
    logits = out.logits[packed.rows, packed.columns].float()  # (S, Rmax, V)
    return logits / temperature if temperature not in (0.0, 1.0) else logits
