"""Terminal output for long jobs: rich progress bars for iterations and rollout steps, summary tables."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
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


def stop_progress(progress: Progress) -> None:
    """Stop `progress`, also when Ctrl-C landed inside its `start` (rich's Live is then marked started but
    has no render hook or live slot to give back, and its `stop` raises IndexError): the cursor is shown
    again and the interrupt goes on to its handler instead of a traceback from the bars."""
    try:
        progress.stop()
    except IndexError:
        progress.console.show_cursor(True)


def plain_output() -> bool:
    """Whether to print plain lines instead of live bars: stdout or stderr is not a terminal (piped into
    `tee`, redirected to a file, captured by a job runner)."""
    return not (sys.stdout.isatty() and sys.stderr.isatty())


class TrainingUI:
    """Progress of a training run.

    On a terminal: one bar for iterations and one for the phase that runs (rollout turns, then log-probs,
    update, weight sync). Otherwise (`plain`): one plain line per phase and per iteration, on stdout when
    stdout is not a terminal (so `hgpo train | tee log` logs them), else on stderr; messages and the
    summary go to the same place.
    """

    def __init__(self, console: Console | None = None, plain: bool | None = None) -> None:
        if plain is None:
            plain = (not console.is_terminal) if console is not None else plain_output()
        self.plain = plain
        if console is None:
            to_stdout = plain and not sys.stdout.isatty()
            console = Console(file=sys.stdout if to_stdout else sys.stderr, soft_wrap=plain)
        self.console = console
        self.progress = progress_bars(self.console)
        self.iter_task: Any = None
        self.step_task: Any = None
        self.total = 0
        self.iteration = 0
        self.max_steps = 0
        self.started = 0.0

    def message(self, text: str) -> None:
        self.console.print(f"[bold cyan]hgpo[/] {escape(text)}")

    def _line(self, text: str) -> None:
        self.console.print(f"hgpo {text}", markup=False, highlight=False)

    def start_training(self, total: int, done: int, max_steps: int) -> None:
        self.total, self.max_steps = total, max_steps
        if self.plain:
            self._line(f"training: iterations {done}/{total} done")
            return
        self.progress.start()
        self.iter_task = self.progress.add_task("iterations", total=total, completed=done, info="")
        self.step_task = self.progress.add_task("  rollout", total=max_steps, info="")

    def start_iteration(self, iteration: int) -> None:
        self.iteration = iteration
        self.started = time.monotonic()
        if self.plain:
            self._line(f"iteration {iteration}/{self.total}: rollout (up to {self.max_steps} turns)")
            return
        self.progress.update(
            self.step_task, description="  rollout", total=self.max_steps, completed=0, info=f"iteration {iteration}"
        )

    def rollout_step(self, step: int, active: int) -> None:
        if not self.plain:
            self.progress.update(self.step_task, completed=step, info=f"{active} envs active")

    def phase(self, name: str, detail: str = "") -> None:
        """A phase of the iteration after the rollout begins (log-probs, update, weight sync, critic)."""
        if self.plain:
            self._line(f"iteration {self.iteration}/{self.total}: {name}" + (f" ({detail})" if detail else ""))
            return
        if self.step_task is not None:
            info = f"iteration {self.iteration}: {detail}"
            # total 1 until the phase reports its micro-batch passes (total=None would keep the rollout's turns)
            self.progress.update(self.step_task, description=f"  {name}", total=1, completed=0, info=info)

    def phase_progress(self, name: str, done: int, total: int) -> None:
        """Micro-batch passes of the running phase (log-probs, update) on the terminal's phase line; piped
        output keeps its one line per phase."""
        if self.plain or self.step_task is None:
            return
        self.progress.update(self.step_task, description=f"  {name}", total=total, completed=done)

    def end_iteration(self, iteration: int, metrics: dict[str, Any]) -> None:
        info = (
            f"success {metrics.get('rollout/success_rate', 0):.2f}  "
            f"len {metrics.get('rollout/episode_length', 0):.1f}  "
            f"kl {metrics.get('actor/kl', 0):.4f}  {metrics.get('time/iteration', 0):.0f}s/it"
        )
        if self.plain:
            self._line(f"iteration {iteration}/{self.total} done: {info}")
            return
        self.progress.update(self.iter_task, completed=iteration, info=info)
        if self.step_task is not None:
            self.progress.update(self.step_task, description="  done", total=1, completed=1, info="")

    def stop(self) -> None:
        if not self.plain:
            stop_progress(self.progress)


def summary_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table
