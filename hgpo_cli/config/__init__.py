"""Structured config (schema.py), presets shipped as YAML (presets/), and loading with overrides (loader.py)."""

from hgpo_cli.config.loader import list_presets, load_config, to_yaml
from hgpo_cli.config.schema import Config

__all__ = ["Config", "list_presets", "load_config", "to_yaml"]
