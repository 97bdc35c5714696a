"""Run `check_one` over many games in worker processes, each game under a time limit.

The planner (fast-downward, a C library call that cannot be interrupted) solves most real games in
under a second but takes minutes on a few (930 s for one valid_seen game on 2 busy cores). Each game runs
in a long-lived worker process; one that is still busy after `timeout_s` is killed and replaced, and its
game is reported as not won with `error: "timeout"`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from hgpo_cli.envs.base import TaskSpec


def _serve(conn: Connection, cfg_dict: dict[str, Any], walkthrough: bool) -> None:
    from omegaconf import OmegaConf

    from hgpo_cli.envs.alfworld.suite import check_one

    cfg = OmegaConf.create(cfg_dict)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        index, task = item
        conn.send((index, check_one(task, cfg, walkthrough)))


class _Worker:
    def __init__(self, ctx: Any, cfg_dict: dict[str, Any], walkthrough: bool) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, cfg_dict, walkthrough), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[int, TaskSpec] | None = None
        self.started = 0.0

    def give(self, index: int, task: TaskSpec) -> None:
        self.job = (index, task)
        self.started = time.monotonic()
        self.conn.send((index, task))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                self.process.kill()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


def run_checks(
    tasks: list[TaskSpec],
    cfg_dict: dict[str, Any],
    *,
    walkthrough: bool,
    workers: int,
    timeout_s: float,
    progress: Callable[[int, int], Any] | None = None,
) -> list[dict[str, Any]]:
    """`check_one` for every task, in `workers` processes; results in task order."""
    ctx = multiprocessing.get_context("spawn")
    pool = [_Worker(ctx, cfg_dict, walkthrough) for _ in range(max(1, min(workers, len(tasks))))]
    todo = list(enumerate(tasks))[::-1]
    results: dict[int, dict[str, Any]] = {}

    def finish(index: int, result: dict[str, Any]) -> None:
        results[index] = result
        if progress is not None:
            progress(len(results), len(tasks))

    try:
        while len(results) < len(tasks):
            for worker in pool:
                if worker.job is None and todo:
                    worker.give(*todo.pop())
            busy = [w for w in pool if w.job is not None]
            ready = wait([w.conn for w in busy], timeout=min(1.0, timeout_s))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        index, result = worker.conn.recv()
                    except (EOFError, OSError):  # the process died: count its game, start another
                        index, task = worker.job  # type: ignore[misc]
                        result = _failed(task, "worker process died")
                        pool[pool.index(worker)] = _replace(worker, ctx, cfg_dict, walkthrough)
                    else:
                        _, task = worker.job  # type: ignore[misc]
                        worker.job = None
                        if time.monotonic() - worker.started > timeout_s:  # finished, but over the limit
                            result = _failed(task, f"timeout after {timeout_s:g} s", loaded=walkthrough)
                    finish(index, result)
                elif time.monotonic() - worker.started > timeout_s:
                    index, task = worker.job  # type: ignore[misc]
                    finish(index, _failed(task, f"timeout after {timeout_s:g} s", loaded=walkthrough))
                    pool[pool.index(worker)] = _replace(worker, ctx, cfg_dict, walkthrough)
    finally:
        for worker in pool:
            worker.stop(kill=worker.job is not None)
    return [results[i] for i in range(len(tasks))]


def _replace(worker: _Worker, ctx: Any, cfg_dict: dict[str, Any], walkthrough: bool) -> _Worker:
    worker.stop(kill=True)
    return _Worker(ctx, cfg_dict, walkthrough)


def _failed(task: TaskSpec, error: str, loaded: bool = False) -> dict[str, Any]:
    return {"task_id": task.task_id, "task_type": task.task_type, "loaded": loaded, "won": False, "error": error}
