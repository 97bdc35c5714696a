"""A run folder belongs to one config: `hgpo train` continues it only with the same settings.

RUN_DIR/config.yaml is the config of the run that made the folder's checkpoints and metrics. A new
`hgpo train` on that folder may change only the settings that do not change what the run computes
(`RESUMABLE`: how long it runs and how often it saves, logging, Ray placement, evaluation after
training); any other difference is refused with one line naming the keys, before anything is written.
config.yaml is (re)written only once the run has started (its actors are up), so a command that fails
its checks never replaces the config of a run.

A folder counts as started when it holds a complete checkpoint or a metrics.jsonl line; a config.yaml
alone (a run that failed before its first iteration) is replaced without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from hgpo_cli.errors import UserError

# Keys (exact, or a prefix ending in ".") a resumed run may change.
RESUMABLE: tuple[str, ...] = (
    "trainer.iterations",
    "trainer.resume",
    "trainer.save_freq",
    "trainer.keep_checkpoints",
    "trainer.keep_final_optimizer",
    "trainer.save_rollouts",
    "trainer.eval_after",
    "trainer.eval_episodes",
    "trainer.eval_splits",
    "trainer.output_dir",
    "trainer.experiment_name",
    "trainer.torch_threads",
    "trainer.memory_check",
    "trainer.cpus_per_worker",
    "trainer.gpus_per_worker",
    "rollout.num_cpus",
    "rollout.num_gpus",
    "critic.num_cpus",
    "critic.num_gpus",
    "rollout.eval_temperature",
    "model.trim_last_mlp",  # where the last MLP runs: same logits, gradients to rounding
    "model.trim_last_attention",  # where the last layer runs: the same
    "env.num_workers",
    "env.cpus_per_worker",
    "env.alfworld.check_timeout_s",
    "env.alfworld.eval_split",
    "env.webshop.eval_split",
    "logging.",
    "ray.",
)


def run_dir_of(cfg: DictConfig) -> Path:
    """The run folder of a config: trainer.output_dir, else runs/<trainer.experiment_name>."""
    return Path(cfg.trainer.output_dir or Path("runs") / cfg.trainer.experiment_name)


def is_resumable(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUMABLE)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys in both configs whose values differ and that a resume may not change (a key on one side
    only is a setting added to or removed from the schema since the run started: not a difference)."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) & set(b) if a[k] != b[k] and not is_resumable(k))


def run_started(run_dir: Path) -> bool:
    """A complete checkpoint or a logged iteration exists in the folder."""
    run_dir = Path(run_dir)
    if any((p / "state.json").is_file() for p in (run_dir / "checkpoints").glob("iter_*")):
        return True
    metrics = run_dir / "metrics.jsonl"
    return metrics.is_file() and metrics.stat().st_size > 0


def check_run_folder(cfg: DictConfig, run_dir: Path) -> None:
    """UserError when `run_dir` holds a started run whose config differs from `cfg` in a non-resumable key."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file() or not run_started(run_dir):
        return
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{path} is not readable YAML ({err}); move the run folder away or choose another") from None
    new = OmegaConf.to_container(cfg, resolve=True)
    env = str(cfg.env.name)
    other_envs = tuple(f"env.{name}." for name in new["env"] if isinstance(new["env"][name], dict) and name != env)
    # the settings of an environment the run does not use do not matter
    keys = [k for k in differing_keys(old, new) if not k.startswith(other_envs)]  # type: ignore[arg-type]
    if not keys:
        return
    a, b = flatten(old), flatten(new)
    shown = ", ".join(f"{k} ({a.get(k, '-')} -> {b.get(k, '-')})" for k in keys[:6])
    more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
    raise UserError(
        f"run folder {run_dir} holds a run with other settings: {shown}{more}; give the run its own folder "
        "(trainer.experiment_name=NAME or trainer.output_dir=DIR), or resume it with its own settings"
    )


def write_run_config(cfg: DictConfig, run_dir: Path) -> None:
    """RUN_DIR/config.yaml, written atomically (call once the run has started)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "config.yaml.tmp"
    tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    tmp.replace(run_dir / "config.yaml")
