"""One step sample as the rollout records it and the trainer consumes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepRecord:
    """One LLM turn in one trajectory.

    group_id: the task group (all N rollouts of one task share it).  traj_id: the trajectory.
    step_index: 0-based turn number.  prompt / response: the text in and out of the model.
    action: the projected action sent to the environment.  reward: the environment's reward for it.
    done: the episode ended at this step.  valid: the action was parsed and admissible.
    anchor: the raw observation the step was taken from (HGPO's context key).
    won: the trajectory ended in success (same on every step of it).  task_type: for per-type rates.
    """

    group_id: str
    traj_id: str
    step_index: int
    prompt: str
    response: str
    action: str
    reward: float
    done: bool
    valid: bool
    anchor: str
    won: bool = False
    task_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
