"""`hgpo analyze bias`: every registered estimator against the exact advantages.

What is compared. Each step sample i (one action of one trajectory) gets an estimate Ahat_i from
`compute_advantages` exactly as the trainer computes it (same groups, returns, anchors, gamma) and two
exact targets from `exact.py`:

* history: A(h_i, a_i) = Q(h_i, a_i) - V(h_i), the true advantage of the action given the step's full
  history (its own trajectory up to t), for the K-window policy that generated the data. This is the
  quantity the paper says context-inconsistent step groups get wrong.
* window: Abar(w_i, a_i), the visit-weighted advantage of the action at the policy's input window.

The error e_i = Ahat_i - A_i is split into systematic and random parts over cells of identical
situations. For the history target c = (task, step t, previous K observations, belief over the hidden
state, action): every quantity the target and the estimator's distribution depend on, except the
other rollouts. For the window target c = (task, window, action), the situation as the policy sees it
(there, bias is the systematic error of the estimate averaged over all visits of the window).
With n_c steps in cell c, mean error ebar_c and unbiased variance s_c^2:

    bias2    = sum_c n_c (ebar_c^2 - s_c^2 / n_c) / N_res   (unbiased estimate of the mean squared bias)
    variance = sum_c n_c s_c^2 / N_res                      (the estimator's variance given the situation)
    mse      = mean_i e_i^2;  on the N_res steps in cells with n_c >= 2, mse = bias2 + variance exactly

Scale: `mean_norm` estimators (and RLOO, and the oracle rows) are in reward units and are compared with
the targets directly. `mean_std_norm` estimators divide by a group std, so their bias/variance/MSE are
not in reward units; for them read the scale-free metrics: Pearson correlation with the target and the
share of steps whose advantage has the wrong sign (among steps whose target is not 0; an estimate of
exactly 0 is counted separately as `zero`). Single returns are noisy, so most wrong signs come from
noise; `wrong_sign_mean` counts instead the steps whose cell-mean estimate (cells of >= 30 steps) has
the wrong sign: the sign errors that are systematic, which is what context inconsistency causes.

Reference rows: `oracle R-V(h)` = R_i - V(h_i) (the return with the exact history baseline: unbiased,
its variance is the floor any single-return estimator pays without pooling) and `oracle R-Vbar(w)`.

Grouping diagnostics per hierarchy level k: the share of steps that sit in a non-singleton level-k group
(`group_stats` of the trainer's module), and the spread of the exact V(h) inside level-k groups, the
direct measure of context inconsistency (0 when every member of every group has the same true value).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hgpo_cli.analyze.exact import solve, success_probability
from hgpo_cli.analyze.policies import make_policy
from hgpo_cli.analyze.pomdp import _parse_value, build_chain, make_env
from hgpo_cli.analyze.sampling import Rollouts, sample_groups
from hgpo_cli.errors import UserError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TARGETS = ("history", "window")
REWARD_UNITS = ("mean_norm", "-")  # norms whose estimates are in reward units
MIN_CELL = 30  # cells with at least this many steps enter the systematic-sign metric


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator configuration: registry name, its parameters, a short label and its norm ("-" when
    the estimator has none, e.g. RLOO, or for the oracle rows)."""

    label: str
    name: str
    params: dict[str, Any]
    norm: str

    @property
    def key(self) -> str:
        return f"{self.label} [{self.norm}]"


def _hgpo_label(k: int, alpha: float, weighting: str, base: bool) -> str:
    w = "" if alpha == 0 else f" {weighting}"
    return f"hgpo K{k} a{alpha:g}{w}" + (" +base" if base else "")


def estimator_grid(
    history_lengths: tuple[int, ...] = (0, 1, 2, 3, 4),
    alphas: tuple[float, ...] = (0.0, 1.0, 2.0),
    norms: tuple[str, ...] = ("mean_norm", "mean_std_norm"),
    base_groups: tuple[bool, ...] = (False, True),
    weightings: tuple[str, ...] = ("recipe", "paper"),
) -> list[EstimatorSpec]:
    """grpo, gigpo and the hgpo grid per norm, plus rloo (no norm). With alpha = 0 both weightings give
    w_k = 1, so only one (labelled without a weighting) is kept. K = 0 is a diagnostic row, kept with
    alpha = 0 only: hgpo K0 is GiGPO's step-level part A_S alone (identical under mean_norm; population
    instead of unbiased std under mean_std_norm), the level-0 group without the hierarchy."""
    from hgpo_cli.train.advantages import estimator_names

    out: list[EstimatorSpec] = []
    registered = set(estimator_names())
    for norm in norms:
        out.append(EstimatorSpec("grpo", "grpo", {"norm": norm}, norm))
        out.append(EstimatorSpec("gigpo", "gigpo", {"norm": norm}, norm))
        for k in history_lengths:
            for alpha in (0.0,) if k == 0 else alphas:
                for weighting in weightings[:1] if alpha == 0 else weightings:
                    for base in base_groups:
                        params = {
                            "norm": norm,
                            "history_length": int(k),
                            "alpha": float(alpha),
                            "weighting": weighting,
                            "base_group": bool(base),
                        }
                        out.append(EstimatorSpec(_hgpo_label(k, alpha, weighting, base), "hgpo", params, norm))
    if "rloo" in registered:
        out.insert(0, EstimatorSpec("rloo", "rloo", {}, "-"))
    known = {"grpo", "gigpo", "hgpo", "rloo"}
    for name in sorted(registered - known):  # estimators registered later are measured with defaults
        out.append(EstimatorSpec(name, name, {}, "?"))
    return out


def parse_estimator(spec: str) -> EstimatorSpec:
    """An estimator from "NAME" or "NAME:key=value,..." (parameters of `estimator_params(NAME)`)."""
    from hgpo_cli.train.advantages import estimator_params, get_estimator

    name, _, rest = spec.partition(":")
    get_estimator(name)
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"estimator option {item!r} in {spec!r} is not key=value")
        params[key.strip()] = _parse_value(value)
    allowed = estimator_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UserError(f"estimator {name!r} does not take {unknown} (it takes: {', '.join(allowed)})")
    norm = str(params.get("norm", "mean_std_norm")) if "norm" in allowed else "-"
    return EstimatorSpec(spec, name, params, norm)


# ----------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------


def error_metrics(estimate: FloatArray, target: FloatArray, cells: IntArray, tol: float = 1e-9) -> dict[str, float]:
    """Bias/variance/MSE decomposition over cells and scale-free agreement (module docstring).

    estimate, target (N,) float; cells (N,) int ids of identical situations. Returns a dict of floats:
    mse, bias2, variance, resolved (share of steps in cells with >= 2 steps), mean_error, corr,
    wrong_sign, zero (shares among steps with |target| > tol), wrong_sign_mean (share of those steps,
    in cells with >= MIN_CELL steps, whose cell-mean estimate has the wrong sign: systematic sign
    errors, plus a little noise that the oracle row calibrates), sign_cells_share (the share of steps
    with |target| > tol that such cells hold) and scale = std(estimate) / std(target).
    """
    e = np.asarray(estimate, np.float64) - np.asarray(target, np.float64)
    _, inv, n = np.unique(cells, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    s1 = np.bincount(inv, weights=e)
    mean_c = s1 / n
    dev = e - mean_c[inv]
    s2 = np.bincount(inv, weights=dev * dev)
    res = n >= 2
    var_c = np.divide(s2, n - 1, out=np.zeros_like(s2), where=res)
    n_res = n[res].sum()
    bias2 = float((n[res] * mean_c[res] ** 2 - var_c[res]).sum() / n_res) if n_res else float("nan")
    variance = float((n[res] * var_c[res]).sum() / n_res) if n_res else float("nan")
    sd_est, sd_tgt = float(np.std(estimate)), float(np.std(target))
    corr = float(np.corrcoef(estimate, target)[0, 1]) if sd_est > 0 and sd_tgt > 0 else float("nan")
    sig = np.abs(target) > tol
    est_sig, tgt_sig = np.asarray(estimate)[sig], np.asarray(target)[sig]
    # systematic sign: the cell's mean estimate against the target, in cells with >= MIN_CELL steps
    big = (n[inv] >= MIN_CELL) & sig
    cell_mean_est = (np.bincount(inv, weights=np.asarray(estimate, np.float64)) / n)[inv]
    return {
        "mse": float(np.mean(e * e)),
        "bias2": bias2,
        "variance": variance,
        "resolved": float(n_res / e.size),
        "mean_error": float(e.mean()),
        "corr": corr,
        "wrong_sign": float(np.mean(est_sig * tgt_sig < 0)) if sig.any() else float("nan"),
        "zero": float(np.mean(est_sig == 0)) if sig.any() else float("nan"),
        "wrong_sign_mean": float(np.mean(cell_mean_est[big] * np.asarray(target)[big] < 0))
        if big.any()
        else float("nan"),
        "sign_cells_share": float(big.sum() / max(sig.sum(), 1)),
        "scale": sd_est / sd_tgt if sd_tgt > 0 else float("nan"),
    }


def level_ids(ro: Rollouts, k: int) -> tuple[IntArray, IntArray]:
    """Level-k context groups of the rollouts (same task group, same anchors t-k..t in the own trajectory).

    Returns (idx (M,), ids (M,)): the steps with t >= k and their group ids. Rows of `ro` are sorted by
    (trajectory, t), so anchor t-j of row i is row i-j. Same definition as the trainer's `hgpo`.
    """
    n_obs = np.int64(ro.obs.max(initial=0) + 1)
    key = ro.group_ids.astype(np.int64) * n_obs + ro.obs
    idx = np.arange(ro.n)
    for j in range(1, k + 1):
        keep = ro.t[idx] >= j
        idx, key = idx[keep], key[keep]
        _, key = np.unique(key, return_inverse=True)
        key = key.reshape(-1).astype(np.int64) * n_obs + ro.obs[idx - j]
    _, ids = np.unique(key, return_inverse=True)
    return idx, ids.reshape(-1).astype(np.int64)


def level_diagnostics(ro: Rollouts, max_level: int) -> list[dict[str, float]]:
    """Per level k = 0..max_level: share of all steps in a non-singleton level-k group (from the
    trainer's `group_stats`), steps-weighted mean group size, and the RMS deviation of the exact V(h)
    (history target) and Vbar(w) from their level-k group mean, over steps in non-singleton groups."""
    from hgpo_cli.train.advantages import group_stats

    stats = group_stats(ro.group_ids, ro.traj_ids, ro.anchors, max_level)
    out = []
    for k in range(max_level + 1):
        idx, ids = level_ids(ro, k)
        size = np.bincount(ids)
        big = size[ids] >= 2
        spreads = {}
        for name, values in (("v_history_spread", ro.v_history[idx]), ("v_window_spread", ro.v_window[idx])):
            mean = np.bincount(ids, weights=values) / size
            d = (values - mean[ids])[big]
            spreads[name] = float(np.sqrt(np.mean(d * d))) if d.size else 0.0
        out.append(
            {
                "level": k,
                "steps_with_context": stats[k]["steps"] / ro.n,
                "share_in_nonsingleton": stats[k]["steps_grouped"] / ro.n,
                "groups": stats[k]["groups"],
                "mean_group_size": float(np.mean(size[ids])) if ids.size else float("nan"),
                **spreads,
            }
        )
    return out


# ----------------------------------------------------------------------------------------------------
# The analysis
# ----------------------------------------------------------------------------------------------------


@dataclass
class BiasConfig:
    """Settings of `hgpo analyze bias` (field defaults = command defaults)."""

    envs: list[str] = field(default_factory=lambda: ["keydoor"])
    policies: list[str] = field(default_factory=lambda: ["scripted"])
    policy_history: int = 2
    group_size: int = 8
    samples: int = 500
    gamma: float = 0.95
    seed: int = 0
    history_lengths: tuple[int, ...] = (0, 1, 2, 3, 4)
    alphas: tuple[float, ...] = (0.0, 1.0, 2.0)
    norms: tuple[str, ...] = ("mean_norm", "mean_std_norm")
    estimators: list[str] = field(default_factory=list)  # explicit specs replace the grid


def oracle_rows(ro: Rollouts) -> dict[str, FloatArray]:
    """Reference estimates with exact baselines (reward units)."""
    return {"oracle R-V(h)": ro.step_returns - ro.v_history, "oracle R-Vbar(w)": ro.step_returns - ro.v_window}


def analyze_one(env_spec: str, policy_spec: str, cfg: BiasConfig, specs: list[EstimatorSpec]) -> dict[str, Any]:
    """Draw cfg.samples groups per task of one (environment, policy) and measure every estimator."""
    from hgpo_cli.train.advantages import compute_advantages

    t0 = time.perf_counter()
    env = make_env(env_spec)
    model = env.compile()
    chain = build_chain(model, cfg.policy_history)
    policy = make_policy(policy_spec)
    probs = policy.probs(chain, cfg.gamma)
    sol = solve(chain, probs, cfg.gamma)
    rng = np.random.default_rng(cfg.seed)
    tasks = np.tile(np.arange(model.n_tasks), cfg.samples)
    ro = sample_groups(chain, probs, tasks, cfg.group_size, rng, cfg.gamma, sol)
    t_sample = time.perf_counter() - t0
    A = np.int64(model.n_actions)
    cells = {  # the situation each target is a function of
        "history": ro.info * A + ro.action,
        "window": (ro.task * np.int64(chain.n_windows) + ro.window) * A + ro.action,
    }
    targets = {"history": ro.adv_history, "window": ro.adv_window}
    rows = []
    for name, est in oracle_rows(ro).items():
        rows.append(
            {"label": name, "name": "oracle", "params": {}, "norm": "-"}
            | {tg: error_metrics(est, targets[tg], cells[tg]) for tg in TARGETS}
        )
    inputs = ro.estimator_inputs()
    for spec in specs:
        est = compute_advantages(spec.name, **inputs, **spec.params)
        rows.append(
            {"label": spec.label, "name": spec.name, "params": spec.params, "norm": spec.norm}
            | {tg: error_metrics(est, targets[tg], cells[tg]) for tg in TARGETS}
        )
    max_level = max([*cfg.history_lengths, *[s.params.get("history_length", 0) for s in specs], 0])
    return {
        "env": env.name,
        "env_spec": env_spec,
        "env_params": env.params,
        "aliasing": model.aliasing(),
        "policy": policy.label,
        "policy_history": cfg.policy_history,
        "groups": int(tasks.size),
        "group_size": cfg.group_size,
        "steps": ro.n,
        "success_exact": float(success_probability(chain, probs).mean()),
        "success_sampled": float(ro.won[ro.t == 0].mean()),
        "mean_episode_length": float(ro.n / (tasks.size * cfg.group_size)),
        "target_std": {"history": float(np.std(ro.adv_history)), "window": float(np.std(ro.adv_window))},
        "return_std": float(np.std(ro.step_returns)),
        "levels": level_diagnostics(ro, max_level),
        "estimators": rows,
        "seconds": {"sampling": t_sample, "total": time.perf_counter() - t0},
    }


def run_bias(cfg: BiasConfig) -> dict[str, Any]:
    """Every (environment, policy) pair of cfg; returns a JSON-able dict {"config": ..., "runs": [...]}."""
    if cfg.group_size < 2:
        raise UserError(f"--group-size must be >= 2, got {cfg.group_size}")
    if cfg.samples < 1:
        raise UserError(f"--samples must be >= 1, got {cfg.samples}")
    specs = (
        [parse_estimator(s) for s in cfg.estimators]
        if cfg.estimators
        else estimator_grid(tuple(cfg.history_lengths), tuple(cfg.alphas), tuple(cfg.norms))
    )
    runs = [analyze_one(e, p, cfg, specs) for e in cfg.envs for p in cfg.policies]
    config = asdict(cfg)
    return {"config": config, "runs": runs}
