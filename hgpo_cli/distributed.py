"""Starting or joining Ray, and choosing the device."""

from __future__ import annotations

import os
from typing import Any

from hgpo_cli.errors import UserError


def init_ray(address: str | None, num_cpus: int | None = None, min_cpus: float = 0.0) -> None:
    """Join the cluster at `address` (`auto`: the one `ray start` made), else start Ray on this machine.

    A local Ray gets at least `min_cpus` logical CPUs so that every actor of the run can be placed; the
    actors run one phase at a time (rollout, then update), so they share the physical cores.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    env_vars = {
        "TOKENIZERS_PARALLELISM": "false",
        "RAY_AUTH_MODE": "disabled",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    for name in ("HGPO_CACHE", "WANDB_MODE", "HF_HUB_OFFLINE", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            env_vars[name] = os.environ[name]
    runtime_env = {"env_vars": env_vars}
    if address:
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True, logging_level="ERROR")
        except ConnectionError as err:
            raise UserError(
                f"ray.address={address}: no Ray cluster reachable ({err}); run `ray start --head` first"
            ) from None
        return
    cpus = num_cpus or max(os.cpu_count() or 1, int(min_cpus + 0.999))
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        log_to_driver=True,
        configure_logging=True,
        logging_level="ERROR",
    )


def resolve_device(device: str) -> str:
    """`auto` -> cuda when a GPU is visible (locally or in the Ray cluster), else cpu."""
    if device != "auto":
        return device
    try:
        import ray

        if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0:
            return "cuda"
    except Exception:  # noqa: BLE001 - no cluster information: fall back to local detection
        pass
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def get_all(refs: list[Any]) -> list[Any]:
    import ray

    return ray.get(refs)


def set_torch_threads(threads: int) -> None:
    """`threads` torch threads; 0 means every core (Ray gives 1-CPU actors one thread otherwise, but the
    rollout and update phases run one at a time, so each may use the whole machine)."""
    import torch

    torch.set_num_threads(threads if threads > 0 else max(1, os.cpu_count() or 1))
