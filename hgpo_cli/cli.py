"""The `hgpo` command. Subcommands live in `hgpo_cli.commands`, one module each, and import heavy
libraries (torch, ray, vllm, transformers, alfworld) only inside the functions that need them."""

from __future__ import annotations

import importlib
import sys

import typer

# Each module defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES = [
    "hgpo_cli.commands.config_cmd",
    "hgpo_cli.commands.train_cmd",
    "hgpo_cli.commands.plan_cmd",
    "hgpo_cli.commands.sft_cmd",
    "hgpo_cli.commands.eval_cmd",
    "hgpo_cli.commands.ablate_cmd",
    "hgpo_cli.commands.compare_cmd",
    "hgpo_cli.commands.analyze_cmd",
    "hgpo_cli.commands.envs_cmd",
    "hgpo_cli.commands.data_cmd",
]

app = typer.Typer(
    name="hgpo",
    help="Train and evaluate LLM agents on long-horizon text tasks with HGPO and its baselines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point: run the CLI; a user mistake prints one line on stderr and exits 2."""
    from hgpo_cli.ray_errors import user_error_in

    try:
        app()
    except KeyboardInterrupt:
        print("hgpo: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a UserError, also one raised inside a Ray actor: one line; a bug: traceback
        err = user_error_in(exc)
        if err is None:
            raise
        print(f"hgpo: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
