"""Advantage estimators (GRPO, GiGPO, HGPO, RLOO) as pure, vectorised numpy functions over step samples.

The math is `shared/spec/method.md`; every function here follows it. One row per step sample (one LLM
call); the steps of one trajectory appear in time order, but trajectories may interleave. Shapes:

    group_ids       (N,) hashable  task group (uid): all rollouts of one task share it
    traj_ids        (N,) hashable  trajectory; a trajectory is the pair (group id, traj id)
    step_returns    (N,) float     R_t: discounted return-to-go, invalid-action penalty already applied
    episode_scores  (N,) float     the trajectory's episode reward minus this step's penalty
    anchors         (N,) hashable  the raw environment observation of the step's state (str)
    -> advantages   (N,) float64   one scalar per step, broadcast later to the step's response tokens

Estimators live in a registry (`register_estimator`), the trainer only calls `compute_advantages(name,
...)`. No Python loop runs over steps or groups: ids are factorised to integers (one C-level dict pass
for strings, a lookup table or a sort for integers), the level-k group of a step is the pair (its
level-(k-1) group, the anchor k steps back), and segment sums come from `np.bincount`. The only loops
are over the levels k = 0..K and, in `discounted_returns`, over the distance to a trajectory's end.
All statistics are float64.

Numerical note: a group's mean is computed as `ref + mean(x - ref)` with `ref` the group's first member
(mathematically the plain mean). A group whose members are all equal then gets deviations of exactly
0.0, so HGPO's "exactly 0" rule leaves uninformative groups out of the weight normalisation whatever
the values (the plain `sum / n` of three 0.1 is not 0.1).

This module imports only numpy and the standard library (and `hgpo_cli.errors`).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from hgpo_cli.errors import UserError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Estimator = Callable[..., FloatArray]

DATA_ARGS: tuple[str, ...] = ("group_ids", "traj_ids", "step_returns", "episode_scores", "anchors")
NORMS: tuple[str, ...] = ("mean_std_norm", "mean_norm")
EPISODE_STATS: tuple[str, ...] = ("steps", "trajectories")
WEIGHTINGS: tuple[str, ...] = ("recipe", "paper")


class EstimatorError(UserError, ValueError):
    """An unknown estimator name, a parameter it does not take, or a parameter value out of range."""


# ----------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Estimator] = {}
_PARAMS: dict[str, tuple[str, ...]] = {}


def register_estimator(name: str) -> Callable[[Estimator], Estimator]:
    """Decorator: register `fn` as the estimator `name`.

    `fn` takes the data arrays as keyword-only arguments named as in `DATA_ARGS` and its parameters as
    keyword-only arguments with defaults; it returns a float64 array of shape (N,). Registering a name
    again with a different function raises EstimatorError (re-running the same definition, as a module
    reload does, is allowed).
    """

    def decorate(fn: Estimator) -> Estimator:
        params = inspect.signature(fn).parameters
        for arg in DATA_ARGS:
            if arg not in params or params[arg].kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"estimator {name!r}: {arg!r} must be a keyword-only argument")
        for pname, p in params.items():
            if pname not in DATA_ARGS and (
                p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty
            ):
                raise TypeError(f"estimator {name!r}: parameter {pname!r} must be keyword-only with a default")
        old = _REGISTRY.get(name)
        if old is not None and old is not fn and _qualified(old) != _qualified(fn):
            raise EstimatorError(f"estimator {name!r} is already registered (to {_qualified(old)})")
        _REGISTRY[name] = fn
        _PARAMS[name] = tuple(p for p in params if p not in DATA_ARGS)
        return fn

    return decorate


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def estimator_names() -> list[str]:
    """The registered estimator names, sorted."""
    return sorted(_REGISTRY)


def get_estimator(name: str) -> Estimator:
    """The estimator function registered as `name`; EstimatorError names the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise EstimatorError(f"unknown advantage estimator {name!r} (one of: {', '.join(estimator_names())})") from None


def estimator_params(name: str) -> tuple[str, ...]:
    """The parameter names (beyond the data arrays) that estimator `name` takes, in signature order."""
    get_estimator(name)
    return _PARAMS[name]


def compute_advantages(
    name: str,
    *,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_returns: npt.ArrayLike,
    episode_scores: npt.ArrayLike,
    anchors: npt.ArrayLike,
    **params: Any,
) -> FloatArray:
    """Advantages (N,) float64 of estimator `name` for N step samples (shapes in the module docstring).

    `params` are the estimator's parameters (`estimator_params(name)`); any other raises EstimatorError.
    """
    fn = get_estimator(name)
    allowed = estimator_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise EstimatorError(
            f"estimator {name!r} does not take {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(allowed) if allowed else 'no parameters'})"
        )
    return fn(
        group_ids=group_ids,
        traj_ids=traj_ids,
        step_returns=step_returns,
        episode_scores=episode_scores,
        anchors=anchors,
        **params,
    )


# ----------------------------------------------------------------------------------------------------
# Building blocks: factorisation, trajectory positions, segment statistics
# ----------------------------------------------------------------------------------------------------


# integer keys are factorised through a lookup table when it has at most this many entries per key (or
# _TABLE_MIN entries), else by sorting
_TABLE_PER_KEY = 8
_TABLE_MIN = 1 << 16


def _factorize(values: np.ndarray, appearance_order: bool = False) -> tuple[IntArray, IntArray]:
    """Integer codes of (N,) hashable values.

    Returns codes (N,) int64 in 0..n-1 and first (n,) int64, the index of each code's first occurrence.
    Strings and other objects go through one dict (exact hashing, iterated in C, no Python loop per
    step) and are numbered in order of first appearance; numbers are numbered in increasing order of
    value (through a table when integers span a small range, else a sort), or in order of first
    appearance when `appearance_order` is set.
    """
    values = np.asarray(values).reshape(-1)
    n = values.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if values.dtype.kind not in "biuf":
        seen: dict[Any, int] = {}  # value -> index of its first occurrence, filled in one C-level pass
        at = np.fromiter(map(seen.setdefault, values.tolist(), itertools.count()), np.int64, count=n)
        first = np.flatnonzero(at == np.arange(n))
        code_at = np.empty(n, np.int64)
        code_at[first] = np.arange(first.size, dtype=np.int64)
        return code_at[at], first
    if values.dtype.kind in "biu":
        low, high = int(values.min()), int(values.max())
        if high - low < max(_TABLE_PER_KEY * n, _TABLE_MIN):
            codes, first = _factorize_bounded(values - low, high - low + 1)
            return _renumber(codes, first) if appearance_order else (codes, first)
    order = np.argsort(values)
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    first = np.minimum.reduceat(order, np.flatnonzero(new)).astype(np.int64)
    codes = np.empty(n, np.int64)
    codes[order] = np.cumsum(new) - 1
    return _renumber(codes, first) if appearance_order else (codes, first)


def _factorize_bounded(keys: IntArray, bound: int) -> tuple[IntArray, IntArray]:
    """`_factorize` of integer keys (M,) in [0, bound) through a table of size `bound` (no sort, O(M +
    bound)); falls back to sorting when the table would be much larger than M. Codes follow key order."""
    m = keys.size
    if bound > max(_TABLE_PER_KEY * m, _TABLE_MIN):
        return _factorize(keys)
    first_at = np.full(bound, m, np.int64)
    np.minimum.at(first_at, keys, np.arange(m, dtype=np.int64))
    present = first_at < m
    return (np.cumsum(present) - 1)[keys], first_at[present]


def _renumber(codes: IntArray, first: IntArray) -> tuple[IntArray, IntArray]:
    """The same factorisation with codes numbered in order of first appearance."""
    by_first = np.argsort(first)
    rank = np.empty(first.size, np.int64)
    rank[by_first] = np.arange(first.size, dtype=np.int64)
    return rank[codes], first[by_first]


@dataclass(frozen=True)
class _Segments:
    """Members grouped into segments: `ids` (M,) segment of each member in 0..n-1, `first` (n,) index of
    each segment's first member, `counts` (n,) members of each segment."""

    ids: IntArray
    first: IntArray
    counts: IntArray

    @classmethod
    def of(cls, keys: np.ndarray, appearance_order: bool = False) -> _Segments:
        ids, first = _factorize(keys, appearance_order)
        return cls.from_ids(ids, first)

    @classmethod
    def from_ids(cls, ids: IntArray, first: IntArray) -> _Segments:
        return cls(ids, first, np.bincount(ids, minlength=first.size).astype(np.int64))

    def without_singletons(self) -> tuple[npt.NDArray[np.bool_], _Segments]:
        """(mask (M,) of the members in segments of size >= 2, those segments renumbered over them)."""
        keep_seg = self.counts >= 2
        mask = keep_seg[self.ids]
        new_id = np.cumsum(keep_seg) - 1
        new_pos = np.cumsum(mask) - 1
        return mask, _Segments(new_id[self.ids[mask]], new_pos[self.first[keep_seg]], self.counts[keep_seg])


@dataclass(frozen=True)
class _Stats:
    """Per-segment statistics (n,) each: mean = ref + shift, std with the requested ddof."""

    ref: FloatArray
    shift: FloatArray
    std: FloatArray

    @property
    def mean(self) -> FloatArray:
        return self.ref + self.shift


def _segment_stats(values: FloatArray, seg: _Segments, ddof: int) -> _Stats:
    """Segment mean and std of values (M,); std = sqrt(sum (x - mean)^2 / (n - ddof)), 0 if n <= ddof."""
    n = seg.first.size
    ref = values[seg.first]
    d = values - ref[seg.ids]
    shift = np.bincount(seg.ids, weights=d, minlength=n) / np.maximum(seg.counts, 1)
    dev = d - shift[seg.ids]
    ss = np.bincount(seg.ids, weights=dev * dev, minlength=n)
    denom = (seg.counts - ddof).astype(np.float64)
    var = np.divide(ss, denom, out=np.zeros(n), where=denom > 0)
    return _Stats(ref, shift, np.sqrt(var))


def _normalise(x: FloatArray, seg_ids: IntArray, stats: _Stats, norm: str, eps: float) -> FloatArray:
    """(x - mean) / (std + eps) under mean_std_norm, x - mean under mean_norm; x (M,), seg_ids (M,)."""
    dev = (x - stats.ref[seg_ids]) - stats.shift[seg_ids]
    if norm == "mean_norm":
        return dev
    return dev / (stats.std[seg_ids] + eps)


def _level_advantage(values: FloatArray, seg: _Segments, norm: str, eps: float) -> FloatArray:
    """HGPO's A_k of every member (M,): `_normalise(values, _segment_stats(values, ddof=0))`, fused."""
    n = seg.first.size
    d = values - values[seg.first][seg.ids]
    dev = d - (np.bincount(seg.ids, weights=d, minlength=n) / seg.counts)[seg.ids]
    if norm == "mean_norm":
        return dev
    std = np.sqrt(np.bincount(seg.ids, weights=dev * dev, minlength=n) / seg.counts)
    return dev / (std[seg.ids] + eps)


@dataclass(frozen=True)
class _Level:
    """HGPO level k over the steps idx (M,) (ascending) that are in a level-k group of size >= 2;
    `seg` groups them; `with_context` counts the steps at position t >= k (singletons included)."""

    k: int
    idx: IntArray
    seg: _Segments
    with_context: int


class _Steps:
    """The step samples of one batch, with lazily built integer codes and trajectory positions."""

    def __init__(
        self,
        group_ids: npt.ArrayLike,
        traj_ids: npt.ArrayLike,
        anchors: npt.ArrayLike,
        step_returns: npt.ArrayLike | None = None,
        episode_scores: npt.ArrayLike | None = None,
    ) -> None:
        self.group_ids = _column("group_ids", group_ids)
        self.n = self.group_ids.size
        self.traj_ids = _column("traj_ids", traj_ids, self.n)
        self.anchors = _column("anchors", anchors, self.n)
        self.returns = None if step_returns is None else _floats("step_returns", step_returns, self.n)
        self.scores = None if episode_scores is None else _floats("episode_scores", episode_scores, self.n)

    @cached_property
    def _groups_and_trajs(self) -> tuple[_Segments, _Segments]:
        t_codes, t_first = _factorize(self.traj_ids, appearance_order=True)
        traj_group = self.group_ids[t_first]
        if bool(np.all(self.group_ids == traj_group[t_codes])):
            # the usual case, each traj id within one group: factorise the groups of the trajectories only
            g_of_traj, g_first = _factorize(traj_group)
            groups = _Segments.from_ids(g_of_traj[t_codes], t_first[g_first])
            return groups, _Segments.from_ids(t_codes, t_first)
        groups = _Segments.of(self.group_ids)
        return groups, _Segments.of(groups.ids * np.int64(t_first.size) + t_codes, appearance_order=True)

    @property
    def groups(self) -> _Segments:
        """Task groups over the N steps."""
        return self._groups_and_trajs[0]

    @property
    def trajs(self) -> _Segments:
        """Trajectories (group id, traj id) over the N steps, numbered in order of first appearance
        (so that sums over the trajectories of a group run in the order of the loop reference)."""
        return self._groups_and_trajs[1]

    @cached_property
    def traj_groups(self) -> _Segments:
        """Task groups over the trajectories (members: trajectories in order of first appearance)."""
        return _Segments.of(self.groups.ids[self.trajs.first])

    @cached_property
    def anchor_codes(self) -> tuple[IntArray, int]:
        codes, first = _factorize(self.anchors)
        return codes, int(first.size)

    @cached_property
    def chain(self) -> tuple[IntArray, IntArray]:
        """(prev, position), each (N,): index of the same trajectory's previous step (-1 at its first
        step) and the step's position t in its trajectory."""
        ids = self.trajs.ids
        # a stable sort keeps time order; 16-bit keys get numpy's radix sort
        order = np.argsort(ids.astype(np.uint16) if self.trajs.first.size <= 1 << 16 else ids, kind="stable")
        prev = np.full(self.n, -1, np.int64)
        position = np.zeros(self.n, np.int64)
        if self.n > 1:
            same = ids[order[1:]] == ids[order[:-1]]
            prev[order[1:][same]] = order[:-1][same]
            starts = np.flatnonzero(np.r_[True, ~same])
            lengths = np.diff(np.r_[starts, self.n])
            position[order] = np.arange(self.n) - np.repeat(starts, lengths)
        return prev, position

    @cached_property
    def anchor_pairs(self) -> tuple[_Segments, IntArray, int]:
        """GiGPO's step groups (task group, anchor) as segments over the N steps, plus each step's anchor
        numbered within its task group (N,) in 0..n_local-1, and n_local."""
        a, n_a = self.anchor_codes
        g = self.groups.ids
        ids, first = _factorize_bounded(g * np.int64(n_a) + a, int(g.max(initial=0) + 1) * n_a)
        pairs = _Segments.from_ids(ids, first)
        g_of_pair = g[first]  # nondecreasing: pair codes follow (group, anchor) order
        local = np.arange(first.size) - np.searchsorted(g_of_pair, g_of_pair)
        return pairs, local[ids], int(local.max(initial=-1) + 1)

    def levels(self, history_length: int) -> list[_Level]:
        """HGPO context groups of size >= 2 for k = 0..K.

        Level-k group of a step at position t >= k: the steps of the same task group with the same
        context C_k = (anchor_{t-k}, ..., anchor_t), built as (level-(k-1) group, anchor_{t-k}). Groups
        nest, so a step alone at level k-1 is alone at level k and is dropped before the next level.
        """
        pairs, local, n_local = self.anchor_pairs
        prev, position = self.chain
        with_context = np.bincount(position, minlength=history_length + 1)[::-1].cumsum()[::-1]
        mask, seg = pairs.without_singletons()
        idx = np.flatnonzero(mask)
        out = [_Level(0, idx, seg, self.n)]
        back = idx  # back[j]: the step k positions before step idx[j]
        for k in range(1, history_length + 1):
            back = prev[back]
            keep = back >= 0
            idx, back = idx[keep], back[keep]
            key = seg.ids[keep] * np.int64(n_local) + local[back]
            mask, seg = _Segments.from_ids(*_factorize_bounded(key, seg.first.size * n_local)).without_singletons()
            idx, back = idx[mask], back[mask]
            out.append(_Level(k, idx, seg, int(with_context[k])))
        return out


def _column(name: str, values: npt.ArrayLike, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (n is not None and arr.size != n):
        raise ValueError(f"{name} must be one-dimensional with one entry per step ({n}), got shape {arr.shape}")
    return arr


def _floats(name: str, values: npt.ArrayLike, n: int) -> FloatArray:
    return _column(name, np.asarray(values, dtype=np.float64), n)


def _is_number(value: Any) -> bool:
    """A finite real number (bools excluded)."""
    return (
        isinstance(value, (int, float, np.floating, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def _check_history_length(value: Any) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise EstimatorError(f"history_length={value!r} is not allowed (an integer >= 0)")


def _check(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise EstimatorError(f"{name}={value!r} is not allowed (one of: {', '.join(allowed)})")


def _check_common(norm: str, eps: float, episode_stats: str | None = None) -> None:
    _check("norm", norm, NORMS)
    if episode_stats is not None:
        _check("episode_stats", episode_stats, EPISODE_STATS)
    if not (_is_number(eps) and eps > 0):
        raise EstimatorError(f"eps={eps!r} is not allowed (a finite number > 0)")


def _episode_advantage(steps: _Steps, norm: str, eps: float, episode_stats: str) -> FloatArray:
    """A_E (N,): GRPO's episode-level advantage of each step from its episode score.

    steps: over the step samples of each task group (a trajectory counts once per step), unbiased std.
    trajectories: over the trajectory scores (mean of their steps' scores), each counted once, unbiased
    std; each step is normalised with its own episode score. A group with a single sample (step or
    trajectory) gets mean 0, std 1.
    """
    scores = steps.scores
    assert scores is not None
    if episode_stats == "steps":
        seg, step_seg = steps.groups, steps.groups.ids
        stats = _segment_stats(scores, seg, ddof=1)
    else:
        traj_score = _segment_stats(scores, steps.trajs, ddof=0).mean
        seg = steps.traj_groups
        stats = _segment_stats(traj_score, seg, ddof=1)
        step_seg = seg.ids[steps.trajs.ids]
    single = seg.counts == 1  # mean 0, std 1
    stats = _Stats(
        np.where(single, 0.0, stats.ref), np.where(single, 0.0, stats.shift), np.where(single, 1.0, stats.std)
    )
    return _normalise(scores, step_seg, stats, norm, eps)


# ----------------------------------------------------------------------------------------------------
# Estimators
# ----------------------------------------------------------------------------------------------------


@register_estimator("grpo")
def grpo(
    *,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_returns: npt.ArrayLike,
    episode_scores: npt.ArrayLike,
    anchors: npt.ArrayLike,
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    episode_stats: str = "steps",
) -> FloatArray:
    """GRPO, trajectory level: A_E(i) = (score_i - mean_G) / (std_G + eps) (mean_norm: score_i - mean_G).

    Statistics per task group G over its step samples (episode_stats="steps", verl-agent) or over its
    trajectories (episode_stats="trajectories", classic GRPO), unbiased std; a group with a single sample
    has mean 0, std 1. Inputs (N,), output (N,) float64. `step_returns` and `anchors` are not used.
    """
    _check_common(norm, eps, episode_stats)
    steps = _Steps(group_ids, traj_ids, anchors, step_returns, episode_scores)
    return _episode_advantage(steps, norm, float(eps), episode_stats)


@register_estimator("gigpo")
def gigpo(
    *,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_returns: npt.ArrayLike,
    episode_scores: npt.ArrayLike,
    anchors: npt.ArrayLike,
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    episode_stats: str = "steps",
    step_advantage_w: float = 1.0,
) -> FloatArray:
    """GiGPO: A = A_E + omega * A_S with omega = step_advantage_w.

    A_E as GRPO. A_S(i) = (R_i - mean_S) / (std_S + eps) (mean_norm: R_i - mean_S), with step group S =
    all steps of the task group with an identical anchor (across trajectories and time), unbiased std; a
    singleton step group gives A_S = 0. Inputs (N,), output (N,) float64.
    """
    _check_common(norm, eps, episode_stats)
    steps = _Steps(group_ids, traj_ids, anchors, step_returns, episode_scores)
    returns = steps.returns
    assert returns is not None
    a_e = _episode_advantage(steps, norm, float(eps), episode_stats)
    seg = steps.anchor_pairs[0]
    a_s = _normalise(returns, seg.ids, _segment_stats(returns, seg, ddof=1), norm, float(eps))
    a_s = np.where(seg.counts[seg.ids] >= 2, a_s, 0.0)
    return a_e + float(step_advantage_w) * a_s


@register_estimator("hgpo")
def hgpo(
    *,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_returns: npt.ArrayLike,
    episode_scores: npt.ArrayLike,
    anchors: npt.ArrayLike,
    norm: str = "mean_std_norm",
    eps: float = 1e-6,
    history_length: int = 2,
    alpha: float = 1.0,
    weighting: str = "recipe",
    base_group: bool = False,
    episode_stats: str = "steps",
) -> FloatArray:
    """HGPO: A(i) = sum_k w_k A_k(i) / (sum_k w_k + eps) over the step's items with A_k != 0 exactly.

    Level k = 0..K (K = history_length): the step's group = steps of the same task group with the same
    context C_k = (anchor_{t-k}, ..., anchor_t) in their own trajectory (steps with t < k have none).
    A_k = (R_i - mean) / (std_population + eps) (mean_norm: R_i - mean) over the group's step returns;
    groups of size 1 give no item. Weights w_k = (k + 2)^alpha (weighting="recipe") or (k + 1)^alpha
    ("paper"). base_group adds A_E (as GRPO) as one more item of weight 1^alpha = 1. No item: A = 0.
    Inputs (N,), output (N,) float64.
    """
    _check_common(norm, eps, episode_stats)
    _check("weighting", weighting, WEIGHTINGS)
    _check_history_length(history_length)
    if not (_is_number(alpha) and alpha >= 0):
        raise EstimatorError(f"alpha={alpha!r} is not allowed (a finite number >= 0)")
    eps = float(eps)
    steps = _Steps(group_ids, traj_ids, anchors, step_returns, episode_scores)
    returns = steps.returns
    assert returns is not None
    offset = 2.0 if weighting == "recipe" else 1.0
    num = np.zeros(steps.n)
    den = np.zeros(steps.n)
    for level in steps.levels(int(history_length)):
        a_k = _level_advantage(returns[level.idx], level.seg, norm, eps)
        w = (level.k + offset) ** float(alpha)
        num[level.idx] += w * a_k  # an exact zero adds nothing to the sum ...
        den[level.idx] += np.where(a_k != 0.0, w, 0.0)  # ... nor to the weights: it is left out
    if base_group:
        a_e = _episode_advantage(steps, norm, eps, episode_stats)
        present = a_e != 0.0
        num += np.where(present, a_e, 0.0)
        den += np.where(present, 1.0, 0.0)
    return num / (den + eps)


@register_estimator("rloo")
def rloo(
    *,
    group_ids: npt.ArrayLike,
    traj_ids: npt.ArrayLike,
    step_returns: npt.ArrayLike,
    episode_scores: npt.ArrayLike,
    anchors: npt.ArrayLike,
) -> FloatArray:
    """RLOO: A(i) = score_i - mean_{j' != j} T_{j'}, the leave-one-out baseline over trajectories.

    T_j = mean of trajectory j's step episode scores; j is step i's trajectory, j' the other trajectories
    of its task group. A group with a single trajectory gives 0. Inputs (N,), output (N,) float64.
    """
    steps = _Steps(group_ids, traj_ids, anchors, step_returns, episode_scores)
    scores = steps.scores
    assert scores is not None
    traj_score = _segment_stats(scores, steps.trajs, ddof=0).mean
    tg = steps.traj_groups
    # offsets from the group's first trajectory score, so that equal scores give exactly 0
    ref = traj_score[tg.first][tg.ids]
    d = traj_score - ref
    total = np.bincount(tg.ids, weights=d, minlength=tg.first.size)[tg.ids]
    m = tg.counts[tg.ids].astype(np.float64)
    others = np.divide(total - d, m - 1.0, out=np.zeros(m.size), where=m > 1)
    t = steps.trajs.ids
    return np.where(m[t] > 1, (scores - ref[t]) - others[t], 0.0)


# ----------------------------------------------------------------------------------------------------
# Returns, penalties, diagnostics
# ----------------------------------------------------------------------------------------------------


def discounted_returns(rewards: npt.ArrayLike, traj_ids: npt.ArrayLike, gamma: float) -> FloatArray:
    """Return-to-go R_t = sum_{j>=t} gamma^(j-t) r_j within each trajectory (R_t = r_t + gamma R_{t+1}).

    rewards (N,) float, traj_ids (N,) hashable (steps of a trajectory in time order, trajectories may
    interleave) -> (N,) float64. O(N) work in max-trajectory-length vectorised passes.
    """
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    traj = _column("traj_ids", traj_ids, r.size)
    out = np.zeros(r.size)
    if r.size == 0:
        return out
    codes, _ = _factorize(traj)
    order = np.argsort(codes.astype(np.uint16) if codes.max() < 1 << 16 else codes, kind="stable")
    sc = codes[order]
    nxt = np.full(r.size, -1, np.int64)  # next step of the same trajectory, original indices
    same = sc[1:] == sc[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    # steps to the end of the trajectory: 0 for a last step
    last_pos = np.flatnonzero(np.r_[~same, True])  # sorted positions of trajectory ends
    end_of = np.repeat(last_pos, np.diff(np.r_[-1, last_pos]))
    to_end = np.empty(r.size, np.int64)
    to_end[order] = end_of - np.arange(r.size)
    by_dist = np.argsort(to_end, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(to_end))]
    for d in range(bounds.size - 1):
        i = by_dist[bounds[d] : bounds[d + 1]]
        out[i] = r[i] if d == 0 else r[i] + gamma * out[nxt[i]]
    return out


def apply_invalid_penalty(
    step_returns: npt.ArrayLike, episode_rewards: npt.ArrayLike, valid: npt.ArrayLike, penalty: float
) -> tuple[FloatArray, FloatArray]:
    """Subtract `penalty` at invalid steps from that step's return only (after discounting, not
    discounted back) and from that step's episode score.

    step_returns (N,) discounted returns, episode_rewards (N,) the trajectory's summed env reward
    broadcast per step, valid (N,) bool -> (returns (N,), episode_scores (N,)) float64.
    """
    ret = np.asarray(step_returns, dtype=np.float64).reshape(-1)
    ep = _floats("episode_rewards", episode_rewards, ret.size)
    ok = _column("valid", np.asarray(valid, dtype=bool), ret.size)
    pen = np.where(ok, 0.0, float(penalty))
    return ret - pen, ep - pen


def group_stats(
    group_ids: npt.ArrayLike, traj_ids: npt.ArrayLike, anchors: npt.ArrayLike, history_length: int
) -> dict[int, dict[str, Any]]:
    """HGPO grouping diagnostics per level k = 0..K (inputs (N,) as for the estimators).

    For each k: "groups" (number of level-k groups, singletons included), "steps" (steps that have a
    level-k context, i.e. position t >= k), "steps_grouped" (of those, the steps in a group of size >= 2,
    which are the ones that can carry a level-k item) and "size_hist" ({group size: number of groups}).
    """
    _check_history_length(history_length)
    steps = _Steps(group_ids, traj_ids, anchors)
    out: dict[int, dict[str, Any]] = {}
    for level in steps.levels(int(history_length)):
        alone = level.with_context - level.idx.size
        sizes, n_of = np.unique(level.seg.counts, return_counts=True)
        hist = {1: alone} if alone else {}
        hist.update({int(s): int(c) for s, c in zip(sizes, n_of, strict=True)})
        out[level.k] = {
            "groups": int(level.seg.first.size) + alone,
            "steps": level.with_context,
            "steps_grouped": int(level.idx.size),
            "size_hist": hist,
        }
    return out
