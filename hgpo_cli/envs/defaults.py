"""Settings that belong to an environment, for the commands that are about the environment itself
(`hgpo envs check`, `hgpo envs play`) rather than about a training run.

A training preset's `env.max_steps` is chosen for its job (the embedded default plays 3 turns, to finish
on a laptop); the environment commands use the benchmark's own horizon instead unless a preset or an
`env.max_steps=` override is given: ALFWorld 50 turns (ALFWorld's and verl-agent's limit), WebShop 15
(verl-agent's WebShop limit; the planner's purchases take 4-8 steps, so 3 turns win none).
"""

from __future__ import annotations

ENV_MAX_STEPS: dict[str, int] = {"alfworld": 50, "webshop": 15}

# Summary fields that only mean something when the games were played (`--walkthrough`).
PLAYED_FIELDS = ("won", "reward_mean", "score", "success_rate")


def env_overrides(name: str, preset: str | None, overrides: list[str]) -> list[str]:
    """The environment's own defaults as overrides, put before the user's (which win); none with a preset."""
    if preset is not None or any(o.split("=", 1)[0] == "env.max_steps" for o in overrides):
        return []
    return [f"env.max_steps={ENV_MAX_STEPS[name]}"] if name in ENV_MAX_STEPS else []


def unplayed(summary: dict) -> dict:
    """A check summary without `--walkthrough`: the fields of games not played are None (JSON null), not 0."""
    out = {k: (None if k in PLAYED_FIELDS else v) for k, v in summary.items()}
    out["by_task_type"] = {
        t: {k: (None if k in PLAYED_FIELDS else v) for k, v in row.items()}
        for t, row in summary.get("by_task_type", {}).items()
    }
    return out
