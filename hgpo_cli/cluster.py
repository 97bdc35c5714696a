"""What a run asks of Ray (CPUs, GPUs, memory), checked against an existing cluster before any actor is placed.

Memory is not a Ray request of these actors, so a short cluster gets a warning line (from the weights,
gradients and optimizer state of a CPU run, `host_memory_need`), not a refusal.

A run places `env.num_workers` environment workers of `env.cpus_per_worker` CPUs, one rollout engine of
`rollout.num_cpus` CPUs (and `rollout.num_gpus` GPUs on CUDA), and `trainer.num_workers` policy workers
of `trainer.cpus_per_worker` CPUs (and `trainer.gpus_per_worker` GPUs on CUDA). Ray places an actor only
where its whole request fits, so a cluster with fewer logical CPUs than the sum never starts the run: it
waits for ever. `check_cluster` says so in one line, with the settings that shrink the need;
`waiting_notice` is what is printed while actors still wait for room (a cluster busy with other jobs).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from hgpo_cli.errors import UserError

GIB = 1024**3


@dataclass
class RunNeeds:
    """Ray resources a run's actors request; `parts` says which actors ask for what (for the message)."""

    cpus: float
    gpus: float
    parts: list[str] = field(default_factory=list)
    gpu_parts: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    gpu_keys: list[str] = field(default_factory=list)


def run_needs(cfg: Any, device: str, *, training: bool = True) -> RunNeeds:
    """The CPUs and GPUs a run (training: env workers + engine + policy workers; else env workers +
    engine, as `hgpo eval`) requests from Ray on `device` (cpu or cuda)."""
    env, rollout, trainer = cfg.env, cfg.rollout, cfg.trainer
    env_cpus = float(env.num_workers) * float(env.cpus_per_worker)
    cpus = env_cpus + float(rollout.num_cpus)
    parts = [f"env workers {env.num_workers} x {float(env.cpus_per_worker):g}", f"engine {float(rollout.num_cpus):g}"]
    keys = ["env.num_workers", "env.cpus_per_worker", "rollout.num_cpus"]
    gpus, gpu_parts, gpu_keys = 0.0, [], []
    if device == "cuda":
        gpus += float(rollout.num_gpus)
        gpu_parts.append(f"engine {float(rollout.num_gpus):g}")
        gpu_keys.append("rollout.num_gpus")
    if training and _shares_policy(cfg):  # the engine lives in the rank-0 policy worker: no actor of its own
        cpus -= float(rollout.num_cpus)
        gpus -= float(rollout.num_gpus) if device == "cuda" else 0.0
        parts, keys = parts[:1], keys[:2]
        gpu_parts, gpu_keys = [], []
    if training:
        cpus += float(trainer.num_workers) * float(trainer.cpus_per_worker)
        parts.append(f"trainer {trainer.num_workers} x {float(trainer.cpus_per_worker):g}")
        keys += ["trainer.num_workers", "trainer.cpus_per_worker"]
        if device == "cuda":
            gpus += float(trainer.num_workers) * float(trainer.gpus_per_worker)
            gpu_parts.append(f"trainer {trainer.num_workers} x {float(trainer.gpus_per_worker):g}")
            gpu_keys += ["trainer.num_workers", "trainer.gpus_per_worker"]
        if "critic" in cfg and _uses_critic(str(cfg.algorithm.name)):
            cpus += float(cfg.critic.num_cpus)
            parts.append(f"critic {float(cfg.critic.num_cpus):g}")
            keys.append("critic.num_cpus")
            if device == "cuda":
                gpus += float(cfg.critic.num_gpus)
                gpu_parts.append(f"critic {float(cfg.critic.num_gpus):g}")
                gpu_keys.append("critic.num_gpus")
    return RunNeeds(cpus=cpus, gpus=gpus, parts=parts, gpu_parts=gpu_parts, keys=keys, gpu_keys=gpu_keys)


def _shares_policy(cfg: Any) -> bool:
    from hgpo_cli.train.fast_paths import shares_policy

    return "share_policy" in cfg.rollout and shares_policy(cfg)


def _uses_critic(algorithm: str) -> bool:
    try:
        from hgpo_cli.train.gae import uses_critic
    except ImportError:  # no critic in this version
        return False
    return uses_critic(algorithm)


def shortfall(needs: RunNeeds, resources: dict[str, float], address: str) -> str | None:
    """The one-line message when `resources` (ray.cluster_resources()) cannot hold `needs`, else None."""
    have_cpus = float(resources.get("CPU", 0.0))
    have_gpus = float(resources.get("GPU", 0.0))
    problems = []
    if needs.cpus > have_cpus + 1e-9:
        problems.append(
            f"it needs {needs.cpus:g} CPUs ({', '.join(needs.parts)}) and the cluster at {address} has "
            f"{have_cpus:g}; lower {', '.join(needs.keys)}, or give the cluster more CPUs"
        )
    if needs.gpus > have_gpus + 1e-9:
        problems.append(
            f"it needs {needs.gpus:g} GPUs ({', '.join(needs.gpu_parts)}) and the cluster at {address} has "
            f"{have_gpus:g}; lower {', '.join(needs.gpu_keys)}, add GPUs, or train on CPU (trainer.device=cpu)"
        )
    if not problems:
        return None
    return "Ray cannot place this run: " + "; ".join(problems)


# host bytes per weight of a float32 run on CPU: policy, gradient, Adam's two moments, reference, engine copy
HOST_BYTES_PER_WEIGHT_TRAIN = 4 * 6
HOST_BYTES_PER_WEIGHT_EVAL = 4


def host_memory_need(cfg: Any, *, training: bool = True) -> float | None:
    """Bytes of host memory the weights, gradients and optimizer state of a CPU run take (activations not
    counted), from the model's config.json (`hgpo_cli.plan`); None when the shape is unknown."""
    try:
        from hgpo_cli.plan.params import count_params
        from hgpo_cli.plan.shapes import resolve_shape

        shape, _ = resolve_shape(str(cfg.model.path))
    except Exception:  # noqa: BLE001 - no planner or an unknown model: nothing to compare
        return None
    per_weight = HOST_BYTES_PER_WEIGHT_TRAIN if training else HOST_BYTES_PER_WEIGHT_EVAL
    return float(count_params(shape).total) * per_weight


def memory_warning(need: float | None, resources: dict[str, float], address: str) -> str | None:
    """A line when Ray's memory (what it will give tasks and actors) is below what the weights alone need."""
    have = float(resources.get("memory", 0.0))
    if need is None or have <= 0 or need <= have:
        return None
    return (
        f"the run's weights, gradients and optimizer state take about {need / GIB:.1f} GiB of host memory and "
        f"the cluster at {address} offers Ray {have / GIB:.1f} GiB: it may run out of memory "
        "(model.lora_rank or a smaller model.path shrink it)"
    )


def check_cluster(cfg: Any, device: str, *, training: bool = True) -> RunNeeds:
    """Stop with one line when the Ray cluster this process joined cannot hold the run's actors: a cluster
    given by `ray.address`, or a local Ray an earlier run of this process started smaller (a new local
    Ray is started with enough CPUs). Returns the needs.
    """
    import ray

    needs = run_needs(cfg, device, training=training)
    if ray.is_initialized():
        resources = ray.cluster_resources()
        message = shortfall(needs, resources, str(cfg.ray.address or "this machine (local Ray)"))
        if message is not None:
            raise UserError(message)
        if cfg.ray.address and device != "cuda":  # on GPUs the memory plan (`hgpo plan`) checks the device memory
            warning = memory_warning(host_memory_need(cfg, training=training), resources, str(cfg.ray.address))
            if warning is not None:
                print(f"hgpo: warning: {warning}", file=sys.stderr, flush=True)
    return needs


def free_resources() -> dict[str, float]:
    """Ray's currently unreserved resources (empty when unknown)."""
    try:
        import ray

        return dict(ray.available_resources())
    except Exception:  # noqa: BLE001 - only for a message
        return {}


def waiting_notice(what: str, needs: RunNeeds | None = None) -> Any:
    """A callback for `get_with_notice`: one line on stderr saying what has not started yet, and how many
    CPUs (GPUs) Ray has free, since an actor waits unplaced while its request does not fit."""

    def notice(waited_s: float) -> None:
        free = free_resources()
        need = f"the run needs {needs.cpus:g} CPUs in all; " if needs is not None else ""
        gpus = f", {free.get('GPU', 0.0):g} GPUs" if needs is not None and needs.gpus else ""
        print(
            f"hgpo: {what} not started after {waited_s:.0f}s ({need}Ray has {free.get('CPU', 0.0):g} CPUs{gpus} "
            "free): still loading, or waiting for other jobs on the cluster to free resources",
            file=sys.stderr,
            flush=True,
        )

    return notice


def wait_for_actors(actors: list[Any], what: str, needs: RunNeeds | None = None, every_s: float = 30.0) -> None:
    """Block until every actor answers `ping`, saying on stderr every `every_s` s what still waits."""
    from hgpo_cli.ray_errors import get_with_notice

    get_with_notice([a.ping.remote() for a in actors], waiting_notice(what, needs), every_s=every_s)
