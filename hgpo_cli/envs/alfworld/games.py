"""ALFWorld games on disk: split names, the `json_2.1.1/<split>/<task>/<trial>/` layout, and the game data
(PDDL domain + grammar with the task + PDDL problem) the TextWorld PDDL engine plays.

A game is built the way `alfworld-generate` builds it: the domain `alfred.pddl` and grammar `alfred.twl2`
shipped in the alfworld wheel, the task sentence put into the grammar from `traj_data.json`, and
`initial_state.pddl` as the problem. A `game.tw-pddl` next to them (what `alfworld-download` ships) is
used instead when it loads. The task sentence template is chosen with a seed derived from the trial
name, so every process builds the identical game. Importing this module does not import alfworld.
"""

from __future__ import annotations

import functools
import json
import random
import zlib
from pathlib import Path
from typing import Any

from hgpo_cli.envs.base import TaskSpec

# verl-agent's split names -> the folder names of the ALFWorld release.
SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {
    "train": ("train", "valid_train"),  # the shared data names its training games valid_train
    "eval_in_distribution": ("valid_seen",),
    "eval_out_of_distribution": ("valid_unseen",),
}

# ALFWorld's task_type names -> the six short names used in per-task success rates.
TASK_TYPE_SHORT: dict[str, str] = {
    "pick_and_place_simple": "pick_and_place",
    "look_at_obj_in_light": "look_at_obj_in_light",
    "pick_clean_then_place_in_recep": "pick_clean_then_place",
    "pick_heat_then_place_in_recep": "pick_heat_then_place",
    "pick_cool_then_place_in_recep": "pick_cool_then_place",
    "pick_two_obj_and_place": "pick_two_obj_and_place",
}
TASK_TYPE_LONG: dict[str, str] = {short: long for long, short in TASK_TYPE_SHORT.items()}
TASK_TYPES: list[str] = list(TASK_TYPE_SHORT.values())

GAME_FILE = "game.tw-pddl"


class DataPathError(Exception):
    """A data folder or split folder is missing (the suite turns it into a UserError)."""


def split_dir(data_dir: str | Path, split: str) -> Path:
    """The folder of a split under `data_dir` (which holds `json_2.1.1/`, or is `json_2.1.1` itself)."""
    if split not in SPLIT_FOLDERS:
        raise DataPathError(f"unknown ALFWorld split '{split}' (one of {', '.join(SPLIT_FOLDERS)})")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataPathError(f"ALFWorld data folder not found: {root}")
    base = root / "json_2.1.1" if (root / "json_2.1.1").is_dir() else root
    candidates = [base / name for name in SPLIT_FOLDERS[split]]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataPathError(f"ALFWorld split folder not found: {candidates[0]} (split '{split}')")


def short_task_type(task_type: str) -> str | None:
    """The short name of an ALFWorld task_type, or None for types ALFWorld does not play (movable, sliced)."""
    return TASK_TYPE_SHORT.get(task_type)


def scan_split(folder: Path, split: str, task_types: list[str] | None = None) -> list[TaskSpec]:
    """Every playable trial under a split folder, sorted by path; skips what alfworld skips (no PDDL,
    movable receptacles, sliced objects, other task types, game files marked unsolvable)."""
    keep = set(task_types) if task_types else set(TASK_TYPES)
    tasks: list[TaskSpec] = []
    for traj_path in sorted(folder.glob("*/*/traj_data.json")):
        trial = traj_path.parent
        if not (trial / "initial_state.pddl").is_file() and not (trial / GAME_FILE).is_file():
            continue
        if "movable" in trial.parent.name or "Sliced" in trial.parent.name:
            continue
        try:
            traj = json.loads(traj_path.read_text())
        except (OSError, ValueError):
            continue
        short = short_task_type(str(traj.get("task_type", "")))
        if short is None or short not in keep:
            continue
        if _marked_unsolvable(trial / GAME_FILE):
            continue
        tasks.append(
            TaskSpec(
                env="alfworld",
                task_id=f"{folder.name}/{trial.parent.name}/{trial.name}",
                task_type=short,
                payload={"path": str(trial.resolve()), "split": split},
            )
        )
    return tasks


def _marked_unsolvable(game_file: Path) -> bool:
    if not game_file.is_file():
        return False
    try:
        return json.loads(game_file.read_text()).get("solvable") is False
    except (OSError, ValueError, AttributeError):
        return False


@functools.lru_cache(maxsize=1)
def wheel_logic() -> tuple[str, str]:
    """(PDDL domain, grammar) as shipped in the alfworld wheel."""
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    return Path(ALFRED_PDDL_PATH).read_text(), Path(ALFRED_TWL2_PATH).read_text()


def task_sentence(traj: dict[str, Any], rng: random.Random) -> str:
    """The templated task sentence of a trial, as alfworld's `get_templated_task_desc` writes it, with the
    template chosen by `rng` instead of the global random state."""
    import alfworld.gen.goal_library as goal_library

    params = traj["pddl_params"]
    goal = traj["task_type"] + ("_slice" if params.get("object_sliced") else "")
    template = rng.choice(goal_library.gdict[goal]["templates"])
    return template.format(
        obj=str(params.get("object_target", "")).lower(),
        recep=str(params.get("parent_target", "")).lower(),
        toggle=str(params.get("toggle_target", "")).lower(),
        mrecep=str(params.get("mrecep_target", "")).lower(),
    )


def trial_seed(trial: Path) -> int:
    """A stable per-trial seed (the same in every process and run)."""
    return zlib.crc32(f"{trial.parent.name}/{trial.name}".encode())


def build_game(trial: Path, traj: dict[str, Any] | None = None) -> dict[str, Any]:
    """Game data from `initial_state.pddl` + `traj_data.json`, as `alfworld-generate` builds it."""
    domain, grammar = wheel_logic()
    if traj is None:
        traj = json.loads((trial / "traj_data.json").read_text())
    sentence = task_sentence(traj, random.Random(trial_seed(trial)))
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", sentence),
        "pddl_problem": (trial / "initial_state.pddl").read_text(),
        "solvable": None,
        "walkthrough": None,
    }


def load_game(trial: str | Path, *, use_game_file: bool = True) -> dict[str, Any]:
    """The game data of a trial folder: its `game.tw-pddl` when present and well-formed, else built."""
    trial = Path(trial)
    game_file = trial / GAME_FILE
    if use_game_file and game_file.is_file():
        try:
            data = json.loads(game_file.read_text())
            complete = all(isinstance(data.get(k), str) and data[k] for k in ("pddl_domain", "grammar", "pddl_problem"))
            if complete and "UNKNOWN GOAL" not in data["grammar"]:
                return data
        except (OSError, ValueError, AttributeError):
            pass
    return build_game(trial)
