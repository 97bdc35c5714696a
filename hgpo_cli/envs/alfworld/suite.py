"""The ALFWorld suite (see `hgpo_cli.envs.registry`): tasks of a split, environments, the prompt, the checker.

Data: `env.alfworld.data_dir` names a folder holding `json_2.1.1/` (the ALFWorld release layout, or the
shared `../shared/data/alfworld`). Unset: games generated from the alfworld wheel into
`<cache>/alfworld/generated-<seed>-<n>/json_2.1.1/`, one split at a time on first use (see
`generate.py`). Split names follow verl-agent: `train`, `eval_in_distribution` (valid_seen),
`eval_out_of_distribution` (valid_unseen).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hgpo_cli.agent.prompts import PromptTemplate
from hgpo_cli.envs.alfworld.games import SPLIT_FOLDERS, DataPathError, scan_split, split_dir
from hgpo_cli.envs.alfworld.generate import DEFAULT_LIMITS
from hgpo_cli.envs.base import TaskSpec, TextEnv
from hgpo_cli.errors import UserError
from hgpo_cli.paths import folder_lock

ENV_NAME = "alfworld"
REWARD_SCALE = 1.0  # the environment already pays 10 on success

# Also accepted: the release's folder names.
SPLIT_ALIASES = {
    "valid_seen": "eval_in_distribution",
    "valid_unseen": "eval_out_of_distribution",
    "valid_train": "train",
}
GENERATED_FOLDER = {"train": "train", "eval_in_distribution": "valid_seen", "eval_out_of_distribution": "valid_unseen"}

PROMPT = PromptTemplate(
    intro=("You control a robot in a simulated home and act by typing text commands.\nYour assignment: {instruction}."),
    history=(
        "So far you have taken {num_steps} step(s). Here are the last {history_length}, oldest first, "
        "each with what you saw and the command you chose:\n{history}"
    ),
    history_item="Step {step}. Saw: {observation}\nCommand: {action}",
    no_history="So far you have taken {num_steps} step(s).",
    no_history_first="This is your first step.",
    current="Step {step}. What you see now:\n{observation}",
    actions="Commands you may use now (exactly as written):\n{actions}",
    action_item="- {action}",
    answer=(
        "Reason about the assignment and what to do next inside <think> and </think>. Then give exactly "
        "one command from the list inside <action> and </action>."
    ),
)


def _acfg(cfg: Any) -> Any:
    return cfg.env.alfworld


def canonical_split(split: str) -> str:
    """verl-agent's split name of `split` (release folder names accepted); UserError when unknown."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLIT_FOLDERS:
        names = ", ".join([*SPLIT_FOLDERS, *SPLIT_ALIASES])
        raise UserError(f"unknown ALFWorld split '{split}' (one of {names})")
    return split


def generated_types(cfg: Any) -> list[str]:
    """The task types the generator writes for this config, in the order they take turns."""
    from hgpo_cli.envs.alfworld.games import TASK_TYPES

    wanted = {str(t) for t in _acfg(cfg).task_types}
    return [t for t in TASK_TYPES if t in wanted] or list(TASK_TYPES)


def generated_count(cfg: Any, split: str) -> int:
    """How many games a generated split holds: `generated_games`, or `generated_eval_games` for the
    evaluation splits when that is set."""
    a = _acfg(cfg)
    eval_games = a.get("generated_eval_games")
    if canonical_split(split) != "train" and eval_games is not None:
        return int(eval_games)
    return int(a.generated_games)


def generated_root(cfg: Any) -> Path:
    """The cache folder of the generated games of this config (holds json_2.1.1/).

    `generated-<seed>-<n>`, with `-e<m>` when the evaluation splits hold another count and the task
    types' names when they are not all six (each folder holds one set of games, so a split never
    lists games of another config)."""
    from hgpo_cli.envs.alfworld.games import TASK_TYPES
    from hgpo_cli.paths import cache_dir

    a = _acfg(cfg)
    name = f"generated-{int(a.generated_seed)}-{int(a.generated_games)}"
    eval_games = a.get("generated_eval_games")
    if eval_games is not None and int(eval_games) != int(a.generated_games):
        name += f"-e{int(eval_games)}"
    types = generated_types(cfg)
    if types != list(TASK_TYPES):
        name += "-" + "-".join(types)
    limits = generated_limits(cfg)
    if limits != DEFAULT_LIMITS:
        name += f"-r{limits[0]}o{limits[1]}"
    return cache_dir() / "alfworld" / name


def generated_limits(cfg: Any) -> tuple[int, int]:
    """(receptacles, objects) per generated room: `generated_max_receptacles`, `generated_max_objects`."""
    a = _acfg(cfg)
    return (
        int(a.get("generated_max_receptacles", DEFAULT_LIMITS[0])),
        int(a.get("generated_max_objects", DEFAULT_LIMITS[1])),
    )


def _generation_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def ensure_generated(cfg: Any, split: str, *, show_progress: bool = True) -> Path:
    """Generate the games of a split into the cache unless they are there; returns the root folder."""
    from hgpo_cli.envs.alfworld.generate import generate_split, split_complete

    split = canonical_split(split)
    a = _acfg(cfg)
    root = generated_root(cfg)
    folder_split = GENERATED_FOLDER[split]
    n, seed, types = generated_count(cfg, split), int(a.generated_seed), generated_types(cfg)
    limits = generated_limits(cfg)
    if split_complete(root, folder_split, n, seed, types, limits):
        return root
    with folder_lock(root):
        if split_complete(root, folder_split, n, seed, types, limits):
            return root
        if not show_progress:
            generate_split(root, folder_split, n, seed, types, workers=_generation_workers(), limits=limits)
            return root
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            job = bar.add_task(f"generating ALFWorld games ({folder_split})", total=n)

            def report(done: int, total: int, _what: str) -> None:
                bar.update(job, completed=done, total=total)

            generate_split(
                root, folder_split, n, seed, types, progress=report, workers=_generation_workers(), limits=limits
            )
    return root


def data_root(cfg: Any, split: str) -> Path:
    """The folder holding json_2.1.1/ for a split: `env.alfworld.data_dir`, or the generated games."""
    data_dir = _acfg(cfg).data_dir
    if data_dir:
        return Path(str(data_dir)).expanduser()
    return ensure_generated(cfg, split)


def list_tasks(cfg: Any, split: str) -> list[TaskSpec]:
    """The games of a split, sorted by folder; only the task types in `env.alfworld.task_types`."""
    split = canonical_split(split)
    root = data_root(cfg, split)
    try:
        folder = split_dir(root, split)
    except DataPathError as err:
        raise UserError(str(err)) from None
    types = [str(t) for t in _acfg(cfg).task_types]
    tasks = scan_split(folder, split, types)
    if not tasks:
        raise UserError(f"no ALFWorld games of types {', '.join(types)} found under {folder}")
    return tasks


def make_env(task: TaskSpec, cfg: Any) -> TextEnv:
    """A fresh environment for one game (it loads on the first reset)."""
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv

    return AlfWorldEnv(
        task,
        max_steps=int(cfg.env.max_steps),
        parse_cache=bool(getattr(_acfg(cfg), "parse_cache", True)),
    )


CHECK_MIN_STEPS = 50  # the checker's horizon: ALFWorld's 50 steps, or the config's if longer


def play_walkthrough(env: Any) -> tuple[Any, int]:
    """Play the planner's solution in a freshly reset environment; returns (last StepResult, plan length)."""
    result = env.reset()
    plan = env.walkthrough()
    for command in plan:
        if result.done:
            break
        result = env.step(command)
    return result, len(plan)


def check_one(task: TaskSpec, cfg: Any, walkthrough: bool) -> dict[str, Any]:
    """Load, reset and (with `walkthrough`) play one game with a horizon of at least 50 steps. Never raises."""
    from hgpo_cli.envs.alfworld.env import AlfWorldEnv

    out: dict[str, Any] = {"task_id": task.task_id, "task_type": task.task_type, "loaded": False, "won": False}
    env = None
    try:
        env = AlfWorldEnv(
            task,
            max_steps=max(int(cfg.env.max_steps), CHECK_MIN_STEPS),
            parse_cache=bool(getattr(_acfg(cfg), "parse_cache", True)),
        )
        env.reset()
        out["loaded"] = True
        if walkthrough:
            last, steps = play_walkthrough(env)
            out["won"] = bool(last.won) and float(last.reward) == env.success_reward
            out["plan_steps"] = steps
    except Exception as err:  # a game that does not load or crashes counts as not loaded / not won
        out["error"] = f"{type(err).__name__}: {err}"
    finally:
        if env is not None:
            env.close()
    return out


def check(
    cfg: Any,
    split: str,
    *,
    walkthrough: bool,
    limit: int | None = None,
    progress: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Load every game of a split (and with `walkthrough`, play the planner's solution).

    Returns {"games", "loaded", "won", "by_task_type": {type: {"games", "loaded", "won"}}, "failed": [...]}
    ("won" counts 0 without `walkthrough`; with it also walkthrough_steps_mean/max, max_steps and
    won_within_max_steps, the wins whose plan fits the config's `env.max_steps`). Games are played with a
    horizon of max(env.max_steps, 50). Runs in `env.num_workers` processes, each game under
    `env.alfworld.check_timeout_s` (a game over it is not won, error "timeout"); `progress`, when given,
    is called once per game with (done, total).
    """
    from omegaconf import OmegaConf

    tasks = list_tasks(cfg, split)
    if limit is not None:
        tasks = tasks[: max(0, int(limit))]
    workers = max(1, min(int(cfg.env.num_workers), len(tasks)))
    results: list[dict[str, Any]] = []
    if workers == 1 and not walkthrough:
        for n, task in enumerate(tasks, 1):
            results.append(check_one(task, cfg, walkthrough))
            if progress is not None:
                progress(n, len(tasks))
    else:
        from hgpo_cli.envs.alfworld.checking import run_checks

        timeout = float(getattr(_acfg(cfg), "check_timeout_s", 1800.0))
        cfg_dict = OmegaConf.to_container(cfg, resolve=True)
        results = run_checks(
            tasks, cfg_dict, walkthrough=walkthrough, workers=workers, timeout_s=timeout, progress=progress
        )
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {"games": 0, "loaded": 0, "won": 0})
    for r in results:
        row = by_type[r["task_type"]]
        row["games"] += 1
        row["loaded"] += int(r["loaded"])
        row["won"] += int(r["won"])
    summary: dict[str, Any] = {
        "games": len(results),
        "loaded": sum(int(r["loaded"]) for r in results),
        "won": sum(int(r["won"]) for r in results),
        "by_task_type": {k: dict(v) for k, v in sorted(by_type.items())},
    }
    if walkthrough:
        steps = [int(r["plan_steps"]) for r in results if r["won"]]
        summary["walkthrough_steps_mean"] = sum(steps) / len(steps) if steps else 0.0
        summary["walkthrough_steps_max"] = max(steps, default=0)
        summary["max_steps"] = int(cfg.env.max_steps)
        summary["won_within_max_steps"] = sum(s <= int(cfg.env.max_steps) for s in steps)
    summary["failed"] = [
        {k: r[k] for k in ("task_id", "task_type", "loaded", "won", "error") if k in r}
        for r in results
        if not r["loaded"] or (walkthrough and not r["won"])
    ]
    return summary
