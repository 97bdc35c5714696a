"""`hgpo analyze learn`: train softmax-table policies with each estimator through the project's PPO loss.

The loop, top to bottom, per (estimator, seed):

1. rollout: `groups_per_iteration` groups of `group_size` trajectories of the current policy (tasks in
   turn), sampled exactly as in `analyze bias` (same returns, anchors, gamma);
2. advantage: `compute_advantages(estimator, ...)`, the trainer's function;
3. update: one PPO epoch over the steps in `minibatches` shuffled minibatches with
   `hgpo_cli.train.loss.policy_objective` (dual-clip PPO, clip 0.2, c = 3, token-mean, low_var_kl to the
   initial uniform policy with coefficient 0.01, entropy bonus 0.001), AdamW, grad-norm clip 1.0.
   A step is a one-token response: its action's log-probability under the table's softmax.
4. evaluation: the exact success probability of the updated policy (dynamic programming, `exact.py`),
   averaged over the tasks: no evaluation noise; the sampled success of the rollouts is kept as well.

All estimators share the seeds, so seed s starts every estimator from the same uniform table and the
same random stream.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hgpo_cli.analyze.bias import EstimatorSpec, parse_estimator
from hgpo_cli.analyze.exact import success_probability
from hgpo_cli.analyze.policies import MASKED, softmax_probs
from hgpo_cli.analyze.pomdp import Chain, build_chain, make_env
from hgpo_cli.analyze.sampling import Rollouts, sample_groups
from hgpo_cli.errors import UserError

DEFAULT_ESTIMATORS = ["grpo", "rloo", "gigpo", "hgpo:history_length=2", "hgpo:history_length=4"]


@dataclass
class LearnConfig:
    """Settings of `hgpo analyze learn` (field defaults = command defaults)."""

    env: str = "keydoor"
    policy_history: int = 2
    estimators: list[str] = field(default_factory=lambda: list(DEFAULT_ESTIMATORS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    iterations: int = 40
    groups_per_iteration: int = 6
    group_size: int = 8
    gamma: float = 0.95
    norm: str = "mean_std_norm"
    lr: float = 0.1
    weight_decay: float = 0.01
    minibatches: int = 4
    clip: float = 0.2
    clip_c: float = 3.0
    kl_coef: float = 0.01
    entropy_coeff: float = 0.001
    grad_clip: float = 1.0


def _with_norm(spec: EstimatorSpec, norm: str) -> EstimatorSpec:
    from hgpo_cli.train.advantages import estimator_params

    if "norm" in estimator_params(spec.name) and "norm" not in spec.params:
        return EstimatorSpec(spec.label, spec.name, {**spec.params, "norm": norm}, norm)
    return spec


def save_rollouts(run_dir: Path, it: int, ro: Rollouts, chain: Chain, history_length: int) -> None:
    """Write one iteration's steps as the trainer does: RUN_DIR/rollouts/iter_XXXXXX.jsonl, one
    `StepRecord.to_dict()` per line (prompt = the window's observations, response = the action), plus
    RUN_DIR/config.yaml with algorithm.hgpo.history_length (for `hgpo analyze groups`)."""
    from hgpo_cli.agent.records import StepRecord

    folder = run_dir / "rollouts"
    folder.mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.yaml"
    if not config.exists():
        config.write_text(f"algorithm:\n  hgpo:\n    history_length: {history_length}\n")
    names = chain.model.action_names
    with (folder / f"iter_{it:06d}.jsonl").open("w") as fh:
        for i in range(ro.n):
            rec = StepRecord(
                group_id=f"it{it}-g{ro.group_ids[i]}",
                traj_id=f"t{ro.traj_ids[i]}",
                step_index=int(ro.t[i]),
                prompt=" | ".join(chain.window_text(int(ro.window[i]))),
                response=f"<action>{names[ro.action[i]]}</action>",
                action=names[ro.action[i]],
                reward=float(ro.rewards[i]),
                done=bool(ro.done[i]),
                valid=True,
                anchor=str(ro.anchors[i]),
                won=bool(ro.won[i]),
                task_type=chain.model.name,
                extra={"task": int(ro.task[i])},
            )
            fh.write(json.dumps(rec.to_dict()) + "\n")


def train_one(
    chain: Chain, spec: EstimatorSpec, seed: int, cfg: LearnConfig, save_dir: Path | None = None
) -> dict[str, list[float]]:
    """One training run; returns per-iteration curves (iterations + 1 points, the first before any
    update): success_exact, and per update success_sampled, pg_loss, clip_frac, kl, entropy.
    With `save_dir`, every iteration's rollouts are written there in the trainer's format."""
    import torch

    from hgpo_cli.train.advantages import compute_advantages
    from hgpo_cli.train.loss import policy_objective

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = chain.model
    adm = torch.as_tensor(chain.window_admissible)
    logits = torch.zeros(adm.shape, dtype=torch.float64, requires_grad=True)
    ref_logp_table = torch.log_softmax(torch.where(adm, 0.0, MASKED).to(torch.float64), dim=-1)
    opt = torch.optim.AdamW([logits], lr=cfg.lr, weight_decay=cfg.weight_decay)
    curves: dict[str, list[float]] = {
        k: [] for k in ("success_exact", "success_sampled", "pg_loss", "clip_frac", "kl", "entropy")
    }
    G = cfg.groups_per_iteration
    for it in range(cfg.iterations + 1):
        probs = softmax_probs(chain, logits.detach().numpy())
        curves["success_exact"].append(float(success_probability(chain, probs).mean()))
        if it == cfg.iterations:
            break
        tasks = (it * G + np.arange(G)) % model.n_tasks
        ro = sample_groups(chain, probs, tasks, cfg.group_size, rng, cfg.gamma)
        if save_dir is not None:
            save_rollouts(save_dir, it, ro, chain, int(spec.params.get("history_length", chain.history)))
        curves["success_sampled"].append(float(ro.won[ro.t == 0].mean()))
        adv = compute_advantages(spec.name, **ro.estimator_inputs(), **spec.params)
        window = torch.as_tensor(ro.window)
        action = torch.as_tensor(ro.action)
        old_logp = torch.as_tensor(np.log(ro.prob))
        adv_t = torch.as_tensor(adv)
        stats_sum: dict[str, float] = {"pg_loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "entropy": 0.0}
        batches = np.array_split(rng.permutation(ro.n), cfg.minibatches)
        for mb_np in batches:
            mb = torch.as_tensor(mb_np)
            z = torch.where(adm[window[mb]], logits[window[mb]], MASKED)  # (b, A)
            logp_all = torch.log_softmax(z, dim=-1)
            logp = logp_all.gather(1, action[mb, None])  # (b, 1)
            entropy = -(logp_all.exp() * logp_all).sum(-1, keepdim=True)  # (b, 1)
            ref_logp = ref_logp_table[window[mb]].gather(1, action[mb, None])
            loss, stats = policy_objective(
                logp,
                old_logp[mb, None],
                ref_logp,
                adv_t[mb, None],
                torch.ones_like(logp),
                entropy,
                clip_low=cfg.clip,
                clip_high=cfg.clip,
                clip_c=cfg.clip_c,
                kl_coef=cfg.kl_coef,
                kl_type="low_var_kl",
                entropy_coeff=cfg.entropy_coeff,
                agg_mode="token-mean",
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([logits], cfg.grad_clip)
            opt.step()
            for k in stats_sum:
                stats_sum[k] += float(stats[k]) / len(batches)
        for k, v in stats_sum.items():
            curves[k].append(v)
    return curves


def _run_dir(root: Path | None, label: str) -> Path | None:
    return None if root is None else Path(root) / re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def run_learn(cfg: LearnConfig, save_rollouts_dir: Path | None = None) -> dict[str, Any]:
    """Train every (estimator, seed); returns a JSON-able dict with the config, curves per estimator
    (a list over seeds), the final success (mean, std, min, max over seeds) and timings.
    With `save_rollouts_dir`, seed 0 of each estimator saves its rollouts under DIR/<estimator>/."""
    import torch

    if len(cfg.seeds) < 1 or cfg.iterations < 1:
        raise UserError("analyze learn needs at least one seed and one iteration")
    torch.set_num_threads(1)
    env = make_env(cfg.env)
    chain = build_chain(env.compile(), cfg.policy_history)
    specs = [_with_norm(parse_estimator(s), cfg.norm) for s in cfg.estimators]
    curves: dict[str, list[dict[str, list[float]]]] = {}
    summary: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for spec in specs:
        t0 = time.perf_counter()
        curves[spec.label] = [
            train_one(chain, spec, seed, cfg, _run_dir(save_rollouts_dir, spec.label) if i == 0 else None)
            for i, seed in enumerate(cfg.seeds)
        ]
        seconds[spec.label] = time.perf_counter() - t0
        final = np.array([c["success_exact"][-1] for c in curves[spec.label]])
        auc = np.array([np.mean(c["success_exact"]) for c in curves[spec.label]])
        summary[spec.label] = {
            "final_mean": float(final.mean()),
            "final_std": float(final.std(ddof=1)) if final.size > 1 else 0.0,
            "final_min": float(final.min()),
            "final_max": float(final.max()),
            "auc_mean": float(auc.mean()),
            "auc_std": float(auc.std(ddof=1)) if auc.size > 1 else 0.0,
            "initial": float(curves[spec.label][0]["success_exact"][0]),
        }
    return {
        "config": asdict(cfg),
        "estimators": {s.label: {"name": s.name, "params": s.params} for s in specs},
        "env_params": env.params,
        "curves": curves,
        "summary": summary,
        "seconds": seconds,
    }
