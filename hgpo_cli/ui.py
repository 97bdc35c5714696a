"""Terminal output for long jobs: rich progress bars for iterations and rollout steps, summary tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def progress_bars(console: Console) -> Progress:
    """The project's progress display: description, bar, done/total, elapsed time, a free info field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    )


class TrainingUI:
    """Progress of a training run: one bar for iterations, one for the rollout's steps."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = progress_bars(self.console)
        self.iter_task: Any = None
        self.step_task: Any = None

    def message(self, text: str) -> None:
        self.console.print(f"[bold cyan]hgpo[/] {text}")

    def start_training(self, total: int, done: int, max_steps: int) -> None:
        self.progress.start()
        self.iter_task = self.progress.add_task("iterations", total=total, completed=done, info="")
        self.step_task = self.progress.add_task("  rollout", total=max_steps, info="")

    def start_iteration(self, iteration: int) -> None:
        self.progress.update(self.step_task, completed=0, info=f"iteration {iteration}")

    def rollout_step(self, step: int, active: int) -> None:
        self.progress.update(self.step_task, completed=step, info=f"{active} envs active")

    def end_iteration(self, iteration: int, metrics: dict[str, Any]) -> None:
        info = (
            f"success {metrics.get('rollout/success_rate', 0):.2f}  "
            f"len {metrics.get('rollout/episode_length', 0):.1f}  "
            f"kl {metrics.get('actor/kl', 0):.4f}  {metrics.get('time/iteration', 0):.0f}s/it"
        )
        self.progress.update(self.iter_task, completed=iteration, info=info)

    def stop(self) -> None:
        self.progress.stop()


def summary_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table
