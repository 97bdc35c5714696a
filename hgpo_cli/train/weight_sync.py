"""The policy's full weights, gathered tensor by tensor from the shards, for the rollout engine and the
HF export. Peak memory stays bounded: one bucket of full tensors at a time, never a second whole model.

Names are those of the base HF model (what `from_pretrained`, the HF engine and vLLM expect): a peft
wrapper's prefix is dropped and LoRA adapters are merged in (W + scaling * B @ A), one layer at a time.

This bucketed path is what works across processes and machines. An HF engine in the trainer's own
process could instead generate with the policy module itself (no copy at all); that is the seam
`PolicyWorker.shared_module()` leaves for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from hgpo_cli.train.sharding import full_value

PEFT_PREFIX = "base_model.model."


def _lora_scalings(model: torch.nn.Module) -> dict[str, float]:
    """{state-dict prefix of a LoRA layer: its scaling (alpha / r)} for the default adapter."""
    scalings: dict[str, float] = {}
    for name, module in model.named_modules():
        scaling = getattr(module, "scaling", None)
        if isinstance(scaling, dict) and "default" in scaling and hasattr(module, "lora_A"):
            scalings[name] = float(scaling["default"])
    return scalings


def full_state_items(
    model: torch.nn.Module, *, dtype: torch.dtype | None = None, lora: bool = False
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor on the CPU in `dtype`) for every entry of the model's state dict, in order.

    A collective under FSDP: every rank must iterate it to the end, in step (each DTensor is all-gathered);
    ranks other than 0 may drop what they get.
    """
    scalings = _lora_scalings(model) if lora else {}
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in model.state_dict().items():
        full = full_value(value).detach()
        if not lora:
            yield key, full.to("cpu", dtype=dtype or full.dtype, copy=True)
            continue
        name = key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key
        if ".lora_" in name:
            prefix, rest = key.split(".lora_", 1)
            part = "A" if rest.startswith("A.") else "B" if rest.startswith("B.") else None
            if part is None or not rest.endswith("default.weight"):
                continue  # dropout, embeddings of other adapter kinds: nothing to merge
            pending.setdefault(prefix, {})[part] = full.float()
        elif ".base_layer." in name:
            prefix = key.split(".base_layer.", 1)[0]
            if name.endswith(".base_layer.weight"):
                pending.setdefault(prefix, {})["W"] = full
            else:
                yield name.replace(".base_layer.", "."), full.to("cpu", dtype=dtype or full.dtype, copy=True)
                continue
        else:
            yield name, full.to("cpu", dtype=dtype or full.dtype, copy=True)
            continue
        parts = pending.get(prefix, {})
        if {"W", "A", "B"} <= set(parts):
            pending.pop(prefix)
            weight = parts["W"]
            merged = weight.float() + scalings[prefix] * (parts["B"] @ parts["A"])
            out_name = prefix[len(PEFT_PREFIX) :] if prefix.startswith(PEFT_PREFIX) else prefix
            yield f"{out_name}.weight", merged.to("cpu", dtype=dtype or weight.dtype)
    if pending:
        raise RuntimeError(f"LoRA layers without their adapter weights: {sorted(pending)[:3]}")


def buckets(items: Iterator[tuple[str, torch.Tensor]], bucket_bytes: int) -> Iterator[dict[str, torch.Tensor]]:
    """Group (name, tensor) pairs into dicts of at most `bucket_bytes` (a bigger tensor travels alone)."""
    bucket: dict[str, torch.Tensor] = {}
    size = 0
    for name, tensor in items:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = {}, 0
        bucket[name] = tensor
        size += nbytes
    if bucket:
        yield bucket


def full_state_dict(model: torch.nn.Module, *, dtype: torch.dtype | None = None, lora: bool = False) -> dict:
    """The whole gathered state dict at once (tests, export of small models); a collective under FSDP."""
    return dict(full_state_items(model, dtype=dtype, lora=lora))


def sync_in_buckets(workers: list[Any], engine: Any, bucket_mb: int | None = None) -> int:
    """Driver side: stream the policy workers' weights into the rollout engine actor bucket by bucket.

    Every rank gathers each bucket (a collective); rank 0's bucket goes from its actor to the engine's as
    a Ray object (the driver never holds the tensors). Returns the number of tensors loaded.
    """
    import ray

    ray.get([w.start_weight_sync.remote(bucket_mb) for w in workers])
    total = 0
    while True:
        refs = [w.next_weight_bucket.remote() for w in workers]
        loaded = ray.get(engine.load_weight_bucket.remote(refs[0]))
        ray.get(refs[1:])
        if loaded == 0:
            return total
        total += loaded
