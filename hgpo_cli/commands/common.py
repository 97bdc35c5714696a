"""Argument handling shared by the commands."""

from __future__ import annotations

PRESET_HELP = "PRESET is a shipped preset name (hgpo config list) or a YAML path; default: the embedded CPU run."


def split_preset_and_overrides(args: list[str]) -> tuple[str | None, list[str]]:
    """Split `[PRESET] key=value ...`: the first argument is a preset when it has no '='."""
    if args and "=" not in args[0]:
        return args[0], list(args[1:])
    return None, list(args)
