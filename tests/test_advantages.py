"""Advantage estimators: hand-computed examples, properties, and the vectorised code against the loop
reference (tests/reference_advantages.py) on generated batches."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hgpo_cli.errors import UserError
from hgpo_cli.train import advantages as adv
from hgpo_cli.train.advantages import (
    EstimatorError,
    apply_invalid_penalty,
    compute_advantages,
    discounted_returns,
    estimator_names,
    estimator_params,
    get_estimator,
    group_stats,
    register_estimator,
)
from tests import reference_advantages as ref

EPS = 1e-6
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
HAND = {"rtol": 1e-12, "atol": 1e-12}
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def batch(steps: list[tuple[Any, Any, float, float, str]]) -> dict[str, np.ndarray]:
    """Keyword arguments of compute_advantages from rows (group, traj, return, score, anchor)."""
    g, t, r, s, a = zip(*steps, strict=True)
    return {
        "group_ids": np.array(g, dtype=object),
        "traj_ids": np.array(t, dtype=object),
        "step_returns": np.array(r, dtype=np.float64),
        "episode_scores": np.array(s, dtype=np.float64),
        "anchors": np.array(a, dtype=object),
    }


def combine(items: list[tuple[float, float]], eps: float = EPS) -> float:
    """sum w A / (sum w + eps) over the items (weight, A) with A != 0; the hand examples list them."""
    kept = [(w, a) for w, a in items if a != 0.0]
    return sum(w * a for w, a in kept) / (sum(w for w, _ in kept) + eps) if kept else 0.0


# ----------------------------------------------------------------------------------------------------
# Hand-computed examples
# ----------------------------------------------------------------------------------------------------

# GRPO example. Group "a": trajectory a1 with two steps (scores 1.0, 0.8: the second step was invalid,
# penalty 0.2), trajectory a2 with one step (score 0.0). Group "b": one step (score 5.0).
GRPO_ROWS = [
    ("a", "a1", 0.0, 1.0, "x"),
    ("b", "b1", 0.0, 5.0, "x"),
    ("a", "a2", 0.0, 0.0, "x"),
    ("a", "a1", 0.0, 0.8, "y"),
]


def test_grpo_steps_mean_std_by_hand() -> None:
    # group a over its step samples [1.0, 0.0, 0.8]: mean 0.6, deviations [0.4, -0.6, 0.2],
    # sum of squares 0.16 + 0.36 + 0.04 = 0.56, unbiased var 0.56 / 2 = 0.28, std 0.529150
    # -> [0.755929, -1.133893, 0.377964]; group b has one sample: mean 0, std 1 -> 5 / (1 + eps)
    s = math.sqrt(0.28)
    out = compute_advantages("grpo", **batch(GRPO_ROWS))
    np.testing.assert_allclose(out, [0.4 / (s + EPS), 5.0 / (1 + EPS), -0.6 / (s + EPS), 0.2 / (s + EPS)], **HAND)
    np.testing.assert_allclose(out, [0.755929, 4.999995, -1.133893, 0.377964], atol=1e-5)  # eps moves the 6th digit


def test_grpo_steps_mean_norm_by_hand() -> None:
    # mean 0.6 subtracted in group a; the single sample of group b keeps its score (mean 0)
    out = compute_advantages("grpo", norm="mean_norm", **batch(GRPO_ROWS))
    np.testing.assert_allclose(out, [0.4, 5.0, -0.6, 0.2], **HAND)


def test_grpo_trajectories_by_hand() -> None:
    # trajectory scores in group a: a1 = (1.0 + 0.8) / 2 = 0.9, a2 = 0.0; mean 0.45,
    # unbiased std over the two trajectories sqrt((0.45^2 + 0.45^2) / 1) = 0.636396.
    # each step uses its own score: (1.0 - 0.45) / std = 0.864242, (0.0 - 0.45) / std = -0.707107,
    # (0.8 - 0.45) / std = 0.549972; group b has a single trajectory: 5 / (1 + eps)
    s = math.sqrt(2 * 0.45**2)
    out = compute_advantages("grpo", episode_stats="trajectories", **batch(GRPO_ROWS))
    np.testing.assert_allclose(out, [0.55 / (s + EPS), 5.0 / (1 + EPS), -0.45 / (s + EPS), 0.35 / (s + EPS)], **HAND)
    np.testing.assert_allclose(out, [0.864242, 4.999995, -0.707107, 0.549972], atol=1e-5)  # eps moves the 6th digit
    out = compute_advantages("grpo", episode_stats="trajectories", norm="mean_norm", **batch(GRPO_ROWS))
    np.testing.assert_allclose(out, [0.55, 5.0, -0.45, 0.35], **HAND)


# GiGPO example, one group: a1 = anchors (A, B), returns (0.9, 1.0), scores 1;
# a2 = anchors (A, C), returns (0.0, 0.0), scores 0. Listed interleaved.
GIGPO_ROWS = [
    ("g", "a1", 0.9, 1.0, "A"),
    ("g", "a2", 0.0, 0.0, "A"),
    ("g", "a1", 1.0, 1.0, "B"),
    ("g", "a2", 0.0, 0.0, "C"),
]


def test_gigpo_by_hand() -> None:
    # A_E over [1, 0, 1, 0]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3) -> +-0.5 / 0.577350
    #     = +-0.866025
    # A_S: step group A = {0.9, 0.0}: mean 0.45, unbiased std sqrt(2 * 0.45^2) = 0.636396 -> +-0.707107;
    #     B and C are singletons -> 0
    # A = A_E + 1.0 * A_S = [1.573132, -1.573132, 0.866025, -0.866025]
    e = 0.5 / (math.sqrt(1 / 3) + EPS)
    s = 0.45 / (math.sqrt(2 * 0.45**2) + EPS)
    out = compute_advantages("gigpo", **batch(GIGPO_ROWS))
    np.testing.assert_allclose(out, [e + s, -e - s, e, -e], **HAND)
    np.testing.assert_allclose(out, [1.573132, -1.573132, 0.866025, -0.866025], atol=1e-5)  # eps moves the 6th digit
    # mean_norm, omega = 0.5: A_E = +-0.5, A_S = +-0.45 -> [0.725, -0.725, 0.5, -0.5]
    out = compute_advantages("gigpo", norm="mean_norm", step_advantage_w=0.5, **batch(GIGPO_ROWS))
    np.testing.assert_allclose(out, [0.725, -0.725, 0.5, -0.5], **HAND)


# HGPO example, one group, four trajectories of three steps, listed round-robin (interleaved):
#   t1: anchors X Y Y, returns 1 2 3, score 1      t2: anchors X Y Z, returns 3 4 5, score 1
#   t3: anchors W Y Y, returns 0 5 0, score 0      t4: anchors W Y Y, returns 2 5 2, score 0
HGPO_TRAJS = {
    "t1": ("XYY", (1.0, 2.0, 3.0), 1.0),
    "t2": ("XYZ", (3.0, 4.0, 5.0), 1.0),
    "t3": ("WYY", (0.0, 5.0, 0.0), 0.0),
    "t4": ("WYY", (2.0, 5.0, 2.0), 0.0),
}
HGPO_ROWS = [
    ("g", name, ret[t], score, anchors[t]) for t in range(3) for name, (anchors, ret, score) in HGPO_TRAJS.items()
]
HGPO_KEYS = [f"{name}s{t}" for t in range(3) for name in HGPO_TRAJS]  # row order: t1s0 t2s0 t3s0 t4s0 t1s1 ...
S0 = math.sqrt(20 / 7)


def hgpo_items(norm: str) -> dict[str, list[tuple[int, float]]]:
    """The nonzero level items (k, A_k) of each step of the HGPO example, worked out by hand.

    Level 0 (anchor): X = {t1s0: 1, t2s0: 3}: mean 2, population std 1 -> -1, +1.
      W = {t3s0: 0, t4s0: 2}: mean 1, std 1 -> -1, +1. Z = {t2s2} singleton: no item.
      Y = {t1s1: 2, t1s2: 3, t2s1: 4, t3s1: 5, t3s2: 0, t4s1: 5, t4s2: 2}: mean 21/7 = 3, deviations
      [-1, 0, 1, 2, -3, 2, -1], population var 20/7, std 1.690309; t1s2's A_0 is exactly 0 -> left out.
    Level 1 (previous anchor, anchor): (X,Y) = {t1s1: 2, t2s1: 4} -> -1, +1.
      (Y,Y) = {t1s2: 3, t3s2: 0, t4s2: 2}: mean 5/3, deviations [4/3, -5/3, 1/3], var 14/9, std sqrt(14)/3.
      (W,Y) = {t3s1: 5, t4s1: 5}: all equal -> A_1 = 0 -> left out. (Y,Z) = {t2s2} singleton.
    Level 2: (W,Y,Y) = {t3s2: 0, t4s2: 2} -> -1, +1; (X,Y,Y) and (X,Y,Z) are singletons.
    """
    std = norm == "mean_std_norm"

    def a(dev: float, s: float) -> float:
        return dev / (s + EPS) if std else dev

    s1 = math.sqrt(14) / 3
    return {
        "t1s0": [(0, a(-1, 1))],
        "t2s0": [(0, a(1, 1))],
        "t3s0": [(0, a(-1, 1))],
        "t4s0": [(0, a(1, 1))],
        "t1s1": [(0, a(-1, S0)), (1, a(-1, 1))],
        "t2s1": [(0, a(1, S0)), (1, a(1, 1))],
        "t3s1": [(0, a(2, S0))],
        "t4s1": [(0, a(2, S0))],
        "t1s2": [(1, a(4 / 3, s1))],
        "t2s2": [],
        "t3s2": [(0, a(-3, S0)), (1, a(-5 / 3, s1)), (2, a(-1, 1))],
        "t4s2": [(0, a(-1, S0)), (1, a(1 / 3, s1)), (2, a(1, 1))],
    }


# A_E of the example (episode_stats="steps"): 12 samples, six with score 1 and six with 0: mean 0.5,
# unbiased std sqrt(12 * 0.25 / 11) = sqrt(3/11) = 0.522233 -> +-0.957425 (mean_norm: +-0.5).
def hgpo_base_item(key: str, norm: str) -> float:
    sign = 1.0 if key[:2] in ("t1", "t2") else -1.0
    return sign * (0.5 / (math.sqrt(3 / 11) + EPS) if norm == "mean_std_norm" else 0.5)


@pytest.mark.parametrize("norm", ["mean_std_norm", "mean_norm"])
@pytest.mark.parametrize("history_length", [0, 1, 2])
@pytest.mark.parametrize("weighting", ["recipe", "paper"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("base_group", [False, True])
def test_hgpo_by_hand(norm: str, history_length: int, weighting: str, alpha: float, base_group: bool) -> None:
    items = hgpo_items(norm)
    offset = 2 if weighting == "recipe" else 1
    expected = []
    for key in HGPO_KEYS:
        weighted = [((k + offset) ** alpha, a_k) for k, a_k in items[key] if k <= history_length]
        if base_group:
            weighted.append((1.0, hgpo_base_item(key, norm)))
        expected.append(combine(weighted))
    out = compute_advantages(
        "hgpo",
        norm=norm,
        history_length=history_length,
        weighting=weighting,
        alpha=alpha,
        base_group=base_group,
        **batch(HGPO_ROWS),
    )
    np.testing.assert_allclose(out, expected, **HAND)


def test_hgpo_by_hand_literal_numbers() -> None:
    # Defaults (recipe, alpha 1, K = 2, mean_std_norm): weights 2, 3, 4 for k = 0, 1, 2.
    # t3s2: (2 * -3/1.690309 + 3 * -5/sqrt(14) + 4 * -1) / 9 = (-3.549648 - 4.008919 - 4) / 9 = -1.284285
    # t4s2: (2 * -1/1.690309 + 3 * 1/sqrt(14) + 4 * 1) / 9 = (-1.183216 + 0.801784 + 4) / 9 = 0.402063
    # t1s1: (2 * -0.591608 + 3 * -1) / 5 = -0.836643; t1s2: only level 1 -> 4/sqrt(14) = 1.069045
    # t3s1: only level 0 (level 1 is exactly 0) -> 2/1.690309 = 1.183216; t2s2: no item -> 0
    out = dict(zip(HGPO_KEYS, compute_advantages("hgpo", **batch(HGPO_ROWS)), strict=True))
    expected = {"t3s2": -1.284285, "t4s2": 0.402063, "t1s1": -0.836643, "t1s2": 1.069045, "t3s1": 1.183216}
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-5), key
    assert out["t2s2"] == 0.0
    # paper weights 1, 2, 3, alpha 1, K = 2, mean_norm. t3s2: (1 * -3 + 2 * -5/3 + 3 * -1) / 6 = -1.555555
    out = dict(
        zip(
            HGPO_KEYS,
            compute_advantages("hgpo", weighting="paper", norm="mean_norm", **batch(HGPO_ROWS)),
            strict=True,
        )
    )
    assert out["t3s2"] == pytest.approx((-3 - 10 / 3 - 3) / (6 + EPS), rel=1e-12)
    assert out["t3s2"] == pytest.approx(-1.555555, abs=1e-5)


def test_hgpo_alpha_zero_is_the_plain_mean_of_items() -> None:
    # alpha = 0: every weight is 1, recipe and paper agree. t3s2 (mean_norm, K = 2): (-3 - 5/3 - 1) / 3
    kw = batch(HGPO_ROWS)
    recipe = compute_advantages("hgpo", alpha=0.0, weighting="recipe", norm="mean_norm", **kw)
    paper = compute_advantages("hgpo", alpha=0.0, weighting="paper", norm="mean_norm", **kw)
    np.testing.assert_array_equal(recipe, paper)
    assert recipe[HGPO_KEYS.index("t3s2")] == pytest.approx((-3 - 5 / 3 - 1) / (3 + EPS), rel=1e-12)


def test_rloo_by_hand() -> None:
    # group g: trajectory scores T1 = 1.0 (steps 1.0, 1.0), T2 = -0.05 (steps 0.0, -0.1), T3 = 0.5.
    # t1 steps: 1.0 - (T2 + T3) / 2 = 1.0 - 0.225 = 0.775
    # t2 steps: 0.0 - (T1 + T3) / 2 = -0.75 and -0.1 - 0.75 = -0.85
    # t3 step:  0.5 - (T1 + T2) / 2 = 0.5 - 0.475 = 0.025;  group h has one trajectory -> 0
    rows = [
        ("g", "t1", 0.0, 1.0, "x"),
        ("g", "t2", 0.0, 0.0, "x"),
        ("h", "u1", 0.0, 7.0, "x"),
        ("g", "t3", 0.0, 0.5, "x"),
        ("g", "t1", 0.0, 1.0, "x"),
        ("g", "t2", 0.0, -0.1, "x"),
    ]
    out = compute_advantages("rloo", **batch(rows))
    np.testing.assert_allclose(out, [0.775, -0.75, 0.0, 0.025, 0.775, -0.85], **HAND)


def test_discounted_returns_by_hand() -> None:
    # t1 rewards 0, 0, 10 -> R = 0.95^2 * 10 = 9.025, 0.95 * 10 = 9.5, 10
    # t2 rewards 1, 2 -> R = 1 + 0.95 * 2 = 2.9, 2
    out = discounted_returns([0.0, 1.0, 0.0, 2.0, 10.0], ["t1", "t2", "t1", "t2", "t1"], 0.95)
    np.testing.assert_allclose(out, [9.025, 2.9, 9.5, 2.0, 10.0], **HAND)
    np.testing.assert_array_equal(discounted_returns([1.0, 2.0], [0, 0], 0.0), [1.0, 2.0])
    assert discounted_returns([], [], 0.9).shape == (0,)


def test_apply_invalid_penalty_by_hand() -> None:
    # the invalid middle step loses 0.1 from its own return (not discounted back) and from its score
    returns, scores = apply_invalid_penalty([9.025, 9.5, 10.0], [10.0, 10.0, 10.0], [True, False, True], 0.1)
    np.testing.assert_allclose(returns, [9.025, 9.4, 10.0], **HAND)
    np.testing.assert_allclose(scores, [10.0, 9.9, 10.0], **HAND)
    assert returns.dtype == scores.dtype == np.float64


def test_group_stats_rejects_a_negative_history_length() -> None:
    with pytest.raises(EstimatorError, match="history_length=-1"):
        group_stats(["g"], ["t"], ["a"], -1)


def test_group_stats_by_hand() -> None:
    # from the HGPO example: level 0 groups X, W, Y (7 steps), Z (1); level 1 (X,Y), (Y,Y) (3), (W,Y), (Y,Z);
    # level 2 (X,Y,Y), (X,Y,Z), (W,Y,Y) (2)
    kw = batch(HGPO_ROWS)
    stats = group_stats(kw["group_ids"], kw["traj_ids"], kw["anchors"], 2)
    assert stats == {
        0: {"groups": 4, "steps": 12, "steps_grouped": 11, "size_hist": {1: 1, 2: 2, 7: 1}},
        1: {"groups": 4, "steps": 8, "steps_grouped": 7, "size_hist": {1: 1, 2: 2, 3: 1}},
        2: {"groups": 3, "steps": 4, "steps_grouped": 2, "size_hist": {1: 2, 2: 1}},
    }


# ----------------------------------------------------------------------------------------------------
# Generated batches
# ----------------------------------------------------------------------------------------------------

NICE = [0.0, 10.0, 9.5, 9.025, -0.1, 8.9, 0.1, 1.0, 2.0]


@st.composite
def batches(draw: st.DrawFn, integer_values: bool = False) -> dict[str, np.ndarray]:
    """Several groups, trajectories of different lengths, anchors from a small alphabet (contexts
    collide), and the trajectories' steps interleaved in a random order that keeps each one's time order."""
    value = st.integers(-3, 3).map(float) if integer_values else st.sampled_from(NICE) | st.floats(-20, 20)
    int_ids = draw(st.booleans())
    local_traj_ids = draw(st.booleans())  # trajectory ids reused across groups: (group, traj) is the key
    trajs = []
    for g in range(draw(st.integers(1, 4))):
        alphabet = "abc"[: draw(st.integers(1, 3))]
        for j in range(draw(st.integers(1, 4))):
            n = draw(st.integers(1, 6))
            tid = j if local_traj_ids else g * 10 + j
            trajs.append(
                {
                    "group": g if int_ids else f"task-{g}",
                    "traj": tid if int_ids else f"traj-{tid}",
                    "anchors": draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n)),
                    "returns": draw(st.lists(value, min_size=n, max_size=n)),
                    "scores": draw(st.lists(value, min_size=n, max_size=n)),
                }
            )
    order = draw(st.permutations([i for i, tr in enumerate(trajs) for _ in tr["anchors"]]))
    rows, taken = [], [0] * len(trajs)
    for i in order:
        tr, t = trajs[i], taken[i]
        taken[i] += 1
        rows.append((tr["group"], tr["traj"], tr["returns"][t], tr["scores"][t], tr["anchors"][t]))
    return batch(rows)


def reference(name: str, kw: dict[str, np.ndarray], **params: Any) -> np.ndarray:
    args = [kw[k].tolist() for k in adv.DATA_ARGS]
    return np.array(ref.ESTIMATORS[name](*args, **params), dtype=np.float64)


@SETTINGS
@given(kw=batches(), norm=st.sampled_from(adv.NORMS), episode_stats=st.sampled_from(adv.EPISODE_STATS))
def test_grpo_matches_reference(kw: dict[str, np.ndarray], norm: str, episode_stats: str) -> None:
    params = {"norm": norm, "episode_stats": episode_stats}
    np.testing.assert_allclose(compute_advantages("grpo", **kw, **params), reference("grpo", kw, **params), **TIGHT)


@SETTINGS
@given(
    kw=batches(),
    norm=st.sampled_from(adv.NORMS),
    episode_stats=st.sampled_from(adv.EPISODE_STATS),
    w=st.sampled_from([1.0, 0.5, 0.0]),
)
def test_gigpo_matches_reference(kw: dict[str, np.ndarray], norm: str, episode_stats: str, w: float) -> None:
    params = {"norm": norm, "episode_stats": episode_stats, "step_advantage_w": w}
    np.testing.assert_allclose(compute_advantages("gigpo", **kw, **params), reference("gigpo", kw, **params), **TIGHT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kw=batches(),
    norm=st.sampled_from(adv.NORMS),
    history_length=st.integers(0, 4),
    alpha=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    weighting=st.sampled_from(adv.WEIGHTINGS),
    base_group=st.booleans(),
    episode_stats=st.sampled_from(adv.EPISODE_STATS),
)
def test_hgpo_matches_reference(kw: dict[str, np.ndarray], **params: Any) -> None:
    np.testing.assert_allclose(compute_advantages("hgpo", **kw, **params), reference("hgpo", kw, **params), **TIGHT)


@SETTINGS
@given(
    kw=batches(),
    history_length=st.integers(0, 3),
    norm=st.sampled_from(adv.NORMS),
    episode_stats=st.sampled_from(adv.EPISODE_STATS),
)
def test_sorting_factorisation_matches_reference(kw: dict[str, np.ndarray], **params: Any) -> None:
    # large batches factorise integer keys by sorting instead of a lookup table: force that path
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(adv, "_TABLE_MIN", 0)
        mp.setattr(adv, "_TABLE_PER_KEY", 0)
        for name, extra in [("hgpo", {"base_group": True}), ("gigpo", {})]:
            p = {**params, **extra} if name == "hgpo" else {k: params[k] for k in ("norm", "episode_stats")}
            out = compute_advantages(name, **kw, **p)
            np.testing.assert_allclose(out, reference(name, kw, **p), **TIGHT)
        args = (kw["group_ids"], kw["traj_ids"], kw["anchors"], params["history_length"])
        assert group_stats(*args) == ref.group_stats(*(a.tolist() for a in args[:3]), params["history_length"])


@pytest.mark.parametrize(
    "values",
    [
        [True, False, True, True],
        np.array([5, 3, 5, 9, 3], dtype=np.uint8),
        [2**62, -(2**62), 2**62, 7],
        [0.5, 0.1, 0.5, -3.0],
        ["b", "a", "b", "c", "a"],
        np.array([1, "1", 1, ("t", 1), "1"], dtype=object),
    ],
)
def test_factorize_codes_and_first(values: Any) -> None:
    arr = np.asarray(values)
    for appearance in (False, True):
        codes, first = adv._factorize(arr, appearance)
        items = arr.tolist()
        assert codes.dtype == first.dtype == np.int64
        assert len(first) == len({(type(v).__name__, v) for v in items})
        for i, j in itertools.combinations(range(len(items)), 2):
            assert (codes[i] == codes[j]) == (items[i] == items[j] and type(items[i]) is type(items[j]))
        assert [items.index(items[f]) for f in first] == list(first)  # the first occurrence
        assert sorted(codes[first]) == list(range(len(first)))
        if appearance:
            assert list(codes[first]) == list(range(len(first))) and list(first) == sorted(first)


@SETTINGS
@given(kw=batches())
def test_rloo_matches_reference(kw: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(compute_advantages("rloo", **kw), reference("rloo", kw), **TIGHT)


@SETTINGS
@given(kw=batches(), history_length=st.integers(0, 4))
def test_group_stats_matches_reference(kw: dict[str, np.ndarray], history_length: int) -> None:
    args = (kw["group_ids"], kw["traj_ids"], kw["anchors"], history_length)
    assert group_stats(*args) == ref.group_stats(*(a.tolist() for a in args[:3]), history_length)


@SETTINGS
@given(kw=batches(), gamma=st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_discounted_returns_matches_reference(kw: dict[str, np.ndarray], gamma: float) -> None:
    # trajectory ids for discounted_returns must be unique across groups: key them by (group, traj)
    traj = np.array([f"{g}/{t}" for g, t in zip(kw["group_ids"], kw["traj_ids"], strict=True)])
    out = discounted_returns(kw["step_returns"], traj, gamma)
    np.testing.assert_allclose(out, ref.discounted_returns(kw["step_returns"].tolist(), traj.tolist(), gamma), **TIGHT)


# ----------------------------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=batches(integer_values=True))
def test_hgpo_k0_mean_norm_is_gigpo_step_term(kw: dict[str, np.ndarray]) -> None:
    # HGPO with K = 0: the only item is A_0 = GiGPO's A_S (under mean_norm the std convention does not
    # matter); A = w0 A_0 / (w0 + eps) when A_0 != 0, else 0. GiGPO - GRPO = A_S (exactly 0 where A_S is).
    a_s = compute_advantages("gigpo", norm="mean_norm", **kw) - compute_advantages("grpo", norm="mean_norm", **kw)
    h = compute_advantages("hgpo", history_length=0, norm="mean_norm", **kw)
    np.testing.assert_allclose(h * (2.0 + EPS) / 2.0, a_s, rtol=1e-12, atol=1e-9)


def _permute_trajectories(kw: dict[str, np.ndarray], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Lay the trajectories out contiguously in a random order; returns the new batch and the index map."""
    keys = list(zip(kw["group_ids"].tolist(), kw["traj_ids"].tolist(), strict=True))
    distinct = list(dict.fromkeys(keys))
    rng = np.random.default_rng(seed)
    perm = [distinct[i] for i in rng.permutation(len(distinct))]
    index = np.array([i for key in perm for i, k in enumerate(keys) if k == key])
    return {name: values[index] for name, values in kw.items()}, index


ALL_CONFIGS = [
    ("grpo", {}),
    ("grpo", {"episode_stats": "trajectories"}),
    ("gigpo", {}),
    ("gigpo", {"norm": "mean_norm", "episode_stats": "trajectories"}),
    ("hgpo", {"history_length": 3}),
    ("hgpo", {"history_length": 2, "base_group": True, "weighting": "paper"}),
    ("hgpo", {"history_length": 4, "norm": "mean_norm", "alpha": 0.0}),
    ("rloo", {}),
]


@SETTINGS
@given(kw=batches(integer_values=True), seed=st.integers(0, 2**16))
def test_permuting_trajectories_permutes_the_output(kw: dict[str, np.ndarray], seed: int) -> None:
    permuted, index = _permute_trajectories(kw, seed)
    for name, params in ALL_CONFIGS:
        out = compute_advantages(name, **kw, **params)
        np.testing.assert_allclose(compute_advantages(name, **permuted, **params), out[index], rtol=1e-9, atol=1e-9)


def test_singleton_groups_give_zero() -> None:
    # every step its own task group: no level-k or step group has two members
    rows = [(f"g{i}", f"t{i}", float(i), float(i % 3), "same") for i in range(6)]
    kw = batch(rows)
    for k in range(4):
        np.testing.assert_array_equal(compute_advantages("hgpo", history_length=k, **kw), 0.0)
    np.testing.assert_array_equal(compute_advantages("rloo", **kw), 0.0)
    # GiGPO's A_S is 0, so it equals GRPO, whose single sample groups use mean 0, std 1
    np.testing.assert_array_equal(compute_advantages("gigpo", **kw), compute_advantages("grpo", **kw))
    np.testing.assert_allclose(compute_advantages("grpo", **kw), kw["episode_scores"] / (1 + EPS), **HAND)


@pytest.mark.parametrize("value", [0.1, 9.025, -0.1, 0.0, 1e300])
def test_all_equal_returns_and_scores_give_exact_zero(value: float) -> None:
    # 0.1 + 0.1 + 0.1 = 0.30000000000000004: a naive sum / n mean would leave tiny nonzero items
    rows = [("g", f"t{i % 3}", value, value, "ab"[i % 2]) for i in range(9)]
    kw = batch(rows)
    for name, params in ALL_CONFIGS:
        np.testing.assert_array_equal(compute_advantages(name, **kw, **params), 0.0, err_msg=f"{name} {params}")


def test_empty_batch() -> None:
    kw = batch([("g", "t", 0.0, 0.0, "a")])
    empty = {name: values[:0] for name, values in kw.items()}
    for name, params in ALL_CONFIGS:
        out = compute_advantages(name, **empty, **params)
        assert out.shape == (0,) and out.dtype == np.float64


def test_integer_and_mixed_ids() -> None:
    kw = batch(HGPO_ROWS)
    as_ints = dict(kw, group_ids=np.zeros(12, np.int64), traj_ids=np.array([int(t[1]) for t in kw["traj_ids"]]))
    np.testing.assert_array_equal(compute_advantages("hgpo", **as_ints), compute_advantages("hgpo", **kw))
    mixed = dict(kw, traj_ids=np.array([1, "t2", 3.5, ("t", 4)] * 3, dtype=object))  # not sortable together
    np.testing.assert_array_equal(compute_advantages("hgpo", **mixed), compute_advantages("hgpo", **kw))


def test_shape_mismatch_is_an_error() -> None:
    kw = batch(HGPO_ROWS)
    with pytest.raises(ValueError, match="anchors"):
        compute_advantages("hgpo", **dict(kw, anchors=kw["anchors"][:5]))


# ----------------------------------------------------------------------------------------------------
# Registry and errors
# ----------------------------------------------------------------------------------------------------


def test_registry_names_and_params() -> None:
    assert estimator_names() == ["gigpo", "grpo", "hgpo", "rloo"]
    assert estimator_params("grpo") == ("norm", "eps", "episode_stats")
    assert estimator_params("gigpo") == ("norm", "eps", "episode_stats", "step_advantage_w")
    assert set(estimator_params("hgpo")) == {
        "norm",
        "eps",
        "history_length",
        "alpha",
        "weighting",
        "base_group",
        "episode_stats",
    }
    assert estimator_params("rloo") == ()
    assert get_estimator("hgpo") is adv.hgpo


def test_unknown_name_is_a_user_error() -> None:
    with pytest.raises(EstimatorError, match=r"unknown advantage estimator 'ppo' \(one of: gigpo, grpo, hgpo, rloo\)"):
        compute_advantages("ppo", **batch(GRPO_ROWS))
    assert issubclass(EstimatorError, UserError) and issubclass(EstimatorError, ValueError)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("grpo", {"alpha": 1.0}, r"'grpo' does not take 'alpha' \(it takes: norm, eps, episode_stats\)"),
        ("rloo", {"norm": "mean_norm"}, r"'rloo' does not take 'norm' \(it takes: no parameters\)"),
        ("hgpo", {"step_advantage_w": 1.0}, "does not take 'step_advantage_w'"),
        ("hgpo", {"norm": "std"}, r"norm='std' is not allowed \(one of: mean_std_norm, mean_norm\)"),
        ("hgpo", {"weighting": "flat"}, "weighting='flat' is not allowed"),
        ("hgpo", {"history_length": -1}, "history_length=-1 is not allowed"),
        ("hgpo", {"history_length": 1.5}, "history_length=1.5 is not allowed"),
        ("hgpo", {"alpha": -1.0}, "alpha=-1.0 is not allowed"),
        ("grpo", {"episode_stats": "episodes"}, "episode_stats='episodes' is not allowed"),
        ("gigpo", {"eps": 0.0}, "eps=0.0 is not allowed"),
    ],
)
def test_bad_parameters_are_user_errors(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(EstimatorError, match=message) as info:
        compute_advantages(name, **batch(GRPO_ROWS), **params)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_register_new_estimator_and_reregistering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adv, "_REGISTRY", dict(adv._REGISTRY))
    monkeypatch.setattr(adv, "_PARAMS", dict(adv._PARAMS))

    @register_estimator("zeros")
    def zeros(*, group_ids, traj_ids, step_returns, episode_scores, anchors, scale: float = 1.0):  # type: ignore[no-untyped-def]
        return np.zeros(len(group_ids)) * scale

    assert "zeros" in estimator_names() and estimator_params("zeros") == ("scale",)
    np.testing.assert_array_equal(compute_advantages("zeros", scale=2.0, **batch(GRPO_ROWS)), 0.0)
    register_estimator("zeros")(zeros)  # the same function again is fine

    def other(*, group_ids, traj_ids, step_returns, episode_scores, anchors):  # type: ignore[no-untyped-def]
        return np.ones(len(group_ids))

    with pytest.raises(EstimatorError, match="already registered"):
        register_estimator("grpo")(other)
    with pytest.raises(TypeError, match="keyword-only"):
        register_estimator("broken")(lambda group_ids: group_ids)
    assert get_estimator("grpo") is adv.grpo


def test_import_pulls_no_heavy_dependencies() -> None:
    code = (
        "import sys, hgpo_cli.train.advantages; "
        "print(','.join(m for m in ('torch', 'ray', 'vllm', 'wandb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
