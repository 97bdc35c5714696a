"""The memory planner: per-GPU memory of a run from its config and the model's config.json alone.

shapes (model shapes as facts) -> params (parameter counts) -> settings (what the plan reads of a config)
-> memory (bytes per phase and component) -> advice (the verdict and what would fit) -> report (table,
JSON); startup is the check `hgpo train` runs before it loads anything.
"""

from __future__ import annotations

from typing import Any

from hgpo_cli.plan.advice import Verdict, judge
from hgpo_cli.plan.settings import PlanSettings
from hgpo_cli.plan.shapes import resolve_shape


def plan_config(
    cfg: Any, *, gpus: int | None = None, gpu_mem_gib: float | None = None, on_gpu: bool = True
) -> tuple[Verdict, str]:
    """(verdict, where the model shape came from) for a resolved run config. A PPO critic with its own
    critic.model_path is planned with that model's shape."""
    from dataclasses import replace

    from omegaconf import OmegaConf

    shape, source = resolve_shape(str(cfg.model.path))
    settings = PlanSettings.from_config(cfg, gpus=gpus, gpu_mem_gib=gpu_mem_gib, on_gpu=on_gpu)
    critic_path = OmegaConf.select(cfg, "critic.model_path", default=None)
    if settings.critic and critic_path:
        critic_shape, critic_source = resolve_shape(str(critic_path))
        settings = replace(settings, critic_shape=critic_shape)
        source += f"; critic: {critic_source}"
    return judge(shape, settings, valid=config_accepts(cfg)), source


def config_accepts(cfg: Any) -> Any:
    """valid(overrides) for the advice search: the config with those overrides passes validation (and the
    trainer would start it: rollout.share_policy=true stays possible)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from hgpo_cli.config.validate import validate
    from hgpo_cli.errors import ConfigError, UserError

    def valid(overrides: list[str]) -> bool:
        try:
            merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
            validate(merged)
            PlanSettings.from_config(merged)
        except (ConfigError, UserError, OmegaConfBaseException):
            return False
        return True

    return valid


__all__ = ["PlanSettings", "Verdict", "judge", "plan_config", "resolve_shape"]
