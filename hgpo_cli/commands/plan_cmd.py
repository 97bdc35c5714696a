"""`hgpo plan [PRESET] [key=value ...] [--gpus N] [--gpu-mem-gib G] [--json]`: will the run fit on the GPUs?"""

from __future__ import annotations

import json

import typer

from hgpo_cli.commands.common import PRESET_HELP, split_preset_and_overrides


def register(app: typer.Typer) -> None:
    @app.command(
        "plan",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def plan(
        args: list[str] = typer.Argument(None, help=f"[PRESET] then key=value overrides. {PRESET_HELP}"),
        gpus: int = typer.Option(
            None,
            "--gpus",
            min=1,
            help="GPUs the trainer shards over (FSDP2 world size, one rank per GPU; the rollout engine shares "
            "the first). Default: the config's trainer.num_workers.",
        ),
        gpu_mem_gib: float = typer.Option(80.0, "--gpu-mem-gib", help="Memory of one GPU in GiB."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    ) -> None:
        """Memory per GPU of a run, from the model's config.json alone (no weights): policy weights, gradients,
        AdamW state, reference model, activations, logits, rollout engine (none with rollout.share_policy)
        and, with algorithm.name=ppo, the critic; the verdict and, when it does not fit, which setting would
        (more GPUs, offload, checkpointing, a smaller micro-batch, the critic on its own GPU). Exit code 1
        when it does not fit. Formulas: hgpo_cli/plan/memory.py; assumptions: docs/scale.md."""
        from hgpo_cli.config import load_config
        from hgpo_cli.plan import plan_config
        from hgpo_cli.plan.report import plan_json, print_plan

        preset, overrides = split_preset_and_overrides(args or [])
        cfg = load_config(preset, overrides)
        verdict, source = plan_config(cfg, gpus=gpus, gpu_mem_gib=gpu_mem_gib)
        name, model = preset or "default", str(cfg.model.path)
        if as_json:
            typer.echo(json.dumps(plan_json(verdict, preset=name, model=model, shape_source=source)))
        else:
            from rich.console import Console

            print_plan(verdict, Console(), preset=name, model=model, shape_source=source)
        if not verdict.fits:
            raise typer.Exit(1)
