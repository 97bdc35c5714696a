"""`hgpo ablate [PRESET] [key=value ...] --grid KEY=V1,V2 ...`: train then evaluate every point of a grid."""

from __future__ import annotations

from pathlib import Path

import typer

from hgpo_cli.commands.common import PRESET_HELP, split_preset_and_overrides


def register(app: typer.Typer) -> None:
    @app.command("ablate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def ablate(
        args: list[str] = typer.Argument(None, help=f"[PRESET] then fixed key=value overrides. {PRESET_HELP}"),
        grid: list[str] = typer.Option(None, "--grid", help="KEY=V1,V2,...: a grid axis (repeatable)."),
        grid_file: list[str] = typer.Option(
            None,
            "--grid-file",
            help="A shipped grid (k, alpha, base_group, norm, weighting; see --list-grids) or a "
            "YAML file with `grid: {key: \\[values]}` (repeatable; --grid options win).",
        ),
        split: str = typer.Option(
            None, "--split", help="Evaluation split(s), as for hgpo eval (default: the config's eval_split)."
        ),
        seeds: str = typer.Option("123,456,789", "--seeds", help="Evaluation seeds."),
        episodes: int = typer.Option(None, "--episodes", min=1, help="Only N tasks, in turn per task type."),
        parallel: int = typer.Option(
            1,
            "--parallel",
            min=1,
            help="Run up to N points at once as Ray tasks (fewer if the cluster cannot hold N points' actors).",
        ),
        out_root: Path = typer.Option(
            None,
            "--out-root",
            help="Folder of the point run folders (default runs/ablate-<preset>-<hash of preset and fixed overrides>).",
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the points and their status, run nothing."),
        list_grids: bool = typer.Option(False, "--list-grids", help="List the shipped grids and exit."),
    ) -> None:
        """Train then evaluate every point of a grid of overrides; resumable.

        The grid is the cartesian product of the --grid axes and grid files. Each point gets its own run folder;
        points already done are skipped. Prints mean ± std per setting over training and evaluation seeds.
        """
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from hgpo_cli.errors import UserError
        from hgpo_cli.eval import ablate as ab
        from hgpo_cli.eval.runs import parse_seeds, resolve_splits, split_label

        out, err = Console(), Console(stderr=True)
        if list_grids:
            for name, description in ab.shipped_grids().items():
                out.print(f"[bold]{name}[/]: {escape(description)}")
            return
        preset, overrides = split_preset_and_overrides(args or [])
        spec = ab.combine(list(grid or []), list(grid_file or []))
        if "env.name" in spec.grid:
            raise UserError("env.name cannot be a grid key: run one ablation per environment")
        seed_list = parse_seeds(seeds)
        root, points = ab.plan(preset, overrides, spec, out_root)
        env = points[0].cfg.env.name
        splits = resolve_splits(env, split, points[0].cfg.env[env].eval_split)
        status = {p.name: ab.point_status(p, splits, seed_list) for p in points}

        err.print(f"[bold cyan]hgpo[/] ablation folder {escape(str(root))}")  # a long path, not in the title
        listing = Table(title=f"hgpo ablate: {len(points)} points", header_style="bold")
        listing.add_column("point")
        listing.add_column("status")
        for point in points:
            listing.add_row(escape(point.name), status[point.name])
        err.print(listing)
        if dry_run:
            return
        ab.write_record(root, preset, spec, overrides)
        todo = [p for p in points if status[p.name] != "done"]
        failed: dict[str, BaseException] = {}
        if todo and parallel > 1:

            def on_event(kind: str, point: ab.Point | None, detail: object) -> None:
                if kind == "limit":
                    err.print(f"[bold cyan]hgpo[/] running {detail} point(s) at a time as Ray tasks")
                elif kind == "start":
                    err.print(f"[bold cyan]hgpo[/] started {escape(point.name)}")
                else:
                    outcome_text = "done" if detail is None else f"failed: {escape(str(detail))}"
                    err.print(f"[bold cyan]hgpo[/] {escape(point.name)}: {outcome_text}")

            outcome = ab.run_parallel(todo, splits, seed_list, episodes, parallel, on_event)
            failed = {name: e for name, e in outcome.items() if e is not None}
        else:
            from hgpo_cli.eval.progress import EvalUI
            from hgpo_cli.ui import TrainingUI

            if todo:
                ab.start_ray(todo)
            for i, point in enumerate(todo, 1):
                err.print(f"[bold cyan]hgpo[/] point {i}/{len(todo)}: {escape(point.name)} ({status[point.name]})")
                eval_ui = EvalUI(len(splits) * len(seed_list))
                try:
                    ab.run_point(point.cfg, splits, seed_list, episodes, TrainingUI(), eval_ui)
                except KeyboardInterrupt:
                    eval_ui.stop()
                    err.print(f"[bold cyan]hgpo[/] {escape(ab.interrupted_note(points, splits, seed_list, point))}")
                    raise typer.Exit(130) from None
                except UserError:
                    raise
                except Exception as e:  # noqa: BLE001 - one failed point must not stop the others
                    failed[point.name] = e
                    err.print(f"[red]hgpo[/] {escape(point.name)} failed: {type(e).__name__}: {escape(str(e))}")
                finally:
                    eval_ui.stop()

        rows = ab.results(points, splits)
        title = f"Ablation of {ab.preset_label(preset)}: " + ", ".join(k for k in spec.grid if k != ab.SEED_KEY)
        (root / "ablation.md").write_text(ab.results_markdown(env, rows, seed_list, title))
        (root / "ablation.csv").write_text(ab.results_csv(env, rows))
        keys = [k for k in spec.grid if k != ab.SEED_KEY]
        names = ab.short_keys(keys)
        columns = ab.result_columns(env, rows)
        from hgpo_cli.eval.progress import NARROW, SPLIT_SHORT

        narrow = out.width < NARROW  # short split names, mean over std: no column cut at 80 characters
        sep = "\n" if narrow else " "
        shortened = sorted({r.split for r in rows if r.split in SPLIT_SHORT}) if narrow else []
        caption = (
            ", ".join(
                [*(f"{SPLIT_SHORT[s]}: {split_label(s)}" for s in shortened)]
                + (["runs: evaluated/all points"] if narrow else [])
            )
            or None
        )
        table = Table(
            title=escape(title) + " (mean ± std over training x eval seeds)", header_style="bold", caption=caption
        )
        for name in [*(names[k] for k in keys), "split", *columns, "runs"]:
            table.add_column(name, justify="left" if name in (*names.values(), "split") else "right")
        for row in rows:
            cells = [
                f"{row.cells[c].mean:.1f}{sep}± {row.cells[c].std:.1f}" if c in row.cells else "-" for c in columns
            ]
            split = SPLIT_SHORT.get(row.split, split_label(row.split)) if narrow else split_label(row.split)
            table.add_row(
                *(escape(row.setting[k]) for k in keys),
                split,
                *cells,
                f"{row.runs}/{row.runs + row.missing}"
                if narrow
                else f"{row.runs}" + (f" ({row.missing} missing)" if row.missing else ""),
            )
        out.print(table)
        err.print(f"[bold cyan]hgpo[/] wrote {root / 'ablation.md'} and {root / 'ablation.csv'}")
        if failed:
            err.print(f"[red]hgpo[/] {len(failed)} point(s) failed: {', '.join(failed)}")
            raise typer.Exit(1)
