"""Pure aggregation of evaluation episodes: success per task type per seed, mean and spread over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

ALFWORLD_COLUMNS = {
    "pick_and_place": "Pick",
    "look_at_obj_in_light": "Look",
    "pick_clean_then_place": "Clean",
    "pick_heat_then_place": "Heat",
    "pick_cool_then_place": "Cool",
    "pick_two_obj_and_place": "Pick2",
}


def seed_summary(episodes: list[dict[str, Any]]) -> dict[str, float]:
    """One seed's numbers, in percent: success overall ('All') and per task type; WebShop also 'score'.

    episodes: dicts with keys won (bool), task_type (str), reward (float, the episode's env reward).
    """
    out: dict[str, float] = {"All": 100.0 * float(np.mean([e["won"] for e in episodes])) if episodes else 0.0}
    types = sorted({e["task_type"] for e in episodes})
    for task_type in types:
        wins = [e["won"] for e in episodes if e["task_type"] == task_type]
        out[ALFWORLD_COLUMNS.get(task_type, task_type)] = 100.0 * float(np.mean(wins))
    out["score"] = 100.0 * float(np.mean([e["reward"] for e in episodes])) if episodes else 0.0
    return out


def across_seeds(per_seed: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    """{column: {"mean", "std", "min", "max", "n"}} over seeds (std with ddof=1 when n > 1)."""
    columns = sorted({c for s in per_seed.values() for c in s})
    out: dict[str, dict[str, float]] = {}
    for column in columns:
        values = np.array([s[column] for s in per_seed.values() if column in s], dtype=np.float64)
        out[column] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
            "n": int(values.size),
        }
    return out


def column_order(env: str, columns: list[str]) -> list[str]:
    if env == "alfworld":
        head = [c for c in ALFWORLD_COLUMNS.values() if c in columns] + ["All"]
        return head
    return ["score", "All"]


def markdown_table(env: str, split: str, stats: dict[str, dict[str, float]], seeds: list[int]) -> str:
    """One-row markdown table: mean +/- std (percent) for each column."""
    cols = column_order(env, list(stats))
    label = {"All": "All (success %)" if env == "alfworld" else "success %", "score": "score"}
    header = "| split | " + " | ".join(label.get(c, c) for c in cols) + " |"
    rule = "|---|" + "---|" * len(cols)
    row = f"| {split} | " + " | ".join(f"{stats[c]['mean']:.1f} ± {stats[c]['std']:.1f}" for c in cols) + " |"
    return f"{header}\n{rule}\n{row}\n\nseeds: {', '.join(map(str, seeds))}; mean ± std over seeds.\n"
