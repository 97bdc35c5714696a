"""`hgpo train [PRESET] [key=value ...]`: train an agent; the embedded CPU default with no arguments."""

from __future__ import annotations

import typer

from hgpo_cli.commands.common import PRESET_HELP, split_preset_and_overrides


def register(app: typer.Typer) -> None:
    @app.command(
        "train",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def train(
        args: list[str] = typer.Argument(None, help=f"[PRESET] then key=value overrides. {PRESET_HELP}"),
    ) -> None:
        """Train an LLM agent with an advantage estimator (HGPO by default) on ALFWorld or WebShop."""
        from hgpo_cli.config import load_config
        from hgpo_cli.train.preflight import preflight
        from hgpo_cli.train.run_folder import check_run_folder, run_dir_of

        preset, overrides = split_preset_and_overrides(args or [])
        cfg = load_config(preset, overrides)
        preflight(cfg)  # paths, engine, plan: before torch, Ray, games and models load
        check_run_folder(cfg, run_dir_of(cfg))

        from hgpo_cli.train.report import print_training_summary
        from hgpo_cli.train.trainer import train as run_training
        from hgpo_cli.ui import TrainingUI

        ui = TrainingUI()
        summary = run_training(cfg, ui)
        print_training_summary(summary, ui.console)
        if summary.interrupted:
            raise typer.Exit(130)
