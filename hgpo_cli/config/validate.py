"""Range and name checks that the type system of the structured config cannot express."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hgpo_cli.agent.projection import VALIDITY_RULES
from hgpo_cli.agent.prompts import ANSWER_FORMATS
from hgpo_cli.errors import ConfigError

NORMS = ("mean_std_norm", "mean_norm")
KL_TYPES = ("kl", "abs", "mse", "low_var_kl")
LOSS_AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")


def _one_of(*allowed: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in allowed), "one of " + ", ".join(allowed)


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v is not None and v >= low), f">= {low:g}"


def _between(low: float, high: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v is not None and low <= v <= high), f"in [{low:g}, {high:g}]"


def _greater(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v is not None and v > low), f"> {low:g}"


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "algorithm.gamma": _between(0.0, 1.0),
    "algorithm.norm": _one_of(*NORMS),
    "algorithm.eps": _greater(0.0),
    "algorithm.invalid_action_penalty": _at_least(0.0),
    "algorithm.episode_stats": _one_of("steps", "trajectories"),
    "algorithm.hgpo.history_length": _at_least(0),
    "algorithm.hgpo.alpha": _at_least(0.0),
    "algorithm.hgpo.weighting": _one_of("recipe", "paper"),
    "algorithm.ppo.gamma": _between(0.0, 1.0),
    "algorithm.ppo.lam": _between(0.0, 1.0),
    "algorithm.filter_groups.max_num_gen_batches": _at_least(1),
    "critic.lr": _at_least(0.0),
    "critic.weight_decay": _at_least(0.0),
    "critic.grad_clip": _greater(0.0),
    "critic.cliprange_value": _greater(0.0),
    "critic.warmup": _at_least(0),
    "critic.num_cpus": _at_least(0.0),
    "critic.num_gpus": _at_least(0.0),
    "env.name": _one_of("alfworld", "webshop"),
    "env.max_steps": _at_least(1),
    "env.num_workers": _at_least(1),
    "env.cpus_per_worker": _greater(0.0),
    "env.alfworld.train_split": _one_of("train", "eval_in_distribution", "eval_out_of_distribution"),
    "env.alfworld.eval_split": _one_of("train", "eval_in_distribution", "eval_out_of_distribution"),
    "env.alfworld.generated_games": _at_least(1),
    "env.webshop.train_split": _one_of("train", "validation", "test"),
    "env.webshop.eval_split": _one_of("train", "validation", "test"),
    "env.webshop.num_products": _at_least(10),
    "env.webshop.num_goals": _at_least(1),
    "env.webshop.goal_split": _one_of("verl-agent", "webshop"),
    "env.webshop.reward": _one_of("binary", "dense"),
    "env.webshop.reward_rules": _one_of("master", "v2"),
    "agent.history_length": _at_least(0),
    "agent.answer_format": _one_of(*ANSWER_FORMATS),
    "agent.validity": _one_of(*VALIDITY_RULES),
    "model.dtype": _one_of("float32", "bfloat16", "float16"),
    "model.master_dtype": _one_of("float32", "bfloat16", "float16"),
    "trainer.save_dtype": _one_of("", "float32", "bfloat16", "float16"),
    "trainer.fsdp.sync_bucket_mb": _at_least(1),
    "model.lora_rank": _at_least(0),
    "rollout.engine": _one_of("hf", "vllm"),
    "rollout.temperature": _at_least(0.0),
    "rollout.eval_temperature": _at_least(0.0),
    "rollout.top_p": _between(0.0, 1.0),
    "rollout.max_prompt_tokens": _at_least(16),
    "rollout.max_response_tokens": _at_least(1),
    "rollout.batch_size": _at_least(1),
    "rollout.prefill_chunk": _at_least(0),
    "trainer.iterations": _at_least(0),
    "trainer.train_batch_size": _at_least(1),
    "trainer.group_size": _at_least(1),
    "trainer.ppo_mini_batch_size": _at_least(1),
    "trainer.micro_batch_size": _at_least(1),
    "trainer.ppo_epochs": _at_least(1),
    "trainer.lr": _at_least(0.0),
    "trainer.weight_decay": _at_least(0.0),
    "trainer.grad_clip": _greater(0.0),
    "trainer.clip_ratio_low": _between(0.0, 1.0),
    "trainer.clip_ratio_high": _at_least(0.0),
    "trainer.clip_ratio_c": _greater(1.0),
    "trainer.kl_coef": _at_least(0.0),
    "trainer.kl_type": _one_of(*KL_TYPES),
    "trainer.entropy_coeff": _at_least(0.0),
    "trainer.loss_agg_mode": _one_of(*LOSS_AGG_MODES),
    "trainer.loss_scale": _one_of("micro", "global"),
    "trainer.pad_batch": _one_of("copy", "none"),
    "trainer.save_freq": _at_least(1),
    "trainer.keep_checkpoints": _at_least(0),
    "trainer.num_workers": _at_least(1),
    "trainer.cpus_per_worker": _at_least(0.0),
    "trainer.gpus_per_worker": _at_least(0.0),
    "trainer.torch_threads": _at_least(0),
    "rollout.num_cpus": _at_least(0.0),
    "rollout.num_gpus": _at_least(0.0),
    "trainer.device": _one_of("auto", "cpu", "cuda"),
    "rollout.share_policy": _one_of("auto", "true", "false", "True", "False"),
    "trainer.fuse_old_log_probs": _one_of("auto", "true", "false", "True", "False"),
    "trainer.old_log_probs_from_rollout": _one_of("auto", "true", "false", "True", "False"),
    "trainer.eval_episodes": _at_least(0),
    "model.sft_epochs": _at_least(0),
    "model.sft_lr": _greater(0.0),
    "model.sft_detours": _at_least(0),
    "model.sft_length_window": _at_least(0),
    "env.alfworld.generated_max_receptacles": _at_least(2),
    "env.alfworld.generated_max_objects": _at_least(1),
    "model.sft_prompt_loss": _at_least(0.0),
    "logging.mode": _one_of("auto", "online", "offline", "disabled"),
}


# environments whose envs give `walkthrough()`: ALFWorld's planner (replans from any state), WebShop's
# scripted player (from the start of an episode only)
SFT_ENVS = ("alfworld", "webshop")


def sft_config_problem(cfg: Any) -> str | None:
    """Why `hgpo sft` cannot clone walkthroughs under this config (None: it can)."""
    if cfg.env.name not in SFT_ENVS:
        return f"needs an environment with a walkthrough ({', '.join(SFT_ENVS)}), not env.name={cfg.env.name}"
    if cfg.agent.answer_format != "action":
        return (
            "replies are cloned in the action answer format (a walkthrough has no reasoning to imitate): "
            "set agent.answer_format=action"
        )
    if cfg.env.name == "webshop" and int(cfg.model.get("sft_detours", 0)) > 0:
        return "WebShop's scripted player plans from the start of an episode only: set model.sft_detours=0"
    return None


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on the first value outside its allowed range, or an unknown estimator."""
    for key, (ok, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} is not allowed (must be {allowed})")
    from hgpo_cli.train.advantages import estimator_names
    from hgpo_cli.train.gae import CRITIC_ALGORITHMS

    names = sorted([*estimator_names(), *CRITIC_ALGORITHMS])
    if cfg.algorithm.name not in names:
        raise ConfigError(f"algorithm.name={cfg.algorithm.name!r} is not a known estimator (one of {', '.join(names)})")
    if cfg.critic.micro_batch_size is not None and cfg.critic.micro_batch_size < 1:
        raise ConfigError(f"critic.micro_batch_size={cfg.critic.micro_batch_size!r} is not allowed (must be >= 1)")
    if cfg.algorithm.filter_groups.enable and cfg.trainer.group_size < 2:
        raise ConfigError(
            "algorithm.filter_groups.enable=true needs trainer.group_size >= 2 "
            "(a group of one trajectory never has differing rewards)"
        )
    if (cfg.trainer.eval_before or cfg.trainer.eval_after) and len(cfg.trainer.eval_seeds) == 0:
        raise ConfigError("trainer.eval_seeds is empty: an evaluation needs at least one seed")
    if cfg.model.sft_epochs > 0 and (problem := sft_config_problem(cfg)):
        raise ConfigError(f"model.sft_epochs > 0 (the hgpo sft warm start): {problem}")
    trainer = cfg.trainer
    per_step = trainer.micro_batch_size * trainer.num_workers
    if trainer.loss_scale == "micro" and trainer.ppo_mini_batch_size % per_step:
        raise ConfigError(
            f"trainer.ppo_mini_batch_size={trainer.ppo_mini_batch_size} must be a multiple of "
            f"trainer.micro_batch_size x trainer.num_workers = {per_step} with trainer.loss_scale=micro "
            "(as verl requires); or set trainer.loss_scale=global"
        )
    from hgpo_cli.errors import UserError
    from hgpo_cli.eval.runs import resolve_splits

    try:
        resolve_splits(cfg.env.name, cfg.trainer.eval_splits, "")
    except UserError as err:
        raise ConfigError(f"trainer.eval_splits={cfg.trainer.eval_splits!r}: {err}") from None
    if cfg.agent.prompt_template:
        from pathlib import Path

        from hgpo_cli.agent.prompt_file import load_prompt_file

        load_prompt_file(str(cfg.agent.prompt_template))  # a ConfigError naming the file and the problem
        # absolute, so that the run's saved config names the same file from any folder
        cfg.agent.prompt_template = str(Path(str(cfg.agent.prompt_template)).expanduser().resolve())
