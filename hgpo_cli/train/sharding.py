"""FSDP2 for the trainer's models: the process group, `fully_shard` per decoder layer and on the root,
mixed precision and host offload. Used by the policy worker; `shard_model` is the reusable piece (a
critic shards its model the same way).

With several ranks FSDP2 replaces a hand-written gradient all-reduce: every rank holds 1/N of each
parameter (an fp32 DTensor), gathers a layer's full parameters in the compute dtype just before its
forward/backward, and reduce-scatters its gradients in fp32. With one rank and fp32 compute nothing is
sharded (a plain module: no overhead); with one rank and bf16 compute FSDP2 still wraps the model, for its
mixed precision over fp32 master weights.
"""

from __future__ import annotations

import socket
from typing import Any

import torch


def needs_fsdp(world_size: int, mixed_precision: bool) -> bool:
    """FSDP2 is used with several ranks, or for mixed precision (compute dtype != master dtype)."""
    return world_size > 1 or mixed_precision


def free_port(host: str = "") -> int:
    """A TCP port free on this machine right now (the rendezvous of rank 0 binds it just after)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_process_group(rank: int, world_size: int, dist_url: str | None, device: torch.device) -> None:
    """Join the trainer's process group (NCCL on GPU, gloo on CPU) unless this process is in one already.

    With one rank and no `dist_url` a private single-rank group on localhost is made (FSDP2 needs one);
    several single-rank workers in one process (tests) share it.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != world_size:
            raise RuntimeError(f"this process is already in a group of {dist.get_world_size()} ranks, not {world_size}")
        return
    if dist_url is None:
        if world_size != 1:
            raise ValueError("several trainer ranks need a rendezvous address (dist_url)")
        dist_url = f"tcp://127.0.0.1:{free_port('127.0.0.1')}"
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=dist_url, rank=rank, world_size=world_size)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of an HF causal LM (peft-wrapped or not): the modules whose class the model
    lists in `_no_split_modules` (e.g. Qwen2DecoderLayer), in order. Raises when there are none."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__}: no decoder layers found to shard (_no_split_modules is empty)")
    return layers


def shard_model(
    model: torch.nn.Module,
    *,
    compute_dtype: torch.dtype | None = None,
    reduce_dtype: torch.dtype = torch.float32,
    offload_params: bool = False,
    reshard_after_forward: bool = True,
    sum_gradients: bool = False,
    device: torch.device | None = None,
) -> torch.nn.Module:
    """`fully_shard` each decoder layer, then the root (embeddings, final norm, head), over all ranks of
    the default process group. Parameters become sharded DTensors of their current dtype (the master
    dtype); `compute_dtype` (None: the parameters' own) is what forward/backward see, gradients are
    reduced in `reduce_dtype`. `offload_params` keeps parameters, gradients and so the optimizer step on
    the host (FSDP2 CPUOffloadPolicy). `sum_gradients`: gradients are summed over ranks (the loss weights
    already divide by the global batch) instead of FSDP's default mean. Returns the same module object,
    now an FSDPModule.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    device = device or next(model.parameters()).device
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs: dict[str, Any] = {
        "mesh": mesh,
        "reshard_after_forward": reshard_after_forward,
        "mp_policy": MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=reduce_dtype),
        "offload_policy": CPUOffloadPolicy(pin_memory=device.type == "cuda") if offload_params else OffloadPolicy(),
    }
    layers = decoder_layers(model)
    for layer in layers:
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    for module in [*layers, model]:
        # plain SUM collectives (gloo has neither AVG nor PREMUL_SUM), scaled afterwards if at all
        module.set_force_sum_reduction_for_comms(True)
        if sum_gradients:
            module.set_gradient_divide_factor(1.0)
    return model


def lockstep_micro_batches(per_rank: list[list[Any]], rank: int) -> list[tuple[Any, bool]]:
    """This rank's micro-batches as (micro-batch, real) pairs, padded with (a filler, False) to the largest
    count of any rank: under FSDP every rank must run the same number of forward/backward passes (each
    gathers parameters with the others), so a rank with fewer runs extra passes with loss weight 0.

    per_rank: for each rank, its micro-batches (the same lists on every rank). The filler is the first
    micro-batch of any rank (None when there is none at all).
    """
    mine = list(per_rank[rank])
    count = max((len(batches) for batches in per_rank), default=0)
    filler = next((m for batches in per_rank for m in batches), None)
    return [(m, True) for m in mine] + [(filler, False)] * (count - len(mine))


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no gradients: a frozen reference model."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_value(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a (possibly sharded) DTensor; a collective: every rank must call it."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device | str) -> None:
    """Move the AdamW state (exp_avg, exp_avg_sq, step) to `device`: to the host after an update, back to
    the accelerator before the next one (`trainer.fsdp.offload_optimizer`). DTensor states move with their
    local shards."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if key == "step":  # AdamW keeps its step counter on the host unless capturable
                continue
            if isinstance(value, torch.Tensor) and value.device != torch.device(device):
                state[key] = value.to(device, non_blocking=True)


def interleave_shares(shares: list[list[Any]]) -> list[Any]:
    """Undo the split samples[rank::world_size]: shares[r] holds items r, r + W, r + 2W, ... of the list."""
    world = len(shares)
    return [shares[i % world][i // world] for i in range(sum(len(share) for share in shares))]
