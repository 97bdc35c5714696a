"""Draw groups of trajectories as the trainer does, with the exact advantage of every step attached.

A group is N rollouts of one task from its start state (one group id for all their steps). Step
returns are the trainer's: `discounted_returns(rewards, traj_ids, gamma)` from
`hgpo_cli.train.advantages` (gamma 0.95), the episode score of a step is its trajectory's summed reward,
the anchor is the observation text of the step's state. There are no invalid actions here (the policy
picks among admissible actions), so no penalty applies.

All trajectories of all groups are simulated at once, one vectorised step at a time, on the chain of
`pomdp.build_chain` (x = hidden state + previous K observations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hgpo_cli.analyze.exact import Solution
from hgpo_cli.analyze.pomdp import Chain
from hgpo_cli.train.advantages import discounted_returns

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class Rollouts:
    """N step samples of G groups, sorted by (trajectory, step). Every array is (N,) unless noted.

    group_ids: group number (0..G-1); traj_ids: global trajectory number; task: task of the group;
    t: step index; x: chain state; state: hidden state; pw: previous-observation tuple id (chain.x_pw);
    window: policy window id; obs: observation id; anchors: observation text (str);
    action: action id; prob: pi(action | window); rewards; done; won (trajectory success, per step);
    step_returns: discounted return-to-go; episode_scores: the trajectory's summed reward;
    belief (N, S): exact distribution of the hidden state given the step's full history;
    info: id of the information state (task, t, pw, belief), equal ids = identical situations;
    q_history, v_history, adv_history: Q(h_t, a_t), V(h_t), their difference (exact, `exact.py`);
    v_window, adv_window: Vbar(w_t), Abar(w_t, a_t) (exact, visit-weighted over the task's episodes).
    """

    group_ids: IntArray
    traj_ids: IntArray
    task: IntArray
    t: IntArray
    x: IntArray
    state: IntArray
    pw: IntArray
    window: IntArray
    obs: IntArray
    anchors: npt.NDArray[np.str_]
    action: IntArray
    prob: FloatArray
    rewards: FloatArray
    done: npt.NDArray[np.bool_]
    won: npt.NDArray[np.bool_]
    step_returns: FloatArray
    episode_scores: FloatArray
    belief: FloatArray
    info: IntArray
    q_history: FloatArray
    v_history: FloatArray
    adv_history: FloatArray
    v_window: FloatArray
    adv_window: FloatArray

    @property
    def n(self) -> int:
        return int(self.t.size)

    def estimator_inputs(self) -> dict[str, np.ndarray]:
        """The keyword arguments `compute_advantages` takes, as the trainer would pass them."""
        return {
            "group_ids": self.group_ids,
            "traj_ids": self.traj_ids,
            "step_returns": self.step_returns,
            "episode_scores": self.episode_scores,
            "anchors": self.anchors,
        }


def _categorical(p: FloatArray, rng: np.random.Generator) -> IntArray:
    """One draw per row of p (B, K) (rows sum to 1)."""
    c = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0]) * c[:, -1]
    return np.minimum((c <= u[:, None]).sum(1), p.shape[1] - 1).astype(np.int64)


def sample_groups(
    chain: Chain,
    probs: FloatArray,
    tasks: npt.ArrayLike,
    group_size: int,
    rng: np.random.Generator,
    gamma: float,
    solution: Solution | None = None,
) -> Rollouts:
    """Simulate G = len(tasks) groups of `group_size` trajectories of the policy probs (W, A).

    tasks (G,): the task of each group. With `solution` (the same policy and gamma, `exact.solve`) the
    exact targets are filled in; without, they are NaN (training only needs the samples).
    """
    m = chain.model
    tasks = np.asarray(tasks, dtype=np.int64)
    G, N, S = tasks.size, int(group_size), m.n_states
    B = G * N
    x = np.repeat(chain.start_x[tasks], N)
    belief = np.zeros((B, S))
    belief[np.arange(B), chain.x_state[x]] = 1.0
    alive = np.arange(B)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("traj", "t", "x", "a", "p", "r", "done", "belief")}
    for t in range(m.horizon):
        xa = x[alive]
        pa = probs[chain.x_window[xa]]
        a = _categorical(pa, rng)
        s = chain.x_state[xa]
        s2 = _categorical(m.T[s, a], rng)
        r = m.enter_reward[s2]
        end = m.terminal[s2] | (t == m.horizon - 1)
        cols["traj"].append(alive)
        cols["t"].append(np.full(alive.size, t, np.int64))
        cols["x"].append(xa)
        cols["a"].append(a)
        cols["p"].append(pa[np.arange(alive.size), a])
        cols["r"].append(r)
        cols["done"].append(end)
        cols["belief"].append(belief[alive])
        go = ~end
        keep, s2, a, xa = alive[go], s2[go], a[go], xa[go]
        x[keep] = chain.next_x[xa, s2]
        if m.deterministic:
            belief[keep] = 0.0
            belief[keep, s2] = 1.0
        else:  # Bayes filter: b'(z) ~ sum_s b(s) T(z | s, a) [obs(z) = observed obs, z not terminal]
            pred = np.einsum("bs,bsz->bz", belief[keep], m.T[:, a, :].transpose(1, 0, 2))
            pred *= (m.state_obs[None, :] == m.state_obs[s2][:, None]) & ~m.terminal[None, :]
            belief[keep] = pred / pred.sum(1, keepdims=True)
        alive = keep
        if alive.size == 0:
            break
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((cat["t"], cat["traj"]))
    cat = {k: v[order] for k, v in cat.items()}
    traj, xs = cat["traj"], cat["x"]
    group = traj // N
    rewards = cat["r"]
    ep = np.bincount(traj, weights=rewards, minlength=B)[traj]
    obs = m.state_obs[chain.x_state[xs]]
    task = tasks[group]
    pw = chain.x_pw[xs]
    info = _information_ids(task, cat["t"], pw, cat["belief"])
    out = Rollouts(
        group_ids=group,
        traj_ids=traj,
        task=task,
        t=cat["t"],
        x=xs,
        state=chain.x_state[xs],
        pw=pw,
        window=chain.x_window[xs],
        obs=obs,
        anchors=np.asarray(m.obs_texts)[obs],
        action=cat["a"],
        prob=cat["p"],
        rewards=rewards,
        done=cat["done"],
        won=ep > 0,
        step_returns=discounted_returns(rewards, traj, gamma),
        episode_scores=ep,
        belief=cat["belief"],
        info=info,
        q_history=np.full(traj.size, np.nan),
        v_history=np.full(traj.size, np.nan),
        adv_history=np.full(traj.size, np.nan),
        v_window=np.full(traj.size, np.nan),
        adv_window=np.full(traj.size, np.nan),
    )
    if solution is not None:
        attach_targets(out, chain, solution)
    return out


def _information_ids(task: IntArray, t: IntArray, pw: IntArray, belief: FloatArray) -> IntArray:
    """(N,) ids of the information state (task, t, pw, belief rounded to 1e-9), numbered 0..U-1."""
    if np.all(belief.max(1) == 1.0):  # point masses (deterministic environments): the state is the belief
        b_key = belief.argmax(1).astype(np.int64)
    else:  # hash the rounded rows with a fixed random odd multiplier per column (int64 wrap-around)
        mult = np.random.default_rng(12345).integers(1, 2**62, belief.shape[1], dtype=np.int64) | 1
        with np.errstate(over="ignore"):
            b_key = (np.rint(belief * 1e9).astype(np.int64) * mult).sum(1)
    ids = np.zeros(t.size, np.int64)
    for col in (task, t, pw, b_key):
        _, inv = np.unique(col, return_inverse=True)
        ids = ids * np.int64(inv.max(initial=0) + 1) + inv.reshape(-1)
        _, ids = np.unique(ids, return_inverse=True)
        ids = ids.reshape(-1).astype(np.int64)
    return ids


def attach_targets(ro: Rollouts, chain: Chain, sol: Solution) -> None:
    """Fill q_history, v_history, adv_history (belief-weighted exact Q_t, V_t) and v_window, adv_window."""
    if chain.model.deterministic:  # the belief is a point mass on the true state
        ro.q_history = sol.q[ro.t, ro.x, ro.action]
        ro.v_history = sol.v[ro.t, ro.x]
    else:
        xs = chain.x_of[:, ro.pw].T  # (N, S): x of (s, pw) for every hidden state s, -1 if impossible
        safe = np.where(xs >= 0, xs, 0)
        weight = np.where(xs >= 0, ro.belief, 0.0)
        if np.any((xs < 0) & (ro.belief > 1e-12)):
            raise AssertionError("belief puts mass on an unreachable (state, window)")
        t = ro.t[:, None]
        ro.q_history = (weight * sol.q[t, safe, ro.action[:, None]]).sum(1)
        ro.v_history = (weight * sol.v[t, safe]).sum(1)
    ro.adv_history = ro.q_history - ro.v_history
    ro.v_window = sol.v_window[ro.task, ro.window]
    ro.adv_window = sol.a_window[ro.task, ro.window, ro.action]
