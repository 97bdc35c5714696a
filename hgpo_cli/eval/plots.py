"""PNG plots of a comparison (matplotlib, no display needed).

- learning_curves_<env>.png: rollout success (%) vs iteration per row, mean over the row's training runs
  with a band of ± one std where several runs have the iteration;
- alfworld_task_types.png: evaluation success per ALFWorld task type and All per row (bars, mean ± std
  over seeds), published numbers as black markers where they exist;
- webshop.png: WebShop score and success per row, same conventions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from hgpo_cli.eval.published import TASK_COLUMNS


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_curve(curves: list[list[tuple[int, float]]]) -> tuple[list[int], list[float], list[float]]:
    """Iterations, mean and population std over the curves that have each iteration."""
    by_iteration: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for iteration, value in curve:
            by_iteration[iteration].append(value)
    iterations = sorted(by_iteration)
    means = [sum(by_iteration[i]) / len(by_iteration[i]) for i in iterations]
    stds = [
        (sum((v - m) ** 2 for v in by_iteration[i]) / len(by_iteration[i])) ** 0.5
        for i, m in zip(iterations, means, strict=True)
    ]
    return iterations, means, stds


def plot_learning_curves(rows: list[Any], env: str, path: Path) -> Path | None:
    plt = _pyplot()
    drawn = False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        curves = row.curves(env)
        if not curves:
            continue
        iterations, means, stds = mean_curve(curves)
        (line,) = ax.plot(iterations, means, label=f"{row.label} ({len(curves)} runs)")
        ax.fill_between(
            iterations,
            [m - s for m, s in zip(means, stds, strict=True)],
            [m + s for m, s in zip(means, stds, strict=True)],
            color=line.get_color(),
            alpha=0.2,
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("rollout success (%)")
    ax.set_title(f"{env}: training success (mean ± std over training seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bars(rows: list[Any], columns: list[tuple[str, str]], title: str, ylabel: str, path: Path) -> Path | None:
    """Grouped bars: one group per column, one bar per row with a number in some column."""
    rows = [r for r in rows if any(key in r.cells for key, _ in columns)]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(columns) * max(1, len(rows)) / 2), 4.5))
    width = 0.8 / len(rows)
    marked = False
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
        means = [row.cells[key].mean if key in row.cells else float("nan") for key, _ in columns]  # nan: no bar
        stds = [row.cells[key].std if key in row.cells else float("nan") for key, _ in columns]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=row.label)
        if row.published:
            pub = row.published[0]
            points = [(x, pub.values[key]) for x, (key, _) in zip(xs, columns, strict=True) if key in pub.values]
            if points:
                ax.scatter(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="_",
                    s=120,
                    color="black",
                    zorder=3,
                    label=None if marked else "published",
                )
                marked = True
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([header for _, header in columns])
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(rows: list[Any], out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    written = [
        plot_learning_curves(rows, env, out_dir / f"learning_curves_{env}.png") for env in ("alfworld", "webshop")
    ]
    alfworld_columns = [(f"alfworld/{name}", name) for name in TASK_COLUMNS] + [
        ("alfworld/All", "All"),
        ("alfworld-ood/All", "All (OOD)"),
    ]
    written.append(
        plot_bars(
            rows,
            alfworld_columns,
            "ALFWorld: success per task type (mean ± std over seeds)",
            "success (%)",
            out_dir / "alfworld_task_types.png",
        )
    )
    written.append(
        plot_bars(
            rows,
            [("webshop/score", "score"), ("webshop/success", "success")],
            "WebShop: score and success (mean ± std over seeds)",
            "%",
            out_dir / "webshop.png",
        )
    )
    return [p for p in written if p is not None]
