"""`hgpo data alfworld-generate`: write verified ALFWorld games in the release's folder layout."""

from __future__ import annotations

from pathlib import Path

import typer


def _names(values: list[str] | None) -> list[str]:
    """Accept repeated options and comma-separated lists alike."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Prepare environment data (generated games).", no_args_is_help=True)

    @data_app.command("alfworld-generate")
    def alfworld_generate(
        out: Path = typer.Option(..., "--out", help="Folder to write; games go to OUT/json_2.1.1/<split>/."),
        n: int = typer.Option(60, "--n", min=1, help="Games per split."),
        seed: int = typer.Option(0, "--seed", help="Generator seed (same seed, same games)."),
        task_types: list[str] = typer.Option(
            None, "--task-types", help="Task types (repeat or comma-separate; default: all six)."
        ),
        splits: list[str] = typer.Option(
            None, "--splits", help="Release splits to write: train, valid_seen, valid_unseen (default: all three)."
        ),
        workers: int = typer.Option(1, "--workers", min=1, help="Processes that generate in parallel."),
    ) -> None:
        """Generate ALFWorld games from what the alfworld wheel ships, each solved by the planner first.

        All six task types take turns, in kitchens, living rooms, bedrooms and bathrooms; train and
        valid_seen use ALFRED's training rooms, valid_unseen its held-out rooms. Point the suite at the
        result with env.alfworld.data_dir=OUT (or `hgpo envs check alfworld --data-dir OUT`).
        """
        from collections import Counter

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from hgpo_cli.envs.alfworld.games import TASK_TYPE_SHORT, TASK_TYPES
        from hgpo_cli.envs.alfworld.generate import SPLITS, generate_split, room_kind
        from hgpo_cli.errors import UserError

        types = _names(task_types) or list(TASK_TYPES)
        bad = [t for t in types if t not in TASK_TYPES]
        if bad:
            raise UserError(f"unknown task type(s) {', '.join(bad)} (one of {', '.join(TASK_TYPES)})")
        chosen = _names(splits) or list(SPLITS)
        bad = [s for s in chosen if s not in SPLITS]
        if bad:
            raise UserError(f"unknown split(s) {', '.join(bad)} (one of {', '.join(SPLITS)})")
        console = Console(stderr=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        written = {}
        with Progress(*columns, console=console) as bar:
            for split in chosen:
                job = bar.add_task(f"{split:<12}", total=n)

                def report(done: int, total: int, _what: str, job: int = job) -> None:
                    bar.update(job, completed=done, total=total)

                written[split] = generate_split(out, split, n, seed, types, progress=report, workers=workers)
        import json

        for split, trials in written.items():
            kinds: Counter[str] = Counter()
            per_type: Counter[str] = Counter()
            for trial in trials:
                traj = json.loads((trial / "traj_data.json").read_text())
                per_type[TASK_TYPE_SHORT[traj["task_type"]]] += 1
                kinds[room_kind(int(traj["scene"]["scene_num"]))] += 1
            types_text = ", ".join(f"{k} {v}" for k, v in sorted(per_type.items()))
            rooms_text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            typer.echo(f"{split}: {len(trials)} games ({types_text}; rooms: {rooms_text})")
        typer.echo(f"wrote {Path(out) / 'json_2.1.1'}; check with: hgpo envs check alfworld --data-dir {out}")

    app.add_typer(data_app, name="data")
