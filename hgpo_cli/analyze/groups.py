"""`hgpo analyze groups RUN_DIR`: HGPO's group sizes in the rollouts a real training run saved.

Input: `RUN_DIR/rollouts/iter_XXXXXX.jsonl`, one `StepRecord.to_dict()` per line (group_id, traj_id,
step_index, anchor, won, ... ), and `RUN_DIR/config.yaml` for K = algorithm.hgpo.history_length.
For each iteration and each level k = 0..K, `group_stats` of the trainer's advantage module gives the
number of level-k groups, the steps that have a level-k context (t >= k) and those in a group of size
>= 2 (the steps that can carry a level-k advantage), and the histogram of group sizes: the paper's
group analysis (how quickly the hierarchy's upper levels empty out).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from hgpo_cli.errors import UserError

ITER_FILE = re.compile(r"^iter_(\d+)\.jsonl$")


def history_length_of(run_dir: Path) -> int | None:
    """K from RUN_DIR/config.yaml (algorithm.hgpo.history_length), None when absent."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text()) or {}
        return int(cfg["algorithm"]["hgpo"]["history_length"])
    except (KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def rollout_files(run_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every RUN_DIR/rollouts/iter_XXXXXX.jsonl, by iteration."""
    folder = run_dir / "rollouts"
    if not folder.is_dir():
        raise UserError(f"{run_dir} has no rollouts/ folder (the trainer writes it with trainer.save_rollouts)")
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := ITER_FILE.match(p.name)))
    if not files:
        raise UserError(f"no iter_XXXXXX.jsonl files in {folder}")
    return files


def read_steps(path: Path) -> dict[str, np.ndarray]:
    """The columns the group analysis needs from one rollouts file, sorted by (group, trajectory, step).

    Returns group_ids, traj_ids, anchors (object arrays of str), step_index (int64), won (bool), each (N,).
    """
    rows: list[tuple[str, str, int, str, bool]] = []
    with path.open() as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                rows.append(
                    (
                        str(rec["group_id"]),
                        str(rec["traj_id"]),
                        int(rec["step_index"]),
                        str(rec["anchor"]),
                        bool(rec.get("won", False)),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise UserError(f"{path}:{line_no}: not a step record ({err})") from None
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return {
        "group_ids": np.array([r[0] for r in rows], dtype=object),
        "traj_ids": np.array([r[1] for r in rows], dtype=object),
        "step_index": np.array([r[2] for r in rows], dtype=np.int64),
        "anchors": np.array([r[3] for r in rows], dtype=object),
        "won": np.array([r[4] for r in rows], dtype=bool),
    }


def analyze_groups(run_dir: Path, levels: int | None = None) -> dict[str, Any]:
    """Per iteration and level: group counts, share of steps in non-singleton groups, size histogram;
    plus the histograms pooled over iterations. `levels` overrides K from config.yaml (default 4 when
    the run has no config)."""
    from hgpo_cli.train.advantages import group_stats

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    k_config = history_length_of(run_dir)
    K = levels if levels is not None else (k_config if k_config is not None else 4)
    if K < 0:
        raise UserError(f"--levels must be >= 0, got {K}")
    iterations = []
    pooled: dict[str, dict[str, Any]] = {
        str(k): {"groups": 0, "steps": 0, "steps_grouped": 0, "size_hist": {}} for k in range(K + 1)
    }
    for it, path in rollout_files(run_dir):
        cols = read_steps(path)
        n = int(cols["group_ids"].size)
        if n == 0:
            continue
        stats = group_stats(cols["group_ids"], cols["traj_ids"], cols["anchors"], K)
        traj_key = np.char.add(cols["group_ids"].astype(str), np.char.add("\x00", cols["traj_ids"].astype(str)))
        _, first = np.unique(traj_key, return_index=True)
        per_level = {}
        for k, st in stats.items():
            sizes = np.array(list(st["size_hist"]), dtype=np.int64)
            counts = np.array(list(st["size_hist"].values()), dtype=np.int64)
            steps_in = sizes * counts
            per_level[str(k)] = {
                "groups": st["groups"],
                "steps": st["steps"],
                "steps_grouped": st["steps_grouped"],
                "share_in_nonsingleton": st["steps_grouped"] / n,
                "share_of_context_steps": st["steps_grouped"] / st["steps"] if st["steps"] else 0.0,
                "mean_group_size": float((sizes * steps_in).sum() / max(steps_in.sum(), 1)),
                "size_hist": {str(s): int(c) for s, c in st["size_hist"].items()},
            }
            pool = pooled[str(k)]
            for key in ("groups", "steps", "steps_grouped"):
                pool[key] += st[key]
            for s, c in st["size_hist"].items():
                pool["size_hist"][str(s)] = pool["size_hist"].get(str(s), 0) + int(c)
        iterations.append(
            {
                "iteration": it,
                "file": path.name,
                "steps": n,
                "task_groups": int(np.unique(cols["group_ids"].astype(str)).size),
                "trajectories": int(first.size),
                "success": float(cols["won"][first].mean()),
                "levels": per_level,
            }
        )
    total = sum(it["steps"] for it in iterations)
    for pool in pooled.values():
        pool["share_in_nonsingleton"] = pool["steps_grouped"] / total if total else 0.0
        pool["size_hist"] = dict(sorted(pool["size_hist"].items(), key=lambda kv: int(kv[0])))
    return {
        "run_dir": str(run_dir),
        "history_length": K,
        "history_length_from_config": k_config,
        "steps": total,
        "iterations": iterations,
        "pooled": pooled,
    }
