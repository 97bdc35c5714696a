"""Terminal output of an evaluation: one bar over (split, seed) passes, one over the turns of the pass in flight.

`evaluate_checkpoint` calls `message`, and, when present, `start_seed` and `rollout_step`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from hgpo_cli.eval.runs import split_label
from hgpo_cli.ui import progress_bars, stop_progress


class EvalUI:
    def __init__(self, total_passes: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = progress_bars(self.console)
        self.total = total_passes
        self.pass_task: Any = None
        self.step_task: Any = None
        self.started = 0
        self.stopped = False

    def message(self, text: str) -> None:
        self.console.print(f"[bold cyan]hgpo[/] {text}")

    def start(self) -> None:
        if self.pass_task is not None:
            return
        self.progress.start()
        self.pass_task = self.progress.add_task("seed passes", total=self.total, info="")

    def start_seed(self, seed: int, split: str, tasks: int, max_steps: int) -> None:
        """A full pass over the split's tasks with one seed begins."""
        if self.pass_task is None:
            self.start()
        if self.started:
            self.progress.update(self.pass_task, advance=1)
        self.started += 1
        if self.step_task is None:
            self.step_task = self.progress.add_task("  turns", total=max_steps, info="")
        self.progress.update(self.pass_task, info=f"{split_label(split)}, seed {seed}")
        self.progress.update(self.step_task, total=max_steps, completed=0, info=f"{tasks} episodes")

    def rollout_step(self, step: int, active: int) -> None:
        if self.step_task is not None:
            self.progress.update(self.step_task, completed=step, info=f"{active} episodes running")

    def stop(self) -> None:
        """End the bars; a second call does nothing (rich's Live fails when stopped twice), nor does a
        Ctrl-C that interrupted `start` make it fail."""
        if self.stopped:
            return
        self.stopped = True
        if self.pass_task is not None and self.started:
            self.progress.update(self.pass_task, completed=self.started)
        stop_progress(self.progress)


NARROW = 100  # below this many columns the tables take their narrow layout
SPLIT_SHORT = {"eval_in_distribution": "in", "eval_out_of_distribution": "out"}


def eval_table(env: str, reports: list[dict[str, Any]], width: int | None = None) -> Any:
    """A rich table of evaluation reports: each split's seeds, then its mean ± std over seeds (bold).

    Narrower than `NARROW` columns (`width`, e.g. a console's), split names are shortened (in, out; said
    in the caption) and mean ± std take two lines, so no column is cut at 80 characters.
    """
    from rich.table import Table

    from hgpo_cli.eval.summary import column_order

    narrow = width is not None and width < NARROW
    columns = column_order(env, sorted({c for r in reports for c in r["stats"]}))
    label = {"All": "All (success %)" if env == "alfworld" else "success %", "score": "score"}
    if narrow:
        label["All"] = "All %" if env == "alfworld" else "success %"
    title = f"{env} evaluation: {reports[0]['checkpoint']}" if reports else env
    shortened = sorted({r["split"] for r in reports if r["split"] in SPLIT_SHORT}) if narrow else []
    caption = ", ".join(f"{SPLIT_SHORT[s]}: {split_label(s)}" for s in shortened) or None
    table = Table(title=title, show_header=True, header_style="bold", caption=caption)
    table.add_column("split", no_wrap=True)
    table.add_column("seed", no_wrap=not narrow)
    for column in columns:
        table.add_column(label.get(column, column), justify="right")
    sep = "\n" if narrow else " "
    for report in reports:
        name = split_label(report["split"])
        name = SPLIT_SHORT.get(report["split"], name) if narrow else name
        for seed, values in report["per_seed"].items():
            table.add_row(name, str(seed), *(f"{values[c]:.1f}" if c in values else "-" for c in columns), style="dim")
        stats = report["stats"]
        cells = [f"{stats[c]['mean']:.1f}{sep}± {stats[c]['std']:.1f}" if c in stats else "-" for c in columns]
        seeds = f"mean ± std{sep}({len(report['per_seed'])})"
        table.add_row(name, seeds, *cells, style="bold", end_section=True)
    return table
