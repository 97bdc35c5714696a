"""PNG plots of the three analyses (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BIAS_FLOOR = 1e-3  # squared bias is estimated without bias, so it can be slightly negative: floor for log axes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _family(label: str) -> str:
    if label.startswith("hgpo"):
        return label.split()[1]  # K1..K4
    return label.split()[0]


_COLORS = {
    "oracle": "black",
    "rloo": "tab:gray",
    "grpo": "tab:brown",
    "gigpo": "tab:red",
    "K0": "tab:orange",
    "K1": "tab:cyan",
    "K2": "tab:blue",
    "K3": "tab:purple",
    "K4": "tab:green",
}


def plot_bias(run: dict[str, Any], path: Path, target: str = "history") -> None:
    """Two panels for one (environment, policy) run of `analyze bias`.

    Left: squared bias vs variance (reward units^2) of the estimators in reward units (mean_norm, RLOO,
    oracle rows). Right: correlation with the exact advantage vs share of systematic wrong signs, for
    every estimator (mean_std_norm hollow).
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5))
    named = ("oracle", "rloo", "grpo", "gigpo", "K0")
    for row in run["estimators"]:
        m = row[target]
        fam = _family(row["label"])
        color = _COLORS.get(fam, "tab:olive")
        marker = "s" if "+base" in row["label"] else ("*" if fam in named[:4] else "o")
        hollow = row["norm"] == "mean_std_norm"
        size = 70 if marker == "*" else 26
        show = fam in named or row["label"] in ("hgpo K2 a1 recipe", "hgpo K4 a2 paper")
        if not hollow:
            b2 = max(m["bias2"], BIAS_FLOOR)
            ax1.scatter(m["variance"], b2, c=color, marker=marker, s=size)
            if show:
                ax1.annotate(row["label"], (m["variance"], b2), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax2.scatter(
            m["wrong_sign_mean"],
            m["corr"],
            marker=marker,
            s=size,
            facecolors="none" if hollow else color,
            edgecolors=color,
        )
        if not hollow and show:
            ax2.annotate(
                row["label"], (m["wrong_sign_mean"], m["corr"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("variance given the situation (reward units$^2$)")
    ax1.set_ylabel(f"squared bias (reward units$^2$, floored at {BIAS_FLOOR:g})")
    ax1.set_title("reward-unit estimators (mean_norm, RLOO, oracles)")
    ax2.set_xlabel("share of steps whose cell-mean advantage has the wrong sign")
    ax2.set_ylabel("correlation with the exact advantage")
    ax2.set_title("all estimators (hollow: mean_std_norm)")
    handles = [
        plt.Line2D([], [], color=c, marker="o", linestyle="", label=("hgpo " + f if f.startswith("K") else f))
        for f, c in _COLORS.items()
    ]
    handles.append(plt.Line2D([], [], color="k", marker="s", linestyle="", label="+ base group"))
    ax2.legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(
        f"{run['env']} / policy {run['policy']} (window K={run['policy_history']}), "
        f"{run['groups']} groups of {run['group_size']}, target: {target} advantage"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learn(result: dict[str, Any], path: Path, metric: str = "success_exact") -> None:
    """Success vs iteration per estimator: mean over seeds (line) and min..max over seeds (band)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("tab10")
    for i, (label, curves) in enumerate(result["curves"].items()):
        y = np.array([c[metric] for c in curves], dtype=float)  # (seeds, iterations + 1)
        x = np.arange(y.shape[1])
        mean = y.mean(0)
        ax.plot(x, mean, color=cmap(i % 10), label=f"{label} (final {mean[-1]:.2f})")
        ax.fill_between(x, y.min(0), y.max(0), color=cmap(i % 10), alpha=0.15)
    cfg = result["config"]
    ax.set_xlabel("iteration")
    ax.set_ylabel("exact success probability" if metric == "success_exact" else metric)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(
        f"{cfg['env']}: softmax tables (window K={cfg['policy_history']}), {len(cfg['seeds'])} seeds, "
        f"mean and min-max band"
    )
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_groups(result: dict[str, Any], path: Path) -> None:
    """Per level: share of steps in non-singleton groups vs iteration (left) and the pooled group-size
    distribution (right, steps-weighted)."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    iters = result["iterations"]
    levels = sorted({int(k) for it in iters for k in it["levels"]})
    x = [it["iteration"] for it in iters]
    for k in levels:
        y = [it["levels"][str(k)]["share_in_nonsingleton"] if str(k) in it["levels"] else np.nan for it in iters]
        ax1.plot(x, y, marker="o", ms=3, label=f"level {k}")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("share of steps in a non-singleton group")
    ax1.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=8)
    width = 0.8 / max(len(levels), 1)
    for j, k in enumerate(levels):
        hist = result["pooled"][str(k)]["size_hist"]
        sizes = np.array(sorted(int(s) for s in hist), dtype=np.int64)
        steps = np.array([int(s) * hist[str(s)] for s in sizes], dtype=float)
        bins = np.minimum(sizes, 16)
        agg = np.bincount(bins, weights=steps, minlength=17)[1:]
        ax2.bar(
            np.arange(1, 17) + (j - len(levels) / 2) * width, agg / max(agg.sum(), 1), width=width, label=f"level {k}"
        )
    ax2.set_xticks(range(1, 17), [str(i) for i in range(1, 16)] + ["16+"], fontsize=7)
    ax2.set_xlabel("group size")
    ax2.set_ylabel("share of steps")
    ax2.legend(fontsize=8)
    fig.suptitle(f"HGPO groups of {result['run_dir']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
