"""Small partially observable environments written as data, and the exact Markov chain an agent with a
K-step observation memory induces on them.

An environment (`POMDP`) is plain data: hidden states, the observation text of each non-terminal
state, the admissible actions of each observation text (so aliased states offer the same actions, as
they must when the agent only sees the text), stochastic transitions, and terminal states with the
reward for entering them (10 on success, 0 on failure, nothing else: sparse terminal reward as in
ALFWorld and WebShop). Each task is a start state; an episode ends on a terminal state or after
`horizon` steps (time-out, reward 0).

Aliasing: several hidden states share one observation text ("Nothing happens.", "Exits: east, west."),
so the same anchor is reached from different histories with different futures: the contexts of
GiGPO's step groups are inconsistent. Each family has a knob that removes the aliasing (`*-clear`).

`build_chain(model, K)` turns an environment into the chain over x = (hidden state, previous K
observations), the information a K-window policy acts on plus the hidden state. The exact advantages
(`exact.py`) and the samplers (`sampling.py`) both run on this chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hgpo_cli.errors import UserError

WIN_REWARD = 10.0
PAD = -1  # observation id of "before the episode started" in a window


@dataclass(frozen=True)
class POMDP:
    """An environment as data.

    observations: non-terminal state -> observation text (the HGPO anchor).
    actions: observation text -> admissible actions (the same for every state showing that text).
    transitions: (state, action) -> ((probability, next state), ...) for every admissible action.
    terminal_rewards: terminal state -> reward received on entering it.
    tasks: the start state of each task (a group of N rollouts starts from one of them).
    horizon: the most steps in an episode; an episode still running then ends with reward 0.
    """

    name: str
    description: str
    observations: dict[str, str]
    actions: dict[str, tuple[str, ...]]
    transitions: dict[tuple[str, str], tuple[tuple[float, str], ...]]
    terminal_rewards: dict[str, float]
    tasks: tuple[str, ...]
    horizon: int
    params: dict[str, Any] = field(default_factory=dict)

    def compile(self) -> Model:
        """Check the data and index it as arrays (`Model`); UserError on any inconsistency."""
        return _compile(self)


@dataclass(frozen=True)
class Model:
    """A `POMDP` as arrays. S states (non-terminal first), O observation texts, A actions.

    states (S,) names; obs_texts (O,); action_names (A,); state_obs (S,) observation id, -1 on terminal
    states; admissible (O, A) bool; T (S, A, S) transition probabilities (rows of terminal states and of
    inadmissible actions are 0); enter_reward (S,) reward for entering each state; terminal (S,) bool;
    starts (n_tasks,) start state ids; horizon; deterministic: every transition has one outcome.
    """

    name: str
    states: tuple[str, ...]
    obs_texts: tuple[str, ...]
    action_names: tuple[str, ...]
    state_obs: npt.NDArray[np.int64]
    admissible: npt.NDArray[np.bool_]
    T: npt.NDArray[np.float64]
    enter_reward: npt.NDArray[np.float64]
    terminal: npt.NDArray[np.bool_]
    starts: npt.NDArray[np.int64]
    horizon: int
    deterministic: bool

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @property
    def n_tasks(self) -> int:
        return int(self.starts.size)

    def aliasing(self) -> dict[str, float]:
        """How aliased the observations are: non-terminal states per observation text (mean, max) and
        the share of non-terminal states whose text is shared with another state."""
        obs = self.state_obs[self.state_obs >= 0]
        per_obs = np.bincount(obs, minlength=len(self.obs_texts))
        return {
            "states": int(obs.size),
            "observations": len(self.obs_texts),
            "states_per_observation_mean": float(per_obs.mean()),
            "states_per_observation_max": int(per_obs.max()),
            "shared_share": float((per_obs[obs] > 1).mean()),
        }


def _compile(env: POMDP) -> Model:
    where = f"environment {env.name!r}"
    live = list(env.observations)
    ends = list(env.terminal_rewards)
    clash = set(live) & set(ends)
    if clash:
        raise UserError(f"{where}: states both terminal and observed: {sorted(clash)}")
    states = tuple(live + ends)
    sid = {s: i for i, s in enumerate(states)}
    obs_texts = tuple(dict.fromkeys(env.observations.values()))
    oid = {o: i for i, o in enumerate(obs_texts)}
    missing = [o for o in obs_texts if o not in env.actions or not env.actions[o]]
    if missing:
        raise UserError(f"{where}: observation(s) without admissible actions: {missing[:3]}")
    action_names = tuple(dict.fromkeys(a for o in obs_texts for a in env.actions[o]))
    aid = {a: i for i, a in enumerate(action_names)}
    S, n_obs, A = len(states), len(obs_texts), len(action_names)
    admissible = np.zeros((n_obs, A), bool)
    for o in obs_texts:
        admissible[oid[o], [aid[a] for a in env.actions[o]]] = True
    state_obs = np.full(S, -1, np.int64)
    for s, o in env.observations.items():
        state_obs[sid[s]] = oid[o]
    T = np.zeros((S, A, S))
    deterministic = True
    for s in live:
        for a in env.actions[env.observations[s]]:
            outcomes = env.transitions.get((s, a))
            if not outcomes:
                raise UserError(f"{where}: no transition for state {s!r}, action {a!r}")
            for p, nxt in outcomes:
                if nxt not in sid:
                    raise UserError(f"{where}: transition {s!r} --{a!r}--> unknown state {nxt!r}")
                if not p > 0:
                    raise UserError(f"{where}: non-positive probability {p} for {s!r} --{a!r}--> {nxt!r}")
                T[sid[s], aid[a], sid[nxt]] += p
            deterministic &= len(outcomes) == 1
            total = T[sid[s], aid[a]].sum()
            if abs(total - 1.0) > 1e-9:
                raise UserError(f"{where}: probabilities of {s!r} --{a!r}--> sum to {total}, not 1")
    extra = [k for k in env.transitions if k[0] not in env.observations]
    if extra:
        raise UserError(f"{where}: transitions from unknown or terminal states: {extra[:3]}")
    bad_tasks = [t for t in env.tasks if t not in env.observations]
    if not env.tasks or bad_tasks:
        raise UserError(f"{where}: tasks must be non-terminal states, got {bad_tasks or 'none'}")
    if env.horizon < 1:
        raise UserError(f"{where}: horizon must be >= 1, got {env.horizon}")
    enter_reward = np.zeros(S)
    terminal = np.zeros(S, bool)
    for s, r in env.terminal_rewards.items():
        enter_reward[sid[s]] = float(r)
        terminal[sid[s]] = True
    return Model(
        name=env.name,
        states=states,
        obs_texts=obs_texts,
        action_names=action_names,
        state_obs=state_obs,
        admissible=admissible,
        T=T,
        enter_reward=enter_reward,
        terminal=terminal,
        starts=np.array([sid[t] for t in env.tasks], np.int64),
        horizon=int(env.horizon),
        deterministic=deterministic,
    )


# ----------------------------------------------------------------------------------------------------
# The chain a K-window agent induces
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """The reachable x = (hidden state s, previous K observation ids pw) of a model, for a policy that
    sees the window w = pw + (obs(s),): K + 1 observation ids, PAD (-1) before the episode start.

    X augmented states, W windows, P previous-observation tuples, S states, A actions.
    x_state (X,), x_pw (X,), x_window (X,): the parts of each x. windows: W tuples of K + 1 obs ids.
    window_admissible (W, A) bool: the actions of the window's current observation.
    next_x (X, S): the x reached when the hidden state moves to s' (-1 when s' is terminal or unreachable).
    x_of (S, P): x of (s, pw), -1 when unreachable. start_x (n_tasks,): x at t = 0 of each task.
    """

    model: Model
    history: int
    x_state: npt.NDArray[np.int64]
    x_pw: npt.NDArray[np.int64]
    x_window: npt.NDArray[np.int64]
    windows: tuple[tuple[int, ...], ...]
    window_admissible: npt.NDArray[np.bool_]
    next_x: npt.NDArray[np.int64]
    x_of: npt.NDArray[np.int64]
    start_x: npt.NDArray[np.int64]

    @property
    def n_x(self) -> int:
        return int(self.x_state.size)

    @property
    def n_windows(self) -> int:
        return len(self.windows)

    def window_text(self, w: int) -> tuple[str, ...]:
        """The observation texts of window w, oldest first, without the padding."""
        return tuple(self.model.obs_texts[o] for o in self.windows[w] if o != PAD)


def build_chain(model: Model, history: int) -> Chain:
    """Enumerate every x = (s, pw) reachable from a task start under some action sequence (breadth first)
    and index the windows; `history` = K >= 0 previous observations in the policy's input."""
    if history < 0:
        raise UserError(f"policy history must be >= 0, got {history}")
    K = int(history)
    S = model.n_states
    x_index: dict[tuple[int, tuple[int, ...]], int] = {}
    pw_index: dict[tuple[int, ...], int] = {}
    w_index: dict[tuple[int, ...], int] = {}
    xs: list[tuple[int, tuple[int, ...]]] = []
    edges: list[tuple[int, int, tuple[int, ...]]] = []

    def add(s: int, pw: tuple[int, ...]) -> int:
        key = (s, pw)
        if key not in x_index:
            x_index[key] = len(xs)
            xs.append(key)
            pw_index.setdefault(pw, len(pw_index))
            w_index.setdefault(pw + (int(model.state_obs[s]),), len(w_index))
        return x_index[key]

    start_x = np.array([add(int(s), (PAD,) * K) for s in model.starts], np.int64)
    head = 0
    while head < len(xs):
        s, pw = xs[head]
        o = int(model.state_obs[s])
        npw = (pw + (o,))[1:] if K > 0 else ()
        acts = np.flatnonzero(model.admissible[o])
        succ = np.flatnonzero(model.T[s, acts].sum(axis=0) > 0)
        for s2 in succ:
            if not model.terminal[s2]:
                edges.append((head, int(s2), npw))
                add(int(s2), npw)
        head += 1
    X = len(xs)
    next_x = np.full((X, S), -1, np.int64)
    for src, s2, npw in edges:
        next_x[src, s2] = x_index[(s2, npw)]
    x_state = np.array([s for s, _ in xs], np.int64)
    x_pw = np.array([pw_index[pw] for _, pw in xs], np.int64)
    x_window = np.array([w_index[pw + (int(model.state_obs[s]),)] for s, pw in xs], np.int64)
    windows = tuple(w_index)
    window_admissible = model.admissible[np.array([w[-1] for w in windows], np.int64)]
    x_of = np.full((S, max(len(pw_index), 1)), -1, np.int64)
    x_of[x_state, x_pw] = np.arange(X)
    return Chain(
        model=model,
        history=K,
        x_state=x_state,
        x_pw=x_pw,
        x_window=x_window,
        windows=windows,
        window_admissible=window_admissible,
        next_x=next_x,
        x_of=x_of,
        start_x=start_x,
    )


# ----------------------------------------------------------------------------------------------------
# The family
# ----------------------------------------------------------------------------------------------------


def twostep(consistent: bool = False, horizon: int = 2) -> POMDP:
    """Two steps, hand-solvable. From "start", `left` leads to hidden state L and `right` to R; both
    show "You are in a room." unless `consistent` (then "...left room." / "...right room.").
    In L, action `a` wins (reward 10) and `b` loses; in R it is the other way round."""
    room_l = "You are in the left room." if consistent else "You are in a room."
    room_r = "You are in the right room." if consistent else "You are in a room."
    return POMDP(
        name="twostep-clear" if consistent else "twostep",
        description="two steps; the second room's identity is hidden unless consistent",
        observations={"start": "You stand between two doors.", "L": room_l, "R": room_r},
        actions={"You stand between two doors.": ("left", "right"), room_l: ("a", "b"), room_r: ("a", "b")},
        transitions={
            ("start", "left"): ((1.0, "L"),),
            ("start", "right"): ((1.0, "R"),),
            ("L", "a"): ((1.0, "win"),),
            ("L", "b"): ((1.0, "lose"),),
            ("R", "a"): ((1.0, "lose"),),
            ("R", "b"): ((1.0, "win"),),
        },
        terminal_rewards={"win": WIN_REWARD, "lose": 0.0},
        tasks=("start",),
        horizon=int(horizon),
        params={"consistent": consistent, "horizon": horizon},
    )


KEYDOOR_ACTIONS = ("go east", "go west", "take key", "open door")


def keydoor(
    rooms: int = 5,
    hide_key: bool = True,
    nothing: bool = True,
    slip: float = 0.0,
    horizon: int = 30,
    starts: int = 3,
) -> POMDP:
    """An ALFWorld-like two-phase task in a corridor of rooms 0..rooms-1: fetch the key from the last
    room, bring it back and open the door in room 0 (reward 10).

    Aliasing knobs: `hide_key` (the room text does not say whether the key is carried, so a room looks
    the same before and after the pick-up; only "You pick up the key." tells, and only while it is in the
    window) and `nothing` (every useless action shows the same "Nothing happens.", as ALFWorld does,
    whatever the room and phase). `slip`: probability that a move fails ("Nothing happens."); tasks start
    in rooms 0..starts-1. States are (room, phase, what the last action showed).
    """
    if rooms < 2:
        raise UserError(f"keydoor needs rooms >= 2, got {rooms}")
    if not 0 <= slip < 1:
        raise UserError(f"keydoor slip must be in [0, 1), got {slip}")
    last = rooms - 1
    observations: dict[str, str] = {}
    transitions: dict[tuple[str, str], tuple[tuple[float, str], ...]] = {}

    def room_text(i: int, phase: str) -> str:
        text = f"You are in room {i}."
        if i == 0:
            text += " A locked door leads out."
        if i == last and phase == "search":
            text += " A key lies on the floor."
        if not hide_key:
            text += " You carry the key." if phase == "carry" else " Your hands are empty."
        return text

    def name(i: int, phase: str, flag: str = "") -> str:
        return f"r{i}/{phase}" + (f"/{flag}" if flag else "")

    for i in range(rooms):
        for phase in ("search", "carry"):
            flags = ["", "nothing"] + (["pickup"] if i == last and phase == "carry" else [])
            flags += ["locked"] if i == 0 and phase == "search" else []
            for flag in flags:
                s = name(i, phase, flag)
                if flag == "":
                    observations[s] = room_text(i, phase)
                elif flag == "nothing":
                    observations[s] = "Nothing happens." if nothing else f"Nothing happens. ({room_text(i, phase)})"
                elif flag == "pickup":
                    observations[s] = "You pick up the key."
                else:
                    observations[s] = "The door is locked."
                stay = name(i, phase, "nothing")
                for action, target in (("go east", i + 1), ("go west", i - 1)):
                    if 0 <= target < rooms:
                        moved = name(target, phase)
                        transitions[(s, action)] = ((1 - slip, moved), (slip, stay)) if slip else ((1.0, moved),)
                    else:
                        transitions[(s, action)] = ((1.0, stay),)
                if i == last and phase == "search":
                    transitions[(s, "take key")] = ((1.0, name(i, "carry", "pickup")),)
                else:
                    transitions[(s, "take key")] = ((1.0, stay),)
                if i == 0:
                    door = "win" if phase == "carry" else name(0, "search", "locked")
                    transitions[(s, "open door")] = ((1.0, door),)
                else:
                    transitions[(s, "open door")] = ((1.0, stay),)
    actions = {o: KEYDOOR_ACTIONS for o in set(observations.values())}
    clear = not hide_key and not nothing
    return POMDP(
        name="keydoor-clear" if clear else "keydoor",
        description="fetch the key from the far room, come back, open the door (ALFWorld-like, two phases)",
        observations=observations,
        actions=actions,
        transitions=transitions,
        terminal_rewards={"win": WIN_REWARD},
        tasks=tuple(name(i, "search") for i in range(min(starts, rooms))),
        horizon=int(horizon),
        params={"rooms": rooms, "hide_key": hide_key, "nothing": nothing, "slip": slip, "horizon": horizon},
    )


MAZE_LAYOUT = (
    "#########",
    "#S..#..G#",
    "#.#.#.#.#",
    "#S......#",
    "#########",
)
_DIRS = (("north", -1, 0), ("south", 1, 0), ("east", 0, 1), ("west", 0, -1))


def maze(landmarks: int = 2, slip: float = 0.0, horizon: int = 30, layout: tuple[str, ...] = MAZE_LAYOUT) -> POMDP:
    """A grid maze with loops; a cell shows only its exits ("Exits: east, south."), so cells with the same
    exits look alike (the classic aliased maze), except `landmarks` cells that carry a unique marker
    (-1: every cell, no aliasing). Entering G wins (10). `slip`: probability that a move goes through
    another open exit, chosen uniformly. Tasks start on the S cells.
    """
    if not 0 <= slip < 1:
        raise UserError(f"maze slip must be in [0, 1), got {slip}")
    cells = [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]
    free = set(cells)
    goal = next(rc for rc in cells if layout[rc[0]][rc[1]] == "G")
    live = [rc for rc in cells if rc != goal]

    def cell_name(rc: tuple[int, int]) -> str:
        return "goal" if rc == goal else f"c{rc[0]}{rc[1]}"

    n_marks = len(live) if landmarks < 0 else min(landmarks, len(live))
    marked = {live[round(j * (len(live) - 1) / max(n_marks - 1, 1))] for j in range(n_marks)} if n_marks else set()
    observations: dict[str, str] = {}
    actions: dict[str, tuple[str, ...]] = {}
    transitions: dict[tuple[str, str], tuple[tuple[float, str], ...]] = {}
    for rc in live:
        exits = [(d, (rc[0] + dr, rc[1] + dc)) for d, dr, dc in _DIRS if (rc[0] + dr, rc[1] + dc) in free]
        text = "Exits: " + ", ".join(d for d, _ in exits) + "."
        if rc in marked:
            text = f"A marker reads {chr(65 + sorted(marked).index(rc))}. " + text
        observations[cell_name(rc)] = text
        actions[text] = tuple(d for d, _ in exits)
        for d, target in exits:
            others = [t for e, t in exits if e != d]
            if slip and others:
                outs = [(1 - slip, cell_name(target))] + [(slip / len(others), cell_name(t)) for t in others]
                merged: dict[str, float] = {}
                for p, nxt in outs:
                    merged[nxt] = merged.get(nxt, 0.0) + p
                transitions[(cell_name(rc), d)] = tuple((p, nxt) for nxt, p in merged.items())
            else:
                transitions[(cell_name(rc), d)] = ((1.0, cell_name(target)),)
    starts = tuple(cell_name(rc) for rc in live if layout[rc[0]][rc[1]] == "S")
    clear = landmarks < 0 or n_marks == len(live)
    return POMDP(
        name=("maze-clear" if clear else "maze") + ("-slip" if slip else ""),
        description="grid maze with loops; cells show only their exits except landmark cells",
        observations=observations,
        actions=actions,
        transitions=transitions,
        terminal_rewards={"goal": WIN_REWARD},
        tasks=starts,
        horizon=int(horizon),
        params={"landmarks": landmarks, "slip": slip, "horizon": horizon},
    )


# name -> (builder, keyword arguments, one line)
ENVS: dict[str, tuple[Callable[..., POMDP], dict[str, Any], str]] = {
    "twostep": (twostep, {}, "two steps, the second room hidden (hand-solvable, for tests)"),
    "twostep-clear": (twostep, {"consistent": True}, "two steps, every state shown (no aliasing)"),
    "keydoor": (keydoor, {}, "fetch a key and open a door; carried key hidden, 'Nothing happens.' shared"),
    "keydoor-clear": (keydoor, {"hide_key": False, "nothing": False}, "keydoor with every state shown"),
    "maze": (maze, {}, "aliased grid maze with loops, 2 landmarks"),
    "maze-clear": (maze, {"landmarks": -1}, "the maze with a unique marker in every cell"),
    "maze-slip": (maze, {"slip": 0.2}, "the aliased maze with slippery moves (uncertain hidden state)"),
}


def env_names() -> list[str]:
    """The names of the environment family, in definition order."""
    return list(ENVS)


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def make_env(spec: str) -> POMDP:
    """An environment from a spec "NAME" or "NAME:key=value,key=value" (the builder's arguments)."""
    name, _, rest = spec.partition(":")
    if name not in ENVS:
        raise UserError(f"unknown analyze environment {name!r} (one of: {', '.join(ENVS)})")
    builder, kwargs, _ = ENVS[name]
    kwargs = dict(kwargs)
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"environment option {item!r} in {spec!r} is not key=value")
        kwargs[key.strip()] = _parse_value(value)
    try:
        env = builder(**kwargs)
    except TypeError as err:
        raise UserError(f"environment {spec!r}: {err}") from None
    if rest:
        env = POMDP(**{**env.__dict__, "name": spec})
    return env
