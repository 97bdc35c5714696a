"""One ALFWorld game on the unmodified alfworld/TextWorld PDDL engine, behind the `TextEnv` interface.

Underneath: `textworld.envs.PddlEnv` wrapped in alfworld's `AlfredDemangler` (object ids -> "apple 1"),
exactly as `alfworld-play-tw` and `AlfredTWEnv` set it up. Per episode: the observation text (the
"-= Welcome to TextWorld, ALFRED! =-" banner removed from the first one), the admissible commands
without `help`, `won`, reward `success_reward` (10) on the step that wins, done on a win or after
`max_steps` steps. Every reset re-creates the engine's PDDL state from the problem text, so N
environments of one task start from the identical state. Actions are any text; one that is not an
admissible command gets the engine's own "Nothing happens.".
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from hgpo_cli.envs.alfworld.games import build_game, load_game
from hgpo_cli.envs.base import StepResult, TaskSpec

BANNER = "-= Welcome to TextWorld, ALFRED! =-"
_TASK_RE = re.compile(r"Your task is to:\s*(.+?)\s*$", re.MULTILINE)


# Engines (each holds its own copy of fast-downward's library, which cannot be unloaded safely) are
# recycled within a process: a closed environment hands its engine to the next one, which loads a game.
_FREE_ENGINES: list[Any] = []
_ENGINES_LOCK = threading.Lock()


def _new_engine() -> Any:
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    return AlfredDemangler(PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True)), shuffle=False)


def _acquire_engine() -> Any:
    with _ENGINES_LOCK:
        if _FREE_ENGINES:
            return _FREE_ENGINES.pop()
    return _new_engine()


def _release_engine(engine: Any) -> None:
    with _ENGINES_LOCK:
        _FREE_ENGINES.append(engine)


def instruction_of(intro: str) -> str:
    """The task sentence of the first observation ("put a clean apple in diningtable")."""
    match = _TASK_RE.search(intro)
    return match.group(1).rstrip(".").strip() if match else ""


def clean_observation(text: str) -> str:
    """The engine's feedback without the welcome banner and surrounding blank lines."""
    text = text.replace(BANNER, "", 1) if text.lstrip().startswith(BANNER) else text
    return text.strip()


class AlfWorldEnv:
    """A `TextEnv` playing one ALFWorld game. The game loads on the first `reset` (1-3 s)."""

    def __init__(
        self,
        task: TaskSpec,
        *,
        max_steps: int = 50,
        success_reward: float = 10.0,
        parse_cache: bool = True,
    ) -> None:
        self.task = task
        self.max_steps = int(max_steps)
        self.success_reward = float(success_reward)
        self.parse_cache = parse_cache
        self._engine: Any = None
        self._game: dict[str, Any] | None = None
        self._steps = 0
        self._done = True
        self._last: StepResult | None = None
        self._instruction = ""
        self._closed = False

    # -- engine ------------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._engine is not None:
            return
        if self._closed:
            raise RuntimeError("environment is closed")
        if self.parse_cache:
            from hgpo_cli.envs.alfworld import engine_cache

            engine_cache.install()
        path = Path(self.task.payload["path"])
        engine = _acquire_engine()
        try:
            game = load_game(path)
            try:
                engine.load(game)
            except Exception:
                if not (path / "initial_state.pddl").is_file():
                    raise
                game = build_game(path)  # the game.tw-pddl did not load: build the game from the problem
                engine.load(game)
        except BaseException:
            _release_engine(engine)
            raise
        self._engine, self._game = engine, game

    def _result(self, state: Any, reward: float, done: bool) -> StepResult:
        admissible = [c for c in state["admissible_commands"] if c != "help"]
        return StepResult(
            observation=clean_observation(str(state.feedback)),
            reward=reward,
            done=done,
            won=bool(state["won"]),
            admissible_actions=admissible,
            instruction=self._instruction,
            info={"step": self._steps, "task_id": self.task.task_id, "task_type": self.task.task_type},
        )

    # -- TextEnv -----------------------------------------------------------------------------------
    def reset(self) -> StepResult:
        self._load()
        state = self._engine.reset()
        self._steps = 0
        self._instruction = instruction_of(str(state.feedback))
        won = bool(state["won"])
        self._done = won
        self._last = self._result(state, 0.0, won)
        return self._last

    def step(self, action: str) -> StepResult:
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            finished = self._last
            return StepResult(
                observation=finished.observation,
                reward=0.0,
                done=True,
                won=finished.won,
                admissible_actions=list(finished.admissible_actions),
                instruction=finished.instruction,
                info=dict(finished.info),
            )
        state, _, _ = self._engine.step(str(action))
        self._steps += 1
        won = bool(state["won"])
        self._done = won or self._steps >= self.max_steps
        self._last = self._result(state, self.success_reward if won else 0.0, self._done)
        return self._last

    def close(self) -> None:
        if self._engine is not None:
            _release_engine(self._engine)
        self._engine = None
        self._last = None
        self._closed = True

    # -- extras ------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self._steps

    def walkthrough(self) -> list[str]:
        """The planner's solution from the current state (the stored one right after a reset, if the
        game file carries one)."""
        if self._last is None:
            self.reset()
        if self._steps == 0 and self._game and self._game.get("walkthrough"):
            return list(self._game["walkthrough"])
        engine = self._engine.unwrapped
        return list(engine._pddl_state.replan(engine._entity_infos))
