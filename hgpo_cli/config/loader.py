"""Load a run config: schema defaults, then a preset (a shipped name or a YAML path), then dotted overrides.

Every problem becomes a one-line `ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hgpo_cli.config.schema import Config
from hgpo_cli.config.validate import validate
from hgpo_cli.errors import ConfigError

DEFAULT_PRESET = "default"


def _presets_dir() -> Path:
    return Path(str(resources.files("hgpo_cli.config") / "presets"))


def list_presets() -> list[str]:
    """Names of the presets shipped in the package, sorted."""
    return sorted(p.stem for p in _presets_dir().glob("*.yaml"))


def preset_path(preset: str) -> Path:
    """The YAML file of a shipped preset name, or `preset` itself when it is a path to a YAML file."""
    candidate = Path(preset)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError(f"config file not found: {preset}")
        return candidate
    path = _presets_dir() / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{preset}' (available: {', '.join(list_presets())}, or a .yaml path)")
    return path


def _allowed_keys(node: DictConfig, dotted: str) -> str:
    parent = dotted.rsplit(".", 1)[0] if "." in dotted else ""
    try:
        sub = OmegaConf.select(node, parent) if parent else node
    except OmegaConfBaseException:
        sub = None
    if isinstance(sub, DictConfig):
        return ", ".join(str(k) for k in sub)
    return ", ".join(str(k) for k in node)


def _explain(err: OmegaConfBaseException, base: DictConfig, source: str) -> ConfigError:
    key = getattr(err, "full_key", None) or "?"
    name = type(err).__name__
    if "Key" in name and ("not in" in str(err) or "Missing" not in name):
        return ConfigError(f"{source}: unknown config key '{key}' (allowed here: {_allowed_keys(base, key)})")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else name
    return ConfigError(f"{source}: invalid value for '{key}': {first_line}")


def _parse_overrides(overrides: list[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. algorithm.hgpo.alpha=1)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as err:
        raise ConfigError(f"override could not be parsed: {str(err).splitlines()[0]}") from None


def load_config(preset: str | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Resolved, validated config: schema <- preset <- overrides. Raises ConfigError (one line)."""
    base = OmegaConf.structured(Config)
    path = preset_path(preset or DEFAULT_PRESET)
    try:
        preset_cfg = OmegaConf.load(path)
    except Exception as err:  # a YAML syntax error is a user mistake, not a crash
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    cfg = base
    for source, layer in ((str(path), preset_cfg), ("override", _parse_overrides(list(overrides or [])))):
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except OmegaConfBaseException as err:
            raise _explain(err, base, source) from None
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config could not be resolved: {str(err).splitlines()[0]}") from None
    validate(cfg)
    OmegaConf.set_readonly(cfg, False)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML text."""
    return OmegaConf.to_yaml(cfg, resolve=True)
