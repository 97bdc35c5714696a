"""`hgpo config show|list`: print a resolved config or the shipped presets."""

from __future__ import annotations

import typer

from hgpo_cli.commands.common import PRESET_HELP, split_preset_and_overrides


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Show resolved configs and the shipped presets.", no_args_is_help=True)

    @config_app.command("show")
    def show(
        args: list[str] = typer.Argument(None, help=f"[PRESET] then key=value overrides. {PRESET_HELP}"),
    ) -> None:
        """Print the resolved config (YAML) of a preset with overrides applied."""
        from hgpo_cli.config import load_config, to_yaml

        preset, overrides = split_preset_and_overrides(args or [])
        typer.echo(to_yaml(load_config(preset, overrides)), nl=False)

    @config_app.command("list")
    def list_() -> None:
        """List the presets shipped in the package."""
        from hgpo_cli.config import list_presets

        for name in list_presets():
            typer.echo(name)

    app.add_typer(config_app, name="config")
