"""`hgpo eval CHECKPOINT [key=value ...]`: play every task of a split once per seed at evaluation temperature."""

from __future__ import annotations

from pathlib import Path

import typer

SPLIT_HELP = (
    "Split(s), comma-separated. ALFWorld: in (in-distribution, valid_seen), out (out-of-distribution, "
    "valid_unseen), all, train; WebShop: test, validation, train. Default: the config's eval_split."
)


def register(app: typer.Typer) -> None:
    @app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def eval_(
        checkpoint: str = typer.Argument(
            ...,
            help="HF-format folder (e.g. runs/X/checkpoints/iter_000160/policy), a checkpoint or run folder "
            "(its newest checkpoint), an HF hub id, or embedded:<name>.",
        ),
        overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
        env: str = typer.Option(None, "--env", help="alfworld or webshop (default: the config's env.name)."),
        split: str = typer.Option(None, "--split", help=SPLIT_HELP),
        seeds: str = typer.Option("123,456,789", "--seeds", help="Evaluation seeds; each is a full pass."),
        episodes: int = typer.Option(None, "--episodes", min=1, help="Only N tasks, in turn per task type."),
        out: Path = typer.Option(
            None,
            "--out",
            help="Folder for eval-<env>-<split>.json/.md (default: the "
            "checkpoint folder; runs/eval/<name> for a hub id).",
        ),
        preset: str = typer.Option(
            None,
            "--preset",
            help="Config preset or YAML (default: the run's "
            "config.yaml when the checkpoint is inside an hgpo run, else 'default').",
        ),
    ) -> None:
        """Evaluate a policy checkpoint over several seeds at evaluation temperature.

        ALFWorld: success overall and per task type; WebShop: score and success; mean ± std over seeds.
        Writes eval-<env>-<split>.json and .md next to the checkpoint and logs to W&B.
        """
        from rich.console import Console

        from hgpo_cli.eval.progress import EvalUI, eval_table
        from hgpo_cli.eval.runs import default_out_dir, eval_config, locate_checkpoint, parse_seeds, resolve_splits

        seed_list = parse_seeds(seeds)
        ref = locate_checkpoint(checkpoint)
        cfg, source = eval_config(ref, preset, list(overrides or []), env)
        env_name = cfg.env.name
        splits = resolve_splits(env_name, split, cfg.env[env_name].eval_split)
        out_dir = out or default_out_dir(ref)
        from hgpo_cli.train.preflight import preflight

        preflight(cfg, model_path=ref.model, splits=splits)  # weights, data, engine: before the progress bars
        from hgpo_cli.eval.evaluate import evaluate_checkpoint  # torch, transformers, ray: after the checks

        ui = EvalUI(len(splits) * len(seed_list))
        ui.message(
            f"config: {source}; {env_name}, {cfg.env.max_steps} turns, temperature "
            f"{cfg.rollout.eval_temperature}, seeds {', '.join(map(str, seed_list))}"
        )
        reports = []
        ui.start()
        try:
            for name in splits:
                reports.append(
                    evaluate_checkpoint(
                        cfg, ref.model, split=name, seeds=seed_list, episodes=episodes, out_dir=out_dir, ui=ui
                    )
                )
        finally:
            ui.stop()
        console = Console()
        console.print(eval_table(env_name, reports, width=console.width))
        for report in reports:
            ui.message(f"wrote {report['paths']['json']} and {report['paths']['markdown']}")
