"""Tables of the three analyses, rendered as Markdown (results/) or with rich (terminal)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hgpo_cli.analyze.bias import REWARD_UNITS

CELLS = {"history": "task, step, previous observations, belief, action", "window": "task, window, action"}


@dataclass
class Table:
    """A titled table of strings with notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def bias_tables(result: dict[str, Any], target: str = "history") -> list[Table]:
    """Per run: the grouping diagnostics and the estimator table against `target`."""
    tables = []
    for run in result["runs"]:
        head = (
            f"{run['env']} / policy {run['policy']} (window K={run['policy_history']}): "
            f"{run['groups']} groups of {run['group_size']}, {run['steps']} steps"
        )
        levels = Table(
            f"{head}: hierarchy levels",
            [
                "level",
                "steps with context",
                "steps in non-singleton groups",
                "mean group size",
                "RMS spread of V(h) in groups",
                "RMS spread of Vbar(w) in groups",
            ],
            [
                [
                    str(lv["level"]),
                    _f(lv["steps_with_context"]),
                    _f(lv["share_in_nonsingleton"]),
                    _f(lv["mean_group_size"], 2),
                    _f(lv["v_history_spread"]),
                    _f(lv["v_window_spread"]),
                ]
                for lv in run["levels"]
            ],
            [
                f"success (exact) {_f(run['success_exact'])}, sampled {_f(run['success_sampled'])}; "
                f"mean episode length {_f(run['mean_episode_length'], 1)} steps; "
                f"aliasing: {run['aliasing']['states']} states, {run['aliasing']['observations']} observation "
                f"texts, {_f(run['aliasing']['shared_share'], 2)} of states share their text.",
                "Shares are of all steps. Spread: RMS deviation of the exact value from its level-k group mean "
                "(reward units), over steps in non-singleton groups: 0 means consistent contexts.",
            ],
        )
        rows = []
        for r in run["estimators"]:
            m = r[target]
            units = r["norm"] in REWARD_UNITS
            rows.append(
                [r["label"], r["norm"]]
                + ([_f(m["bias2"]), _f(m["variance"]), _f(m["mse"])] if units else ["-", "-", "-"])
                + [_f(m["corr"]), _f(m["wrong_sign"]), _f(m["wrong_sign_mean"]), _f(m["zero"]), _f(m["scale"], 2)]
            )
        first = run["estimators"][0][target]
        est = Table(
            f"{head}: estimators vs the exact {target} advantage",
            [
                "estimator",
                "norm",
                "bias^2",
                "variance",
                "MSE",
                "corr",
                "wrong sign",
                "wrong sign (cell mean)",
                "zero",
                "std ratio",
            ],
            rows,
            [
                f"Exact {target} advantage: std {_f(run['target_std'][target])}; step return std "
                f"{_f(run['return_std'])} (reward units). bias^2 / variance / MSE in reward units^2, shown "
                "for estimators in reward units only (mean_norm, RLOO, oracles).",
                f"Cells of identical situations ({CELLS[target]}) with >= 2 steps hold "
                f"{_f(first['resolved'])} of the steps (bias^2 + variance = "
                f"MSE on them); 'wrong sign (cell mean)' uses cells of >= 30 steps, "
                f"{_f(first['sign_cells_share'])} of the steps with a non-zero target. "
                "std ratio = std(estimate) / std(target).",
            ],
        )
        tables += [levels, est]
    return tables


def learn_tables(result: dict[str, Any]) -> list[Table]:
    """One row per estimator: exact success at the start, at the end, and averaged over iterations."""
    cfg = result["config"]
    rows = []
    for label, s in result["summary"].items():
        reach = iterations_to(result["curves"][label], 0.9)
        hit = [r for r in reach if r is not None]
        rows.append(
            [
                label,
                _f(s["initial"]),
                f"{_f(s['final_mean'])} ± {_f(s['final_std'])}",
                f"{_f(s['final_min'])} .. {_f(s['final_max'])}",
                f"{_f(s['auc_mean'])} ± {_f(s['auc_std'])}",
                (f"{np.mean(hit):.1f} ± {np.std(hit, ddof=1) if len(hit) > 1 else 0.0:.1f}" if hit else "-")
                + f" ({len(hit)}/{len(reach)})",
                _f(result["seconds"][label], 1),
            ]
        )
    return [
        Table(
            f"{cfg['env']}: softmax tables (window K={cfg['policy_history']}) trained with each estimator, "
            f"{len(cfg['seeds'])} seeds x {cfg['iterations']} iterations",
            [
                "estimator",
                "success at start",
                "final success (mean ± std)",
                "final min .. max",
                "mean success over iterations (± std)",
                "iterations to 0.9 (± std; seeds that got there)",
                "seconds",
            ],
            rows,
            [
                f"Success: exact probability of winning within the horizon, mean over tasks. Per iteration "
                f"{cfg['groups_per_iteration']} groups of {cfg['group_size']}; norm {cfg['norm']} where the "
                f"estimator takes one; PPO (clip {cfg['clip']}, dual clip {cfg['clip_c']}, token-mean, "
                f"low_var_kl {cfg['kl_coef']}, entropy {cfg['entropy_coeff']}), AdamW lr {cfg['lr']}, "
                f"{cfg['minibatches']} minibatches, one epoch. std over seeds (ddof 1). Seconds are wall time "
                "on a shared machine: compare them only within one run.",
            ],
        )
    ]


def iterations_to(curves: list[dict[str, list[float]]], level: float) -> list[int | None]:
    """Per seed: the first iteration whose exact success is >= level (None if never)."""
    out: list[int | None] = []
    for c in curves:
        y = np.asarray(c["success_exact"])
        out.append(int(np.argmax(y >= level)) if (y >= level).any() else None)
    return out


def groups_tables(result: dict[str, Any]) -> list[Table]:
    """Per iteration (and pooled): share of steps in non-singleton groups and mean group size per level."""
    K = result["history_length"]
    headers = ["iteration", "steps", "success"] + [f"L{k} grouped" for k in range(K + 1)]
    headers += [f"L{k} size" for k in range(K + 1)]
    rows = []
    for it in result["iterations"]:
        lv = it["levels"]
        rows.append(
            [str(it["iteration"]), str(it["steps"]), _f(it["success"])]
            + [_f(lv[str(k)]["share_in_nonsingleton"]) for k in range(K + 1)]
            + [_f(lv[str(k)]["mean_group_size"], 2) for k in range(K + 1)]
        )
    pooled = result["pooled"]
    rows.append(
        ["all", str(result["steps"]), ""]
        + [_f(pooled[str(k)]["share_in_nonsingleton"]) for k in range(K + 1)]
        + [""] * (K + 1)
    )
    src = "config.yaml" if result["history_length_from_config"] == K else "--levels or default"
    return [
        Table(
            f"{result['run_dir']}: HGPO groups per level (K={K} from {src})",
            headers,
            rows,
            [
                "Lk grouped: share of all steps in a level-k group of size >= 2 (the steps that get a level-k "
                "advantage). Lk size: steps-weighted mean size of level-k groups (singletons included).",
            ],
        )
    ]


def jsonable(obj: Any) -> Any:
    """obj with NaN and infinite floats replaced by None (strict JSON) and numpy scalars as Python."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_markdown(tables: list[Table], preamble: str = "") -> str:
    """The tables as GitHub Markdown, each with its title (###) and notes."""
    out = [preamble.rstrip() + "\n"] if preamble else []
    for t in tables:
        out.append(f"### {t.title}\n")
        out.append("| " + " | ".join(t.headers) + " |")
        out.append("|" + "|".join("---" for _ in t.headers) + "|")
        out += ["| " + " | ".join(r) + " |" for r in t.rows]
        out.append("")
        out += [f"{n}\n" for n in t.notes]
    return "\n".join(out)


def print_rich(tables: list[Table]) -> None:
    """Print the tables to the terminal with rich."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    for t in tables:
        rt = RichTable(title=t.title, title_justify="left", show_lines=False)
        for i, h in enumerate(t.headers):
            rt.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
        for r in t.rows:
            rt.add_row(*r)
        console.print(rt)
        for n in t.notes:
            console.print(f"[dim]{n}[/dim]")
        console.print()
