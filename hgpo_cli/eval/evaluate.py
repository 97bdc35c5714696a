"""`hgpo eval`: play every task of a split once per seed with the policy at evaluation temperature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.eval.summary import across_seeds, markdown_table, seed_summary
from hgpo_cli.train.rollout import play_episodes, rollout_options

DEFAULT_SEEDS = (123, 456, 789)


def spread_over_task_types(tasks: list[Any], n: int) -> list[Any]:
    """The first `n` tasks taken in turn from each task type (in order of first appearance), so that a
    short evaluation covers every type; the split's own order within a type is kept."""
    by_type: dict[str, list[Any]] = {}
    for task in tasks:
        by_type.setdefault(task.task_type, []).append(task)
    chosen: list[Any] = []
    for rank in range(max((len(v) for v in by_type.values()), default=0)):
        chosen += [group[rank] for group in by_type.values() if rank < len(group)]
    return chosen[:n]


def eval_tasks(cfg: DictConfig, suite: Any, split: str, episodes: int | None) -> list[Any]:
    """The tasks an evaluation plays: the whole split, or its first `episodes` spread over task types."""
    tasks = suite.list_tasks(cfg, split)
    return spread_over_task_types(tasks, episodes) if episodes else tasks


def evaluate_with(
    cfg: DictConfig,
    generate: Any,
    pool: Any,
    tokenizer: Any,
    *,
    label: str,
    split: str,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    episodes: int | None = None,
    out_dir: str | Path,
    ui: Any = None,
    logger: Any = None,
) -> dict[str, Any]:
    """Evaluate the policy behind a running engine (`generate(prompts, settings)`) with an existing
    environment pool, e.g. a trainer's own before its first update; the same games, seeds and report
    as `evaluate_checkpoint`. `label` names the policy in the report."""
    from hgpo_cli.envs.registry import get_suite

    suite = get_suite(cfg.env.name)
    tasks = eval_tasks(cfg, suite, split, episodes)
    per_seed, episodes_of = play_seeds(
        cfg, tasks, seeds, generate, pool, tokenizer, suite, split=split, label=label, ui=ui
    )
    return write_report(cfg, label, split, seeds, tasks, per_seed, episodes_of, out_dir, logger)


def evaluate_checkpoint(
    cfg: DictConfig,
    checkpoint: str | Path,
    *,
    split: str | None = None,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    episodes: int | None = None,
    out_dir: str | Path | None = None,
    ui: Any = None,
    logger: Any = None,
) -> dict[str, Any]:
    """Evaluate an HF-format policy folder; writes eval-<env>-<split>.json/.md into `out_dir`.

    The numbers go to W&B: into `logger`'s run when given (a training run evaluating itself), else
    into a new run of job type "eval".

    Returns {"env", "split", "seeds", "per_seed": {seed: {column: %}}, "stats": {column: {mean, std...}}}.
    """
    import ray

    from hgpo_cli.cluster import check_cluster, wait_for_actors
    from hgpo_cli.distributed import init_ray, resolve_device
    from hgpo_cli.engines.worker import engine_settings, make_rollout_actor
    from hgpo_cli.envs.pool import EnvPool
    from hgpo_cli.envs.registry import get_suite
    from hgpo_cli.models.loading import load_tokenizer, resolve_model_path

    env = cfg.env.name
    split = split or cfg.env[env].eval_split
    model_path = resolve_model_path(str(checkpoint))
    init_ray(
        cfg.ray.address, cfg.ray.num_cpus, min_cpus=cfg.env.num_workers * cfg.env.cpus_per_worker + cfg.rollout.num_cpus
    )
    device = resolve_device(cfg.trainer.device)
    needs = check_cluster(cfg, device, training=False)  # a cluster too small: one line, not a frozen bar
    suite = get_suite(env)
    tasks = eval_tasks(cfg, suite, split, episodes)
    tokenizer = load_tokenizer(model_path)
    engine_kwargs = engine_settings(cfg, device)
    engine = make_rollout_actor(
        model_path,
        engine_kwargs,
        num_cpus=cfg.rollout.num_cpus,
        num_gpus=cfg.rollout.num_gpus if device == "cuda" else 0,
        torch_threads=cfg.trainer.torch_threads,
    )
    pool = EnvPool(cfg)
    wait_for_actors([engine, *pool.workers], "the engine and environment workers", needs)
    try:
        per_seed, episodes_of = play_seeds(
            cfg,
            tasks,
            seeds,
            lambda prompts, settings: ray.get(engine.generate.remote(prompts, settings)),
            pool,
            tokenizer,
            suite,
            split=split,
            label=model_path,
            ui=ui,
        )
    finally:
        pool.close()
        ray.kill(engine)
    return write_report(cfg, checkpoint, split, seeds, tasks, per_seed, episodes_of, out_dir, logger)


def play_seeds(
    cfg: DictConfig,
    tasks: list[Any],
    seeds: tuple[int, ...],
    generate: Any,
    pool: Any,
    tokenizer: Any,
    suite: Any,
    *,
    split: str,
    label: str,
    ui: Any = None,
) -> tuple[dict[int, dict[str, float]], dict[int, list[dict[str, Any]]]]:
    """Play every task once per seed at the evaluation temperature with `generate(prompts, settings)`.

    Returns ({seed: seed_summary}, {seed: one row per episode}).
    """
    per_seed: dict[int, dict[str, float]] = {}
    episodes_of: dict[int, list[dict[str, Any]]] = {}
    env = cfg.env.name
    for seed in seeds:
        if ui is not None:
            ui.message(f"evaluating {label} on {env}/{split}: {len(tasks)} tasks, seed {seed}")
        if hasattr(ui, "start_seed"):
            ui.start_seed(seed, split, len(tasks), cfg.env.max_steps)
        result = play_episodes(
            tasks,
            [f"eval-{seed}-{i}-{t.task_id}" for i, t in enumerate(tasks)],
            group_size=1,
            pool=pool,
            generate=generate,
            tokenizer=tokenizer,
            **rollout_options(cfg, suite.PROMPT),
            sampling=SamplingSettings(
                temperature=cfg.rollout.eval_temperature,
                top_p=cfg.rollout.top_p,
                max_new_tokens=cfg.rollout.max_response_tokens,
                seed=seed,
            ),
            on_step=ui.rollout_step if hasattr(ui, "start_seed") else None,
        )
        rows = [
            {
                "task_id": e.task_id,
                "task_type": e.task_type,
                "won": e.won,
                "reward": e.total_reward,
                "length": e.length,
                "invalid_steps": e.invalid_steps,
            }
            for e in result.episodes
        ]
        episodes_of[seed] = rows
        per_seed[seed] = seed_summary(rows)
    return per_seed, episodes_of


def write_report(
    cfg: DictConfig,
    checkpoint: str | Path,
    split: str,
    seeds: tuple[int, ...],
    tasks: list[Any],
    per_seed: dict[int, dict[str, float]],
    episodes_of: dict[int, list[dict[str, Any]]],
    out_dir: str | Path | None,
    logger: Any,
) -> dict[str, Any]:
    """The evaluation report: eval-<env>-<split>.json/.md in `out_dir` (default: the checkpoint), W&B."""
    from hgpo_cli.tracking.run_logger import RunLogger

    env = cfg.env.name
    stats = across_seeds(per_seed)
    report = {
        "checkpoint": str(checkpoint),
        "env": env,
        "split": split,
        "seeds": list(seeds),
        "tasks": len(tasks),
        "per_seed": per_seed,
        "stats": stats,
        "episodes": episodes_of,
    }
    target = Path(out_dir) if out_dir else Path(checkpoint)
    target.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{env}-{split}"
    (target / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (target / f"{stem}.md").write_text(markdown_table(env, split, stats, list(seeds)))
    own_logger = logger is None
    if own_logger:
        logger = RunLogger(
            target,
            {"checkpoint": str(checkpoint), "split": split, "seeds": list(seeds)},
            project=cfg.logging.project,
            entity=cfg.logging.entity,
            mode=cfg.logging.mode,
            name=f"eval-{cfg.trainer.experiment_name}",
            tags=["eval"],
            job_type="eval",
        )
    logger.summary({f"eval/{split}/{c}/{k}": v for c, s in stats.items() for k, v in s.items() if k in ("mean", "std")})
    if own_logger:
        logger.finish()
    report["paths"] = {"json": str(target / f"{stem}.json"), "markdown": str(target / f"{stem}.md")}
    return report
