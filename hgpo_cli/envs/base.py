"""The interface every text environment implements, and the picklable task description.

A task is one ALFWorld game or one WebShop instruction. A group of N environments made from the same
`TaskSpec` must start from the identical state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TaskSpec:
    """What an environment needs to start one task; small, picklable, JSON-able.

    env: "alfworld" or "webshop".  task_id: unique within its split (a game folder, a goal index).
    task_type: the category used for per-type success rates.  payload: env-specific data (paths, indices).
    """

    env: str
    task_id: str
    task_type: str
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class StepResult:
    """One observation from an environment.

    observation: the raw text the environment shows (the HGPO anchor).  reward: this step's reward.
    done: episode over.  won: task solved.  admissible_actions: actions valid now (no `help`).
    instruction: the task text shown in every prompt.  info: anything else (e.g. worker_failed).
    """

    observation: str
    reward: float
    done: bool
    won: bool
    admissible_actions: list[str]
    instruction: str
    info: dict[str, Any] = field(default_factory=dict)


class TextEnv(Protocol):
    """A text environment playing one task. `step` never raises on arbitrary action text."""

    task: TaskSpec

    def reset(self) -> StepResult: ...

    def step(self, action: str) -> StepResult: ...

    def close(self) -> None: ...
