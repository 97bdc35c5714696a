"""`hgpo sft [PRESET] [key=value ...] --out DIR`: a behaviour-cloning warm start on planner walkthroughs."""

from __future__ import annotations

from pathlib import Path

import typer

from hgpo_cli.commands.common import PRESET_HELP, split_preset_and_overrides


def register(app: typer.Typer) -> None:
    @app.command("sft", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def sft(
        args: list[str] = typer.Argument(None, help=f"[PRESET] then key=value overrides. {PRESET_HELP}"),
        out: Path = typer.Option(..., "--out", help="Folder for the fine-tuned model (HF format)."),
        epochs: int = typer.Option(2, "--epochs", min=1, help="Passes over the walkthrough replies."),
        lr: float = typer.Option(1e-4, "--lr", min=0.0, help="AdamW learning rate."),
    ) -> None:
        """Fine-tune the config's model on the planner's solutions of the training games (ALFWorld), in the
        trainer's own prompts; then train from it with model.path=OUT. For models too small to answer in
        format (agent.answer_format=action)."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from hgpo_cli.config import load_config
        from hgpo_cli.train.sft import check_sft_config, run_sft

        preset, overrides = split_preset_and_overrides(args or [])
        cfg = load_config(preset, overrides)
        check_sft_config(cfg)
        console = Console(stderr=True)
        columns = (TextColumn("sft"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            job = bar.add_task("sft", total=None)
            report = run_sft(
                cfg,
                out,
                epochs=epochs,
                lr=lr,
                say=lambda text: console.print(f"hgpo {text}"),
                on_start=lambda total: bar.update(job, total=total),
                on_step=lambda n: bar.advance(job, n),
            )
        losses = " -> ".join(f"{v:.3f}" for v in report.nll_per_epoch)
        console.print(
            f"hgpo sft: {report.samples} replies from {report.games} games, NLL per reply token {losses}, "
            f"{report.seconds:.0f} s; model in {out} (train from it: model.path={out})"
        )
