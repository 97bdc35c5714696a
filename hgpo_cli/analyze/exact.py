"""Exact values and advantages of a K-window policy by dynamic programming on the chain of `pomdp.py`.

Notation: x = (hidden state s, previous K observations pw) and t the step (0-based); the policy acts on
the window w(x) = pw + (obs(s),) with probabilities pi(a | w) (array `probs`, (W, A)). Because the
episode is cut at the horizon H, values depend on t.

    Q_t(x, a) = sum_s' T(s' | s, a) [ r(s') + gamma * [s' not terminal] * V_{t+1}(x') ],  V_H = 0
    V_t(x)    = sum_a pi(a | w(x)) Q_t(x, a)

with r(s') the reward for entering s' (10 on the goal) and x' = (s', pw[1:] + (obs(s),)).

Two exact advantages are derived (the targets `hgpo analyze bias` measures estimators against):

* history target: the advantage of the action taken given everything that happened in its own
  trajectory, A(h_t, a_t) = Q(h_t, a_t) - V(h_t), with Q(h_t, a) = sum_s b_t(s) Q_t((s, pw_t), a) and
  b_t the exact belief over the hidden state given the full history h_t (a point mass in deterministic
  environments). It is the true advantage of the step in the sense of the policy gradient theorem:
  E[R_t | h_t, a_t] - E[R_t | h_t], R_t the discounted return-to-go of training (same gamma).
* window target: the advantage of action a at policy input w, averaged over every way of being at w,
  Abar(w, a) = Qbar(w, a) - Vbar(w) with Qbar(w, a) = sum_t sum_{x in w} d_t(x) Q_t(x, a) / sum_t sum_{x
  in w} d_t(x), d_t the probability of being at x at step t (per task, from its start). The trainer
  counts every visit of a step, so this visit-weighted value is what the policy gradient of the table
  entry (w, a) sees; a step group whose members share the window estimates Vbar(w) in the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hgpo_cli.analyze.pomdp import Chain

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Solution:
    """Exact values of one policy on one chain. H steps, X augmented states, A actions, W windows.

    q (H, X, A): Q_t(x, a) (0 on inadmissible actions); v (H, X): V_t(x); occupancy (n_tasks, H, X):
    d_t(x), the probability that the episode of a task is still running at step t and is at x;
    q_window (n_tasks, W, A) and v_window (n_tasks, W): Qbar(w, a), Vbar(w) per task (0 on windows the
    task never visits); gamma: the discount used.
    """

    q: FloatArray
    v: FloatArray
    occupancy: FloatArray
    q_window: FloatArray
    v_window: FloatArray
    gamma: float

    @property
    def a_window(self) -> FloatArray:
        """(n_tasks, W, A): Abar(w, a) = Qbar(w, a) - Vbar(w)."""
        return self.q_window - self.v_window[:, :, None]


def _policy_at_x(chain: Chain, probs: FloatArray) -> FloatArray:
    """(X, A) action probabilities at each x, checked: rows sum to 1, no mass on inadmissible actions."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (chain.n_windows, chain.model.n_actions):
        raise ValueError(f"probs must be (W, A) = {(chain.n_windows, chain.model.n_actions)}, got {probs.shape}")
    if np.any(probs[~chain.window_admissible] > 0) or not np.allclose(probs.sum(1), 1.0):
        raise ValueError("probs must be distributions over each window's admissible actions")
    return probs[chain.x_window]


def q_values(
    chain: Chain, probs: FloatArray, gamma: float, reward: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Backward induction: (q (H, X, A), v (H, X)) as in the module docstring.

    reward (S,): reward for entering each state; default the model's (10 on the goal).
    """
    m = chain.model
    pi = _policy_at_x(chain, probs)
    enter = m.enter_reward if reward is None else np.asarray(reward, dtype=np.float64)
    P = m.T[chain.x_state]  # (X, A, S)
    immediate = P @ enter  # (X, A)
    alive = ~m.terminal
    H, X = m.horizon, chain.n_x
    q = np.zeros((H, X, m.n_actions))
    v = np.zeros((H, X))
    v_next = np.zeros(X + 1)  # index X (from next_x == -1) stays 0
    nxt = np.where(chain.next_x >= 0, chain.next_x, X)  # (X, S)
    for t in range(H - 1, -1, -1):
        cont = v_next[nxt] * alive  # (X, S)
        q[t] = immediate + gamma * np.einsum("xas,xs->xa", P, cont)
        v[t] = (pi * q[t]).sum(1)
        v_next[:X] = v[t]
    return q, v


def occupancy(chain: Chain, probs: FloatArray | None = None, *, pi_x: FloatArray | None = None) -> FloatArray:
    """(n_tasks, H, X): d_t(x), probability of being at x at step t with the episode still running.

    The policy is `probs` (W, A) over windows, or `pi_x` (X, A) over augmented states (an oracle that
    sees the hidden state, used by the scripted policy).
    """
    m = chain.model
    pi = _policy_at_x(chain, probs) if pi_x is None else np.asarray(pi_x, dtype=np.float64)
    P = m.T[chain.x_state]  # (X, A, S)
    move = np.einsum("xa,xas->xs", pi, P) * ~m.terminal  # (X, S) probability of continuing into s'
    X = chain.n_x
    rows, cols = np.nonzero(chain.next_x >= 0)
    dest = chain.next_x[rows, cols]
    w = move[rows, cols]
    d = np.zeros((m.n_tasks, m.horizon, X))
    d[np.arange(m.n_tasks), 0, chain.start_x] = 1.0
    for t in range(m.horizon - 1):
        flow = d[:, t, rows] * w  # (n_tasks, E)
        for k in range(m.n_tasks):
            d[k, t + 1] = np.bincount(dest, weights=flow[k], minlength=X)
    return d


def solve(chain: Chain, probs: FloatArray, gamma: float) -> Solution:
    """Exact Q, V, occupancies and window values of the policy `probs` (W, A) with discount gamma."""
    q, v = q_values(chain, probs, gamma)
    d = occupancy(chain, probs)
    onehot = np.zeros((chain.n_x, chain.n_windows))
    onehot[np.arange(chain.n_x), chain.x_window] = 1.0
    mass = d.sum(1) @ onehot  # (n_tasks, W)
    dq = np.einsum("khx,hxa->kxa", d, q)  # (n_tasks, X, A)
    q_window = np.einsum("kxa,xw->kwa", dq, onehot)
    q_window = np.divide(q_window, mass[:, :, None], out=np.zeros_like(q_window), where=mass[:, :, None] > 0)
    v_window = (q_window * np.asarray(probs)[None]).sum(-1)
    return Solution(q=q, v=v, occupancy=d, q_window=q_window, v_window=v_window, gamma=float(gamma))


def success_probability(chain: Chain, probs: FloatArray) -> FloatArray:
    """(n_tasks,): exact probability of reaching a rewarded terminal state within the horizon."""
    win = (chain.model.enter_reward > 0).astype(np.float64)
    _, v = q_values(chain, probs, 1.0, reward=win)
    return v[0, chain.start_x]


def expected_steps(chain: Chain, probs: FloatArray) -> FloatArray:
    """(n_tasks,): exact expected episode length (steps taken) of each task."""
    return occupancy(chain, probs).sum(axis=(1, 2))
