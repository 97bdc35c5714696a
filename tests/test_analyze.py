"""Tests of the advantage lab: environments as data, exact advantages (hand-solved), the sampler against
Monte Carlo, and the estimators' bias where theory fixes it."""

from __future__ import annotations

import numpy as np
import pytest

from hgpo_cli.analyze.bias import error_metrics, level_diagnostics, level_ids
from hgpo_cli.analyze.exact import occupancy, solve, success_probability
from hgpo_cli.analyze.policies import make_policy, scripted_probs, uniform_probs
from hgpo_cli.analyze.pomdp import POMDP, Chain, build_chain, env_names, make_env
from hgpo_cli.analyze.sampling import Rollouts, sample_groups
from hgpo_cli.errors import UserError
from hgpo_cli.train.advantages import compute_advantages, group_stats

GAMMA = 0.95


def table_policy(chain: Chain, table: dict[str, dict[str, float]]) -> np.ndarray:
    """probs (W, A) from {current observation text: {action: probability}} (a K-window policy that
    happens to look only at the current observation)."""
    m = chain.model
    probs = np.zeros((chain.n_windows, m.n_actions))
    for w in range(chain.n_windows):
        for action, p in table[chain.window_text(w)[-1]].items():
            probs[w, m.action_names.index(action)] = p
    return probs


TWOSTEP_POLICY = {
    "You stand between two doors.": {"left": 0.75, "right": 0.25},
    "You are in a room.": {"a": 0.6, "b": 0.4},
    "You are in the left room.": {"a": 0.6, "b": 0.4},
    "You are in the right room.": {"a": 0.6, "b": 0.4},
}


def twostep_setup(consistent: bool, history: int = 0) -> tuple[Chain, np.ndarray]:
    chain = build_chain(make_env("twostep-clear" if consistent else "twostep").compile(), history)
    return chain, table_policy(chain, TWOSTEP_POLICY)


def x_of(chain: Chain, state: str) -> int:
    (xs,) = np.nonzero(chain.x_state == chain.model.states.index(state))
    assert xs.size == 1
    return int(xs[0])


def act(chain: Chain, name: str) -> int:
    return chain.model.action_names.index(name)


# ----------------------------------------------------------------------------------------------------
# Exact advantages, by hand
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("history", [0, 1, 2])
def test_twostep_exact_values_by_hand(history: int) -> None:
    """pi(left) = 0.75, pi(a | room) = 0.6, gamma = 0.95; a wins in L, b wins in R (reward 10).

    V(L) = 0.6 * 10 = 6, V(R) = 0.4 * 10 = 4; Q(start, left) = 0.95 * 6 = 5.7, Q(start, right) = 3.8,
    V(start) = 0.75 * 5.7 + 0.25 * 3.8 = 5.225. History advantages: start: +0.475 / -1.425;
    L: a +4, b -6; R: a -4, b +6. The window "room" pools L (visited w.p. 0.75) and R (0.25):
    Qbar(room, a) = 7.5, Qbar(room, b) = 2.5, Vbar(room) = 5.5, Abar(room, a) = +2, Abar(room, b) = -3.
    """
    chain, probs = twostep_setup(consistent=False, history=history)
    sol = solve(chain, probs, GAMMA)
    s0, xl, xr = x_of(chain, "start"), x_of(chain, "L"), x_of(chain, "R")
    left, right, a, b = (act(chain, n) for n in ("left", "right", "a", "b"))
    assert sol.q[0, s0, left] == pytest.approx(5.7)
    assert sol.q[0, s0, right] == pytest.approx(3.8)
    assert sol.v[0, s0] == pytest.approx(5.225)
    assert sol.q[0, s0, left] - sol.v[0, s0] == pytest.approx(0.475)
    assert sol.q[0, s0, right] - sol.v[0, s0] == pytest.approx(-1.425)
    assert sol.v[1, xl] == pytest.approx(6.0) and sol.v[1, xr] == pytest.approx(4.0)
    assert sol.q[1, xl, a] - sol.v[1, xl] == pytest.approx(4.0)
    assert sol.q[1, xl, b] - sol.v[1, xl] == pytest.approx(-6.0)
    assert sol.q[1, xr, a] - sol.v[1, xr] == pytest.approx(-4.0)
    assert sol.q[1, xr, b] - sol.v[1, xr] == pytest.approx(6.0)
    room = int(chain.x_window[xl])
    assert chain.x_window[xr] == room  # aliased: one window for both rooms
    assert sol.q_window[0, room, a] == pytest.approx(7.5)
    assert sol.q_window[0, room, b] == pytest.approx(2.5)
    assert sol.v_window[0, room] == pytest.approx(5.5)
    assert sol.a_window[0, room, a] == pytest.approx(2.0)
    assert sol.a_window[0, room, b] == pytest.approx(-3.0)
    assert sol.a_window[0, chain.x_window[s0], left] == pytest.approx(0.475)
    d = occupancy(chain, probs)
    assert d[0, 1, xl] == pytest.approx(0.75) and d[0, 1, xr] == pytest.approx(0.25)
    assert success_probability(chain, probs)[0] == pytest.approx(0.75 * 0.6 + 0.25 * 0.4)


def test_twostep_clear_window_target_equals_history_target() -> None:
    """Without aliasing the window identifies the state, so Abar(w, a) = A(h, a)."""
    chain, probs = twostep_setup(consistent=True)
    sol = solve(chain, probs, GAMMA)
    for state, action, expected in (("L", "a", 4.0), ("L", "b", -6.0), ("R", "a", -4.0), ("R", "b", 6.0)):
        x = x_of(chain, state)
        assert sol.a_window[0, chain.x_window[x], act(chain, action)] == pytest.approx(expected)


def test_sampled_targets_match_the_hand_solution() -> None:
    chain, probs = twostep_setup(consistent=False)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.zeros(50, np.int64), 8, np.random.default_rng(0), GAMMA, sol)
    names = np.array(chain.model.states)[ro.state]
    acts = np.array(chain.model.action_names)[ro.action]
    expected = {("start", "left"): 0.475, ("start", "right"): -1.425, ("L", "a"): 4.0, ("L", "b"): -6.0}
    expected |= {("R", "a"): -4.0, ("R", "b"): 6.0}
    for (s, a), value in expected.items():
        sel = (names == s) & (acts == a)
        assert sel.any()
        np.testing.assert_allclose(ro.adv_history[sel], value)
    np.testing.assert_allclose(ro.adv_window[(names == "L") & (acts == "a")], 2.0)
    np.testing.assert_allclose(ro.adv_window[(names == "R") & (acts == "b")], -3.0)
    # the trainer's returns: 10 on a win at t = 1, discounted once to t = 0
    win = ro.won & (ro.t == 0)
    np.testing.assert_allclose(ro.step_returns[win], 9.5)
    np.testing.assert_allclose(ro.episode_scores[ro.won], 10.0)
    assert set(np.unique(ro.anchors)) == {"You stand between two doors.", "You are in a room."}


# ----------------------------------------------------------------------------------------------------
# Estimators' bias where theory fixes it
# ----------------------------------------------------------------------------------------------------


def gigpo_step_part_loo(ro: Rollouts) -> tuple[np.ndarray, np.ndarray]:
    """GiGPO's step component A_S = gigpo - grpo (mean_norm: A_E cancels exactly), rescaled by n/(n-1)
    with n the size of the step's anchor group: R_i - mean_G = (n-1)/n (R_i - mean of the others), and
    the leave-one-out baseline is unbiased for E[R | anchor group] when the others are independent."""
    inputs = ro.estimator_inputs()
    a_s = compute_advantages("gigpo", **inputs, norm="mean_norm") - compute_advantages(
        "grpo", **inputs, norm="mean_norm"
    )
    idx, ids = level_ids(ro, 0)
    n = np.bincount(ids)[ids].astype(float)
    return a_s * np.where(n > 1, n / np.maximum(n - 1, 1), 0.0), n


def cell_bias(ro: Rollouts, est: np.ndarray, keep: np.ndarray) -> dict[tuple[str, str], tuple[float, float]]:
    """Mean error against the history target and its standard error per (state, action)."""
    out = {}
    for key in sorted(set(zip(ro.state[keep].tolist(), ro.action[keep].tolist(), strict=True))):
        sel = keep & (ro.state == key[0]) & (ro.action == key[1])
        e = est[sel] - ro.adv_history[sel]
        out[key] = (float(e.mean()), float(e.std(ddof=1) / np.sqrt(e.size)))
    return out


def test_gigpo_step_advantage_unbiased_when_contexts_are_consistent() -> None:
    """twostep-clear: every anchor names its hidden state and the policy is Markov, so the step group of
    an anchor holds draws of the same return distribution: the (leave-one-out) step advantage has zero
    bias against the exact history advantage, at every (state, action)."""
    chain, probs = twostep_setup(consistent=True)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.zeros(6000, np.int64), 8, np.random.default_rng(1), GAMMA, sol)
    est, n = gigpo_step_part_loo(ro)
    for (s, a), (bias, se) in cell_bias(ro, est, n >= 2).items():
        assert abs(bias) < 4 * se + 1e-9, (chain.model.states[s], chain.model.action_names[a], bias, se)


def test_gigpo_step_advantage_bias_is_the_context_value_gap_when_aliased() -> None:
    """twostep: the anchor "You are in a room." pools L and R, so the step baseline estimates
    Vbar(room) = 5.5 instead of V(L) = 6 / V(R) = 4: bias = V(h) - Vbar(w) = +0.5 in L, -1.5 in R,
    whatever the action; the start step stays unbiased."""
    chain, probs = twostep_setup(consistent=False)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.zeros(6000, np.int64), 8, np.random.default_rng(2), GAMMA, sol)
    est, n = gigpo_step_part_loo(ro)
    expected = {"start": 0.0, "L": 0.5, "R": -1.5}
    for (s, a), (bias, se) in cell_bias(ro, est, n >= 2).items():
        name = chain.model.states[s]
        assert abs(bias - expected[name]) < 4 * se + 1e-9, (name, chain.model.action_names[a], bias, se)


def test_hgpo_level1_does_not_fix_what_no_window_can_see() -> None:
    """In twostep the previous observation ("start") is the same for L and R: the level-1 group is the
    level-0 group, and HGPO (mean_norm) gives the same advantage for K = 0 and K = 1 at t = 1."""
    chain, probs = twostep_setup(consistent=False)
    ro = sample_groups(chain, probs, np.zeros(200, np.int64), 8, np.random.default_rng(3), GAMMA)
    inputs = ro.estimator_inputs()
    k0 = compute_advantages("hgpo", **inputs, norm="mean_norm", history_length=0)
    k1 = compute_advantages("hgpo", **inputs, norm="mean_norm", history_length=1, alpha=1.0)
    np.testing.assert_allclose(k0[ro.t == 1], k1[ro.t == 1], atol=1e-5)


def test_oracle_baseline_has_zero_bias_and_decomposition_adds_up() -> None:
    chain = build_chain(make_env("keydoor").compile(), 2)
    probs = scripted_probs(chain, GAMMA)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.arange(600) % 3, 8, np.random.default_rng(4), GAMMA, sol)
    cells = ro.info * chain.model.n_actions + ro.action
    m = error_metrics(ro.step_returns - ro.v_history, ro.adv_history, cells)
    assert abs(m["bias2"]) < 0.05 * m["variance"]
    assert abs(m["mean_error"]) < 0.05
    # on the resolved cells MSE = bias^2 + variance exactly; here nearly every step is resolved
    res = np.bincount(cells)[cells] >= 2
    m_res = error_metrics((ro.step_returns - ro.v_window)[res], ro.adv_history[res], cells[res])
    assert m_res["bias2"] + m_res["variance"] == pytest.approx(m_res["mse"], rel=1e-9)
    # the window baseline is biased by the spread of V(h) within a window: E[bias^2] = E[(V(h) - Vbar(w))^2]
    gap = np.mean((ro.v_history - ro.v_window)[res] ** 2)
    assert m_res["bias2"] == pytest.approx(gap, rel=0.1)


def test_error_metrics_on_constructed_data() -> None:
    rng = np.random.default_rng(5)
    cells = np.repeat(np.arange(200), 50)
    target = np.repeat(rng.normal(size=200), 50)
    bias = np.repeat(rng.normal(scale=0.5, size=200), 50)
    est = target + bias + rng.normal(scale=2.0, size=cells.size)
    m = error_metrics(est, target, cells)
    assert m["variance"] == pytest.approx(4.0, rel=0.05)
    assert m["bias2"] == pytest.approx(np.mean(bias**2), abs=0.05)
    assert m["resolved"] == 1.0
    assert m["bias2"] + m["variance"] == pytest.approx(m["mse"])
    perfect = error_metrics(target, target, cells)
    assert perfect["mse"] == 0 and perfect["wrong_sign"] == 0 and perfect["corr"] == pytest.approx(1.0)
    flipped = error_metrics(-target, target, cells)
    assert flipped["wrong_sign"] == 1.0 and flipped["wrong_sign_mean"] == 1.0


# ----------------------------------------------------------------------------------------------------
# The sampler and the exact values against Monte Carlo, on loopy and stochastic environments
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env,history", [("keydoor", 1), ("maze-slip", 2), ("maze", 0)])
def test_exact_q_matches_monte_carlo(env: str, history: int) -> None:
    """Mean step return per (information state, action) = exact Q(h, a); per (task, window, action) =
    exact Qbar(w, a) (checks the belief filter, the backward induction and the occupancies)."""
    chain = build_chain(make_env(env).compile(), history)
    probs = make_policy("scripted").probs(chain, GAMMA)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.arange(3000) % chain.model.n_tasks, 8, np.random.default_rng(6), GAMMA, sol)
    A = chain.model.n_actions
    for key, target in (
        (ro.info * A + ro.action, ro.q_history),
        ((ro.task * chain.n_windows + ro.window) * A + ro.action, sol.q_window[ro.task, ro.window, ro.action]),
    ):
        _, inv, n = np.unique(key, return_inverse=True, return_counts=True)
        e = ro.step_returns - target
        mean = np.bincount(inv, e) / n
        # cluster-robust variance of the cell mean: one trajectory can visit a window several times
        _, pair = np.unique(inv * np.int64(ro.traj_ids.max() + 1) + ro.traj_ids, return_inverse=True)
        pair_cell = np.zeros(pair.max() + 1, np.int64)
        pair_cell[pair] = inv
        dev = np.bincount(pair, e - mean[inv])
        var_mean = np.bincount(pair_cell, dev**2) / n**2
        big = n >= 200
        # floor 1/n (reward units^2): a cell whose rare wins were not drawn has sample variance 0
        z = mean[big] / np.sqrt(np.maximum(var_mean[big], 1.0 / n[big]))
        assert big.sum() >= 10
        # returns are skewed (rare losses or rare wins), so z is heavier-tailed than normal: loose bounds
        assert np.abs(z).max() < 6
        assert np.mean(np.abs(z) > 3) < 0.03
    # sampled success matches the exact success probability
    succ = ro.won[ro.t == 0].mean()
    assert succ == pytest.approx(success_probability(chain, probs).mean(), abs=0.02)


def test_belief_is_uncertain_only_in_the_slippery_maze() -> None:
    for env, uncertain in (("maze", False), ("maze-slip", True)):
        chain = build_chain(make_env(env).compile(), 1)
        probs = uniform_probs(chain)
        ro = sample_groups(chain, probs, np.arange(100) % 2, 8, np.random.default_rng(7), GAMMA)
        np.testing.assert_allclose(ro.belief.sum(1), 1.0)
        assert bool((ro.belief.max(1) < 1).any()) == uncertain
        assert np.all(ro.belief[np.arange(ro.n), ro.state] > 0)  # the true state is always possible


def test_level_ids_agree_with_the_trainers_group_stats() -> None:
    chain = build_chain(make_env("maze").compile(), 2)
    probs = make_policy("scripted").probs(chain, GAMMA)
    sol = solve(chain, probs, GAMMA)
    ro = sample_groups(chain, probs, np.arange(40) % 2, 8, np.random.default_rng(8), GAMMA, sol)
    stats = group_stats(ro.group_ids, ro.traj_ids, ro.anchors, 4)
    for k in range(5):
        idx, ids = level_ids(ro, k)
        size = np.bincount(ids)
        assert idx.size == stats[k]["steps"]
        assert size.size == stats[k]["groups"]
        assert int((size[ids] >= 2).sum()) == stats[k]["steps_grouped"]
    diag = level_diagnostics(ro, 4)
    shares = [d["share_in_nonsingleton"] for d in diag]
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False))  # groups nest


# ----------------------------------------------------------------------------------------------------
# Environments and policies as data
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", env_names())
def test_family_is_valid_data(name: str) -> None:
    env = make_env(name)
    m = env.compile()
    assert np.allclose(m.T[~m.terminal].sum(-1)[m.admissible[m.state_obs[~m.terminal]]], 1.0)
    for K in (0, 2):
        chain = build_chain(m, K)
        probs = make_policy("random").probs(chain)
        assert np.all(chain.next_x[chain.next_x >= 0] < chain.n_x)
        assert success_probability(chain, probs).shape == (m.n_tasks,)
    if not name.startswith("twostep"):
        assert 10 <= env.horizon <= 50
    clear = name.endswith("-clear")
    assert (m.aliasing()["shared_share"] == 0) == clear


def test_env_specs_and_errors() -> None:
    env = make_env("keydoor:rooms=3,hide_key=false,horizon=12")
    assert env.params["rooms"] == 3 and env.params["hide_key"] is False and env.horizon == 12
    with pytest.raises(UserError, match="unknown analyze environment"):
        make_env("nope")
    with pytest.raises(UserError, match="not key=value"):
        make_env("maze:slip")
    with pytest.raises(UserError):
        make_env("maze:colour=red")
    bad = POMDP(
        name="bad",
        description="",
        observations={"s": "o"},
        actions={"o": ("go",)},
        transitions={("s", "go"): ((0.5, "end"),)},
        terminal_rewards={"end": 10.0},
        tasks=("s",),
        horizon=3,
    )
    with pytest.raises(UserError, match="sum to"):
        bad.compile()
    with pytest.raises(UserError, match="unknown analyze policy"):
        make_policy("greedy")


def test_scripted_policy_uses_memory() -> None:
    """keydoor hides the carried key: a K=0 policy cannot tell the way to go, a K=2 policy can."""
    m = make_env("keydoor").compile()
    succ = {K: success_probability(c := build_chain(m, K), scripted_probs(c, GAMMA, eps=0.1)).mean() for K in (0, 2)}
    assert succ[0] < 0.2 < 0.9 < succ[2]
