"""The agent's K-step memory: the last K (observation, action) pairs of one trajectory.

The prompt of step t shows the pairs of steps t-K .. t-1 (fewer at the start; none when K = 0), oldest
first. The observation of a pair is the raw text the action was chosen from (the step's anchor).
"""

from __future__ import annotations

from collections import deque


class StepMemory:
    """A sliding window over one trajectory's (observation, action) pairs.

    >>> m = StepMemory(2); m.add("o0", "a0"); m.add("o1", "a1"); m.add("o2", "a2"); m.window()
    [('o1', 'a1'), ('o2', 'a2')]
    """

    def __init__(self, history_length: int) -> None:
        if history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {history_length}")
        self.history_length = int(history_length)
        self._pairs: deque[tuple[str, str]] = deque(maxlen=self.history_length or None)
        self._steps = 0

    def reset(self) -> None:
        """Forget everything (a new episode)."""
        self._pairs.clear()
        self._steps = 0

    def add(self, observation: str, action: str) -> None:
        """Record that `action` was taken from `observation`."""
        self._steps += 1
        if self.history_length > 0:
            self._pairs.append((observation, action))

    def window(self) -> list[tuple[str, str]]:
        """The last `history_length` pairs, oldest first ([] when K = 0)."""
        return list(self._pairs)

    @property
    def steps(self) -> int:
        """How many pairs were added since the last reset (the current step index)."""
        return self._steps

    def __len__(self) -> int:
        return len(self._pairs)


class MemoryBank:
    """One `StepMemory` per environment index, for a batch of trajectories stepped together."""

    def __init__(self, num_envs: int, history_length: int) -> None:
        self.memories = [StepMemory(history_length) for _ in range(num_envs)]

    def reset(self) -> None:
        for memory in self.memories:
            memory.reset()

    def add(self, index: int, observation: str, action: str) -> None:
        self.memories[index].add(observation, action)

    def window(self, index: int) -> list[tuple[str, str]]:
        return self.memories[index].window()

    def __getitem__(self, index: int) -> StepMemory:
        return self.memories[index]

    def __len__(self) -> int:
        return len(self.memories)
