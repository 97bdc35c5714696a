"""`hgpo envs list|check|play`: the environment suites, a checker that loads (and solves) every task, and
a terminal player. Generic over suites (`hgpo_cli.envs.registry`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from hgpo_cli.commands.common import PRESET_HELP

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _config(name: str, preset: str | None, overrides: list[str], data_dir: str | None) -> Any:
    from hgpo_cli.config import load_config
    from hgpo_cli.envs.registry import SUITES
    from hgpo_cli.errors import UserError

    if name not in SUITES:
        raise UserError(f"unknown environment '{name}' (one of {', '.join(SUITES)})")
    from hgpo_cli.envs.defaults import env_overrides

    extra = [f"env.name={name}"]
    if data_dir:
        extra.append(f"env.{name}.data_dir={data_dir}")
    # the environment commands use no model: the preset's warm start (env-specific) does not apply
    return load_config(preset, ["model.sft_epochs=0", *env_overrides(name, preset, overrides), *overrides, *extra])


def _summary_table(name: str, split: str, summary: dict[str, Any], walkthrough: bool) -> Any:
    from rich.table import Table

    won_title = "won (walkthrough)" if walkthrough else "won (not played)"
    table = Table(title=f"{name} / {split}")
    for column in ("task type", "games", "loaded", won_title):
        table.add_column(column, justify="left" if column == "task type" else "right")
    for task_type, row in summary.get("by_task_type", {}).items():
        games = int(row.get("games", 0))
        loaded = row.get("loaded", "")
        won = int(row.get("won") or 0)
        share = f" ({100.0 * won / games:.1f}%)" if walkthrough and games else ""
        table.add_row(task_type, str(games), str(loaded), f"{won}{share}" if walkthrough else "-")
    games, won = int(summary.get("games", 0)), int(summary.get("won") or 0)
    share = f" ({100.0 * won / games:.1f}%)" if walkthrough and games else ""
    table.add_row(
        "[bold]all[/bold]", str(games), str(summary.get("loaded", "")), f"{won}{share}" if walkthrough else "-"
    )
    return table


def _print_extras(console: Any, summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        if key in ("games", "loaded", "won", "by_task_type"):
            continue
        if value is None:
            continue  # a figure of games not played
        if isinstance(value, float):
            console.print(f"{key}: {value:.4g}")
        elif isinstance(value, list):
            console.print(f"{key}: {len(value)}")
            for item in value[:10]:
                console.print(f"  {json.dumps(item) if isinstance(item, dict) else item}", markup=False)
            if len(value) > 10:
                console.print(f"  ... and {len(value) - 10} more")
        else:
            console.print(f"{key}: {value}", markup=False)


def register(app: typer.Typer) -> None:
    envs_app = typer.Typer(help="Environment suites: list them, check their tasks, play one.", no_args_is_help=True)

    @envs_app.command("list")
    def list_() -> None:
        """List the environment suites with their default splits and data source."""
        from rich.console import Console
        from rich.table import Table

        from hgpo_cli.config import load_config
        from hgpo_cli.envs.registry import SUITES

        cfg = load_config(None, [])
        table = Table()
        for column in ("name", "train split", "eval split", "data"):
            table.add_column(column)
        for name in SUITES:
            sub = cfg.env[name]
            data = str(sub.data_dir) if sub.data_dir else "generated (no data_dir set)"
            table.add_row(name, str(sub.train_split), str(sub.eval_split), data)
        Console().print(table)

    @envs_app.command("check", context_settings=_EXTRA)
    def check(
        name: str = typer.Argument(..., help="alfworld or webshop."),
        overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
        data_dir: str = typer.Option(None, "--data-dir", help="Data folder (sets env.<name>.data_dir)."),
        split: str = typer.Option(None, "--split", help="Split to check (default: the config's eval_split)."),
        walkthrough: bool = typer.Option(
            False, "--walkthrough", "--oracle", help="Also play the scripted solution and count wins."
        ),
        limit: int = typer.Option(None, "--limit", min=0, help="Only the first N tasks of the split."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        preset: str = typer.Option(None, "--preset", help=PRESET_HELP),
    ) -> None:
        """Load and reset every task of a split; with --walkthrough also solve it.

        Prints games, loaded and won per task type (a table, or with --json one JSON object
        {"games", "loaded", "won", "by_task_type": {type: {"games", "won", ...}}, ...}; without
        --walkthrough "won" and the scores are null). Plays ALFWorld with 50 turns and WebShop with 15
        unless --preset or env.max_steps=N says otherwise. Exits 1 when a task does not load.
        """
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from hgpo_cli.envs.registry import get_suite

        cfg = _config(name, preset, list(overrides or []), data_dir)
        split = split or str(cfg.env[name].eval_split)
        suite = get_suite(name)
        err_console = Console(stderr=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True, disable=not sys.stderr.isatty()) as bar:
            job = bar.add_task(f"checking {name}/{split}", total=None)

            def progress(done: int, total: int, *_: Any) -> None:
                bar.update(job, completed=done, total=total)

            summary = suite.check(cfg, split, walkthrough=walkthrough, limit=limit, progress=progress)
        if not walkthrough:
            from hgpo_cli.envs.defaults import unplayed

            summary = unplayed(summary)
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            console = Console()
            console.print(_summary_table(name, split, summary, walkthrough))
            _print_extras(console, summary)
        if int(summary.get("loaded", 0)) < int(summary.get("games", 0)):
            raise typer.Exit(1)

    @envs_app.command("play", context_settings=_EXTRA)
    def play(
        name: str = typer.Argument(..., help="alfworld or webshop."),
        overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
        index: int = typer.Option(0, "--index", min=0, help="Which task of the split (0-based)."),
        split: str = typer.Option(None, "--split", help="Split (default: the config's eval_split)."),
        data_dir: str = typer.Option(None, "--data-dir", help="Data folder (sets env.<name>.data_dir)."),
        max_steps: int = typer.Option(
            None, "--max-steps", min=1, help="Turns before the episode ends (default: ALFWorld 50, WebShop 15)."
        ),
        preset: str = typer.Option(None, "--preset", help=PRESET_HELP),
    ) -> None:
        """Play one task in the terminal: type an action (or its number); `quit` ends."""
        from hgpo_cli.envs.registry import get_suite
        from hgpo_cli.errors import UserError

        extra = [f"env.max_steps={max_steps}"] if max_steps else []
        cfg = _config(name, preset, [*(overrides or []), *extra], data_dir)
        split = split or str(cfg.env[name].eval_split)
        suite = get_suite(name)
        tasks = suite.list_tasks(cfg, split)
        if index >= len(tasks):
            raise UserError(f"--index {index} is out of range: split '{split}' has {len(tasks)} tasks")
        task = tasks[index]
        env = suite.make_env(task, cfg)
        typer.echo(f"{name} / {split} / task {index}: {task.task_id} ({task.task_type})")
        result = env.reset()
        if result.instruction:
            typer.echo(f"Task: {result.instruction}")
        total = 0.0
        step = 0
        try:
            while True:
                typer.echo(f"\n{result.observation}\n")
                if result.done:
                    break
                for k, action in enumerate(result.admissible_actions, 1):
                    typer.echo(f"  {k:>2}. {action}")
                try:
                    line = input(f"[step {step + 1}] > ").strip()
                except EOFError:
                    break
                if line.lower() in ("quit", "exit", "q"):
                    break
                if not line:
                    continue
                if line.isdigit() and 1 <= int(line) <= len(result.admissible_actions):
                    line = result.admissible_actions[int(line) - 1]
                result = env.step(line)
                step += 1
                total += float(result.reward)
                if result.reward:
                    typer.echo(f"(reward {result.reward:g})")
        finally:
            env.close()
        outcome = "won" if result.won else ("episode over" if result.done else "stopped")
        typer.echo(f"{outcome} after {step} step(s); total reward {total:g}")

    app.add_typer(envs_app, name="envs")
