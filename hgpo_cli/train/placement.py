"""Where the trainer ranks run: one Ray placement group, and a rendezvous on rank 0's node.

The ranks' bundles are packed on one node when one node can hold them all (fast intra-node collectives)
and spread over nodes otherwise. The torch.distributed rendezvous is rank 0's node IP and a port free
there, asked of the rank-0 actor itself, so the driver may be a CPU-only head node of the cluster.

`start_ranked_actors` works for any worker class whose constructor takes (..., rank, world_size,
dist_url, ...): the actors are created first with a deferred constructor, then built once the address
is known.
"""

from __future__ import annotations

from typing import Any


def placement_strategy(nodes: list[dict[str, float]], bundle: dict[str, float], count: int) -> str:
    """PACK when some node's total resources hold `count` bundles, else SPREAD.

    nodes: each alive node's resources (as `ray.nodes()[i]["Resources"]`); bundle: {"CPU": c, "GPU": g}.
    """
    for resources in nodes:
        if all(resources.get(key, 0.0) >= amount * count for key, amount in bundle.items() if amount > 0):
            return "PACK"
    return "SPREAD"


class DeferredRank:
    """Mixin: holds the constructor arguments until `build(dist_url)`; `address()` tells where it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._deferred = (args, kwargs)

    def address(self) -> tuple[str, int]:
        """This node's IP and a TCP port free on it now."""
        import ray

        from hgpo_cli.train.sharding import free_port

        return ray.util.get_node_ip_address(), free_port()

    def build(self, dist_url: str | None) -> int:
        args, kwargs = self._deferred
        del self._deferred
        kwargs = {**kwargs, "dist_url": dist_url}
        super().__init__(*args, **kwargs)  # type: ignore[misc]  # the worker class after this mixin
        return int(kwargs.get("rank", 0))


def start_ranked_actors(
    worker_cls: type,
    make_kwargs: Any,
    *,
    num_workers: int,
    num_cpus: float,
    num_gpus: float,
    wait: Any = None,
) -> tuple[list[Any], Any]:
    """`num_workers` actors of `worker_cls` (rank 0 first) in one placement group, joined in one process
    group. make_kwargs(rank) gives the constructor's keyword arguments except `dist_url`; `wait` is the
    `ray.get` to block with (default ray.get; e.g. one that says what it waits for).

    Returns (actors, placement group); the group lives as long as the actors need it.
    """
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": float(num_cpus), "GPU": float(num_gpus)}
    bundle = {k: v for k, v in bundle.items() if v > 0} or {"CPU": 0.001}
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    strategy = placement_strategy(nodes, bundle, num_workers)
    group = placement_group([dict(bundle) for _ in range(num_workers)], strategy=strategy)
    wait = wait or ray.get
    wait(group.ready())
    deferred = type(f"Deferred{worker_cls.__name__}", (DeferredRank, worker_cls), {})
    actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(deferred)
    actors = [
        actor_cls.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank)
        ).remote(**make_kwargs(rank))
        for rank in range(num_workers)
    ]
    dist_url = None
    if num_workers > 1:
        host, port = wait(actors[0].address.remote())
        dist_url = f"tcp://{host}:{port}"
    wait([actor.build.remote(dist_url) for actor in actors])
    for actor in actors:
        _GROUPS[actor._actor_id.hex()] = group
    return actors, group


_GROUPS: dict[str, Any] = {}


def release_actors(actors: list[Any]) -> None:
    """Kill ranked actors and remove the placement group that reserved their resources."""
    import contextlib

    import ray
    from ray.util.placement_group import remove_placement_group

    groups = []
    for actor in actors:
        with contextlib.suppress(Exception):
            ray.kill(actor)
        group = _GROUPS.pop(actor._actor_id.hex(), None)
        if group is not None and all(group is not g for g in groups):
            groups.append(group)
    for group in groups:
        with contextlib.suppress(Exception):
            remove_placement_group(group)
