"""Ray environment workers: a pool of actors, each holding several environments, stepped in parallel.

Environment i of a batch lives on worker `i * W // M` (contiguous blocks, so the N copies of one task
usually share a worker and its parse cache). `reset(tasks)` makes (or reuses) one environment per entry
and resets it; `step({i: action})` steps the still-active ones, all workers at once.

A worker that dies (or whose call fails) mid-episode does not stop the rollout: each episode it held
ends with a StepResult `done=True, won=False, reward=0, info={"worker_failed": True}`, is counted in
`failed_episodes` and logged; the worker is restarted by Ray (`max_restarts`) or, if it cannot be,
replaced, and the next `reset` works again. An environment that raises gets the same treatment for its
episode alone. Actors never import torch; their thread-count variables are 1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections import defaultdict
from typing import Any

from hgpo_cli.envs.base import StepResult, TaskSpec
from hgpo_cli.errors import UserError

log = logging.getLogger(__name__)

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
PING_TIMEOUT_S = 120.0


def failed_result(reason: str, error: str = "") -> StepResult:
    """The StepResult of an episode lost to a failed worker or environment."""
    info: dict[str, Any] = {"worker_failed": True, "reason": reason}
    if error:
        info["error"] = error
    return StepResult(
        observation="", reward=0.0, done=True, won=False, admissible_actions=[], instruction="", info=info
    )


class EnvWorker:
    """The body of one Ray actor: several environments of one suite, keyed by the pool's env index."""

    def __init__(self, cfg_dict: dict[str, Any], worker_index: int) -> None:
        os.environ.update(THREAD_ENV)
        from omegaconf import OmegaConf

        from hgpo_cli.envs.registry import get_suite

        self.cfg = OmegaConf.create(cfg_dict)
        self.suite = get_suite(str(self.cfg.env.name))
        self.worker_index = worker_index
        self.envs: dict[int, Any] = {}

    def ping(self) -> dict[str, Any]:
        import sys
        import time

        return {
            "pid": os.getpid(),
            "envs": len(self.envs),
            "torch_imported": "torch" in sys.modules,
            "cpu_s": time.process_time(),
            "niceness": os.nice(0),
        }

    def _drop(self, index: int) -> None:
        env = self.envs.pop(index, None)
        if env is not None:
            try:
                env.close()
            except Exception:
                log.exception("closing environment %d failed", index)

    def reset(self, items: list[tuple[int, TaskSpec]]) -> dict[int, StepResult]:
        """Make (or reuse, when the task is the same) and reset one environment per (index, task)."""
        wanted = {index for index, _ in items}
        for index in list(self.envs):
            if index not in wanted:
                self._drop(index)
        results: dict[int, StepResult] = {}
        for index, task in items:
            env = self.envs.get(index)
            try:
                if env is None or env.task != task or env.task.payload != task.payload:
                    self._drop(index)
                    env = self.suite.make_env(task, self.cfg)
                    self.envs[index] = env
                results[index] = env.reset()
            except UserError:
                raise  # a bad setting or data folder: the run stops with its one line
            except Exception as err:
                log.exception("resetting environment %d (%s) failed", index, task.task_id)
                self._drop(index)
                results[index] = failed_result("env_error", f"{type(err).__name__}: {err}")
        return results

    def step(self, actions: dict[int, str]) -> dict[int, StepResult]:
        """Step each environment once; one that is missing (the actor restarted) or raises is lost."""
        results: dict[int, StepResult] = {}
        for index, action in actions.items():
            env = self.envs.get(index)
            if env is None:
                results[index] = failed_result("env_lost")
                continue
            try:
                results[index] = env.step(action)
            except Exception as err:
                log.exception("stepping environment %d failed", index)
                self._drop(index)
                results[index] = failed_result("env_error", f"{type(err).__name__}: {err}")
        return results

    def close(self) -> None:
        for index in list(self.envs):
            self._drop(index)


def _raise_user_error(err: BaseException) -> None:
    """A user mistake inside a worker (a bad setting) stops the run with its one line; nothing else does."""
    from hgpo_cli.ray_errors import user_error_in

    found = user_error_in(err)
    if found is not None:
        raise found from None


@functools.lru_cache(maxsize=1)
def _remote_worker_class() -> Any:
    import ray

    from hgpo_cli.ray_errors import defer_init_errors

    return ray.remote(defer_init_errors(EnvWorker))


def ensure_ray(cfg: Any) -> None:
    """Start Ray locally (or join `cfg.ray.address`) unless this process already has it."""
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": dict(THREAD_ENV)},
    }
    address = cfg.ray.address if "ray" in cfg else None
    if address:
        ray.init(address=str(address), **kwargs)
    else:
        num_cpus = cfg.ray.num_cpus if "ray" in cfg else None
        ray.init(num_cpus=num_cpus, **kwargs)


class EnvPool:
    """`num_workers` Ray actors (default `cfg.env.num_workers`), each reserving `cpus_per_worker` CPUs
    (default `cfg.env.cpus_per_worker`, fractions allowed) and holding several environments."""

    def __init__(
        self,
        cfg: Any,
        num_workers: int | None = None,
        cpus_per_worker: float | None = None,
        max_restarts: int = 3,
    ) -> None:
        from omegaconf import OmegaConf

        ensure_ray(cfg)
        self.cfg = cfg
        self.num_workers = int(num_workers if num_workers is not None else cfg.env.num_workers)
        self.cpus_per_worker = float(cpus_per_worker if cpus_per_worker is not None else cfg.env.cpus_per_worker)
        if self.num_workers < 1 or self.cpus_per_worker <= 0:
            raise ValueError("EnvPool needs num_workers >= 1 and cpus_per_worker > 0")
        self.max_restarts = int(max_restarts)
        self._cfg_dict = OmegaConf.to_container(cfg, resolve=True)
        self.workers: list[Any] = [self._start_worker(w) for w in range(self.num_workers)]
        self.failed_episodes = 0
        self.worker_restarts = 0
        self._worker_of: dict[int, int] = {}
        self._active: set[int] = set()
        self._lost: set[int] = set()

    # -- workers -------------------------------------------------------------------------------------
    def _start_worker(self, w: int) -> Any:
        cls = _remote_worker_class()
        return cls.options(
            num_cpus=self.cpus_per_worker,
            max_restarts=self.max_restarts,
            max_task_retries=0,
            runtime_env={"env_vars": dict(THREAD_ENV)},
        ).remote(self._cfg_dict, w)

    def _recover(self, w: int) -> None:
        """After a failed call: keep the worker once Ray has restarted it, else start a new one."""
        import time

        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError

        self.worker_restarts += 1
        deadline = time.monotonic() + PING_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                ray.get(self.workers[w].ping.remote(), timeout=max(1.0, deadline - time.monotonic()))
                log.warning("environment worker %d is back (restarted by Ray)", w)
                return
            except (ActorUnavailableError, GetTimeoutError):
                time.sleep(0.5)  # restarting
            except Exception:
                break  # dead for good
        with contextlib.suppress(Exception):
            ray.kill(self.workers[w], no_restart=True)
        self.workers[w] = self._start_worker(w)
        log.warning("environment worker %d could not be restarted; started a new one", w)

    def _lose(self, indices: list[int], w: int, error: BaseException) -> None:
        """The episodes still running on a failed worker end now, counted as failed."""
        fresh = [i for i in indices if i in self._active and i not in self._lost]
        self._lost.update(indices)
        self._active.difference_update(indices)
        self.failed_episodes += len(fresh)
        first_line = str(error).splitlines()[0] if str(error) else ""
        log.warning(
            "environment worker %d failed mid-episode (%s: %s); %d episode(s) counted as failed",
            w,
            type(error).__name__,
            first_line,
            len(fresh),
        )

    def assignment(self, num_envs: int) -> list[int]:
        """Worker index of each environment index (contiguous blocks)."""
        return [i * self.num_workers // max(1, num_envs) for i in range(num_envs)]

    # -- API -----------------------------------------------------------------------------------------
    def reset(self, tasks: list[TaskSpec]) -> list[StepResult]:
        """One environment per entry, reset; copies of one task start from the identical state."""
        import ray

        owners = self.assignment(len(tasks))
        self._worker_of = dict(enumerate(owners))
        self._lost = set()
        items: dict[int, list[tuple[int, TaskSpec]]] = defaultdict(list)
        for i, (w, task) in enumerate(zip(owners, tasks, strict=True)):
            items[w].append((i, task))
        results: dict[int, StepResult] = {}
        for attempt in range(2):
            pending = {w: self.workers[w].reset.remote(items.get(w, [])) for w in range(self.num_workers)}
            retry = []
            for w, future in pending.items():
                try:
                    results.update(ray.get(future))
                except Exception as err:
                    _raise_user_error(err)
                    log.warning("environment worker %d failed during reset (%s)", w, type(err).__name__)
                    self._recover(w)
                    retry.append(w)
            if not retry:
                break
            if attempt == 1:
                for w in retry:
                    for i, _ in items.get(w, []):
                        results[i] = failed_result("worker_failed")
                        self.failed_episodes += 1
                        self._lost.add(i)
        ordered = [results[i] for i in range(len(tasks))]
        self._active = {i for i, r in enumerate(ordered) if not r.done}
        for i, r in enumerate(ordered):
            if r.info.get("worker_failed") and i not in self._lost:
                self.failed_episodes += 1
                self._lost.add(i)
        return ordered

    def step(self, actions: dict[int, str]) -> dict[int, StepResult]:
        """Step the given (still-active) environments in parallel; returns a result for every index."""
        import ray

        results: dict[int, StepResult] = {}
        per_worker: dict[int, dict[int, str]] = defaultdict(dict)
        for i, action in actions.items():
            if i not in self._worker_of:
                raise KeyError(f"environment {i} does not exist (reset made {len(self._worker_of)})")
            if i in self._lost:
                results[i] = failed_result("worker_failed")
                continue
            per_worker[self._worker_of[i]][i] = str(action)
        pending = {w: self.workers[w].step.remote(batch) for w, batch in per_worker.items()}
        for w, future in pending.items():
            try:
                out = ray.get(future)
            except Exception as err:
                _raise_user_error(err)
                held = [i for i, owner in self._worker_of.items() if owner == w]
                self._lose(held, w, err)
                self._recover(w)
                for i in per_worker[w]:
                    results[i] = failed_result("worker_failed", f"{type(err).__name__}")
                continue
            for i, r in out.items():
                if r.info.get("worker_failed") and i not in self._lost:
                    self._lost.add(i)
                    self.failed_episodes += 1
                    log.warning("episode of environment %d lost (%s)", i, r.info.get("reason"))
                results[i] = r
        for i, r in results.items():
            if r.done:
                self._active.discard(i)
        return results

    def close(self) -> None:
        """Close every environment and stop the actors."""
        import ray

        for worker in self.workers:
            with contextlib.suppress(Exception):
                ray.get(worker.close.remote(), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(worker, no_restart=True)
        self.workers = []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
