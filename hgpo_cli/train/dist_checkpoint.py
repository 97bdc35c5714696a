"""What a policy worker writes into a checkpoint folder, and reads back on resume.

    iter_XXXXXX/sharded/     torch.distributed.checkpoint: model + AdamW state, one file per rank (resume)
    iter_XXXXXX/policy/      an ordinary HF folder (safetensors shards, config, tokenizer), written by rank 0
                             from tensors gathered one bucket at a time: `hgpo eval`, `from_pretrained`
    iter_XXXXXX/rng_rankN.pt each rank's torch / numpy / python RNG states

With LoRA the sharded state holds only the trainable (adapter) weights and their optimizer state: the
frozen base is the model the run starts from. Resuming needs the same number of ranks only for the RNG
files; the sharded state itself reshards to any world size.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHARDED = "sharded"
EXPORT_SHARD_BYTES = 2 << 30  # safetensors files of at most 2 GiB in the HF export


def _options(lora: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # with LoRA only the trainable weights are saved, so loading leaves the frozen base as it is
    return StateDictOptions(ignore_frozen_params=lora, strict=not lora)


def save_sharded(model: torch.nn.Module, optimizer: torch.optim.Optimizer, directory: Path, *, lora: bool) -> None:
    """Every rank writes its shards of the model and optimizer state to `directory/sharded` (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer, options=_options(lora))
    with warnings.catch_warnings():  # one unsharded rank: DCP notes that it runs in a single process
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(Path(directory) / SHARDED))


def load_sharded(model: torch.nn.Module, optimizer: torch.optim.Optimizer, directory: Path, *, lora: bool) -> None:
    """Restore model and optimizer state from `directory/sharded` in place (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    options = _options(lora)
    model_state, optim_state = get_state_dict(model, optimizer, options=options)
    state = {"model": model_state, "optimizer": optim_state}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(Path(directory) / SHARDED))
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"], options=options
    )


def has_sharded(directory: Path) -> bool:
    return (Path(directory) / SHARDED / ".metadata").is_file()


def save_rng(directory: Path, rank: int) -> None:
    torch.save(
        {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        Path(directory) / f"rng_rank{rank}.pt",
    )


def load_rng(directory: Path, rank: int) -> None:
    """Restore this rank's RNG states (rng.pt of older single-rank checkpoints is read as rank 0's)."""
    path = Path(directory) / f"rng_rank{rank}.pt"
    if not path.is_file():
        path = Path(directory) / "rng.pt"
    if not path.is_file():
        return
    rng = torch.load(path, weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def export_hf(
    items: Iterator[tuple[str, torch.Tensor]],
    config: Any,
    directory: Path,
    *,
    write: bool,
    dtype: torch.dtype,
    tokenizer: Any = None,
    generation_config: Any = None,
    shard_bytes: int = EXPORT_SHARD_BYTES,
) -> None:
    """Write an HF folder from (name, full tensor) pairs, `shard_bytes` of safetensors at a time.

    Every rank must drain `items` (the gathering is a collective); only the rank with `write` keeps and
    writes. A tied head (`tie_word_embeddings`) is left out, as `save_pretrained` does.
    """
    from safetensors.torch import save_file

    from hgpo_cli.train.weight_sync import buckets

    path = Path(directory)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    kept = ((k, v) for k, v in items if not (tied and k == "lm_head.weight"))
    if not write:
        for _ in kept:
            pass
        return
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("model*.safetensors*"):
        old.unlink()
    files: list[tuple[Path, list[str]]] = []
    total = 0
    for index, bucket in enumerate(buckets(kept, shard_bytes)):
        tmp = path / f"part-{index:05d}.tmp"
        save_file({k: v.contiguous() for k, v in bucket.items()}, str(tmp), metadata={"format": "pt"})
        files.append((tmp, list(bucket)))
        total += sum(v.numel() * v.element_size() for v in bucket.values())
    for tmp, _ in files:
        tmp.chmod(0o644)  # as save_pretrained leaves them (safetensors writes private files)
    if len(files) == 1:
        files[0][0].rename(path / "model.safetensors")
    else:
        weight_map = {}
        for index, (tmp, names) in enumerate(files):
            final = f"model-{index + 1:05d}-of-{len(files):05d}.safetensors"
            tmp.rename(path / final)
            weight_map.update(dict.fromkeys(names, final))
        index_json = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index_json, indent=2))
    config = config.__class__.from_dict(config.to_dict())
    config.dtype = dtype
    config.save_pretrained(path)
    if generation_config is not None:
        generation_config.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
