"""The training loop, top to bottom: draw tasks, roll out, advantages, PPO update, sync, log, save.

Ray holds the moving parts: environment workers (EnvPool), the rollout engine (one actor) and the policy
workers (one per data-parallel rank). The loop itself runs in the driver.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hgpo_cli.cluster import check_cluster, wait_for_actors
from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.envs.base import TaskSpec
from hgpo_cli.train.batch import TrainSample
from hgpo_cli.train.checkpoint import checkpoint_dir, prune_incomplete, read_state, resolve_resume, write_state
from hgpo_cli.train.failures import without_failed_trajectories
from hgpo_cli.train.gae import uses_critic
from hgpo_cli.train.metrics import iteration_metrics
from hgpo_cli.train.ppo_step import actor_trains
from hgpo_cli.train.preflight import preflight
from hgpo_cli.train.retention import has_training_state, prune_checkpoints
from hgpo_cli.train.rollout import RolloutResult, play_episodes, rollout_options
from hgpo_cli.train.run_folder import check_run_folder, run_dir_of, write_run_config
from hgpo_cli.train.step_advantages import advantages_for


@dataclass
class TrainSummary:
    run_dir: Path
    iterations_done: int
    last_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    before_after: dict[str, Any] | None = None  # RUN_DIR/summary.json (trainer.eval_before / eval_after)


def draw_tasks(tasks: list[TaskSpec], batch_size: int, seed: int, iteration: int, attempt: int = 0) -> list[TaskSpec]:
    """The tasks of one iteration: a seeded draw without replacement (with, if the split is smaller).
    attempt > 0: the further draws of dynamic sampling (algorithm.filter_groups)."""
    rng = np.random.default_rng([seed, iteration] if attempt == 0 else [seed, iteration, attempt])
    replace = batch_size > len(tasks)
    return [tasks[i] for i in rng.choice(len(tasks), size=batch_size, replace=replace)]


def train_samples(result: RolloutResult, advantages: np.ndarray) -> list[TrainSample]:
    return [
        TrainSample(
            prompt_ids=r.extra["prompt_ids"],
            response_ids=r.extra["response_ids"],
            advantage=float(a),
        )
        for r, a in zip(result.records, advantages, strict=True)
    ]


def save_rollouts(run_dir: Path, iteration: int, result: RolloutResult, adv: Any) -> None:
    """RUN_DIR/rollouts/iter_XXXXXX.jsonl: the step records (without token ids) with their advantages."""
    folder = run_dir / "rollouts"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"iter_{iteration:06d}.jsonl").open("w") as handle:
        for record, a, ret in zip(result.records, adv.advantages, adv.returns, strict=True):
            row = record.to_dict()
            row["extra"] = {
                "advantage": float(a),
                "step_return": float(ret),
                "worker_failed": record.extra.get("worker_failed", False),
            }
            handle.write(json.dumps(row) + "\n")


class Trainer:
    """Builds the Ray actors for a config and runs iterations. `train()` is the whole job."""

    def __init__(self, cfg: DictConfig, ui: Any = None) -> None:
        from hgpo_cli.distributed import init_ray, resolve_device
        from hgpo_cli.envs.pool import EnvPool
        from hgpo_cli.envs.registry import get_suite
        from hgpo_cli.models.loading import load_tokenizer
        from hgpo_cli.plan.startup import check_training, record_plan
        from hgpo_cli.train.warm_start import starting_policy

        self.cfg = cfg
        self.ui = ui
        self.resumed_from: Path | None = None
        self.run_dir = run_dir_of(cfg)
        # nothing is written into the run folder before the run has started (see train/run_folder.py)
        preflight(cfg)
        check_run_folder(cfg, self.run_dir)
        trainer = cfg.trainer
        from hgpo_cli.train.fast_paths import fuse_mode, rollout_old_log_probs, shares_policy

        # the shortcuts of one machine (train/fast_paths.py): the engine in the policy worker, the old
        # log-probs of a one-step update taken from its own forward passes, else those the rollout recorded
        self.shared_policy = shares_policy(cfg)
        self.fuse_mode = fuse_mode(cfg)
        self.old_from_rollout = rollout_old_log_probs(cfg)
        needed = cfg.env.num_workers * cfg.env.cpus_per_worker + (0 if self.shared_policy else cfg.rollout.num_cpus)
        needed += trainer.num_workers * trainer.cpus_per_worker
        needed += cfg.critic.num_cpus if uses_critic(cfg.algorithm.name) else 0
        init_ray(cfg.ray.address, cfg.ray.num_cpus, min_cpus=needed)
        self.device = resolve_device(trainer.device)
        # the memory plan (`hgpo plan`): a GPU run that does not fit stops here, before anything is loaded
        self.memory_plan = check_training(cfg, self.device)
        self.needs = check_cluster(cfg, self.device)
        self.suite = get_suite(cfg.env.name)
        split = cfg.env[cfg.env.name].train_split
        self.tasks = self.suite.list_tasks(cfg, split)
        # the training reward: a suite's `training_reward(cfg)` (WebShop: binary or dense), else REWARD_SCALE x r
        self.reward_scale = (
            self.suite.training_reward(cfg)
            if hasattr(self.suite, "training_reward")
            else float(getattr(self.suite, "REWARD_SCALE", 1.0))
        )
        self._say(f"{len(self.tasks)} {cfg.env.name} tasks in split '{split}'; device {self.device}")
        self.model_path = starting_policy(cfg, self._say)  # model.path, or its cached hgpo sft warm start
        self.tokenizer = load_tokenizer(self.model_path)
        self.pool = EnvPool(cfg)
        self._start_actors()
        wait_for_actors([self.rollout, *self.pool.workers], "the engine and environment workers", self.needs)
        write_run_config(cfg, self.run_dir)
        record_plan(cfg, self.device, self.run_dir)  # RUN_DIR/plan.json

    def _say(self, message: str) -> None:
        if self.ui is not None:
            self.ui.message(message)

    def _phase(self, name: str, detail: str = "") -> None:
        """Tell the UI which phase of the iteration runs now (rollout is reported step by step)."""
        if self.ui is not None and hasattr(self.ui, "phase"):
            self.ui.phase(name, detail)

    def _start_actors(self) -> None:
        from hgpo_cli.engines.worker import engine_settings, make_rollout_actor
        from hgpo_cli.train.policy_worker import make_policy_workers

        cfg, gpu = self.cfg, self.device == "cuda"
        trainer_dict = OmegaConf.to_container(cfg.trainer, resolve=True)
        trainer_dict["device"] = self.device
        model_dict = OmegaConf.to_container(cfg.model, resolve=True)
        self.workers = make_policy_workers(
            self.model_path,
            model_dict,
            trainer_dict,
            num_workers=cfg.trainer.num_workers,
            num_cpus=cfg.trainer.cpus_per_worker,
            num_gpus=cfg.trainer.gpus_per_worker if gpu else 0,
            torch_threads=cfg.trainer.torch_threads,
            temperature=cfg.rollout.temperature,
        )
        self.critic = None
        if uses_critic(cfg.algorithm.name):  # ppo: the value model, from the policy's base model (as verl)
            from hgpo_cli.models.loading import resolve_model_path
            from hgpo_cli.train.critic_worker import make_critic_worker

            self.critic = make_critic_worker(
                resolve_model_path(cfg.critic.model_path) if cfg.critic.model_path else self.model_path,
                self.model_path,
                OmegaConf.to_container(cfg.critic, resolve=True),
                trainer_dict,
                model_dict,
                num_cpus=cfg.critic.num_cpus,
                num_gpus=cfg.critic.num_gpus if gpu else 0,
                torch_threads=cfg.trainer.torch_threads,
            )
        import ray

        if self.fuse_mode != "false" and not ray.get(self.workers[0].dropout_free.remote()):
            if self.fuse_mode == "true":
                from hgpo_cli.errors import UserError

                raise UserError("trainer.fuse_old_log_probs=true: the policy has active dropout (train != eval)")
            self.fuse_mode = "false"
        if self.shared_policy:  # rank 0 samples with its own module: no engine actor, no weight copy
            ray.get(
                self.workers[0].start_engine.remote(
                    int(cfg.rollout.batch_size),
                    bool(cfg.rollout.get("dedup_prefill", False)),
                    int(cfg.rollout.get("prefill_chunk", 0)),
                )
            )
            self.rollout = self.workers[0]
            return
        engine_kwargs = engine_settings(cfg, self.device)
        self.rollout = make_rollout_actor(
            self.model_path,
            engine_kwargs,
            num_cpus=cfg.rollout.num_cpus,
            num_gpus=cfg.rollout.num_gpus if gpu else 0,
            torch_threads=cfg.trainer.torch_threads,
        )

    # ---- pieces of one iteration ---------------------------------------------------------------------
    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Any]:
        import ray

        return ray.get(self.rollout.generate.remote(prompts, settings))

    def rollout_once(
        self,
        tasks: list[TaskSpec],
        group_ids: list[str],
        temperature: float,
        seed: int,
        group_size: int,
        on_step: Any = None,
    ) -> RolloutResult:
        cfg = self.cfg
        return play_episodes(
            tasks,
            group_ids,
            group_size=group_size,
            pool=self.pool,
            generate=self.generate,
            tokenizer=self.tokenizer,
            **rollout_options(cfg, self.suite.PROMPT),
            sampling=SamplingSettings(
                temperature=temperature,
                top_p=cfg.rollout.top_p,
                max_new_tokens=cfg.rollout.max_response_tokens,
                seed=seed,
            ),
            on_step=on_step,
        )

    def rollout_batch(self, it: int, on_step: Any = None) -> tuple[RolloutResult, dict[str, float]]:
        """The iteration's rollout: train_batch_size task groups; with algorithm.filter_groups.enable,
        verl-agent's dynamic sampling (hgpo_cli.train.group_filter): more tries until the batch is full."""
        cfg = self.cfg
        size, group = cfg.trainer.train_batch_size, cfg.trainer.group_size
        seed = cfg.trainer.seed * 100_003 + it
        if not cfg.algorithm.filter_groups.enable:
            tasks = draw_tasks(self.tasks, size, cfg.trainer.seed, it)
            group_ids = [f"it{it}-g{i}-{t.task_id}" for i, t in enumerate(tasks)]
            return self.rollout_once(tasks, group_ids, cfg.rollout.temperature, seed, group, on_step), {}
        from hgpo_cli.train.group_filter import GroupFilter

        groups = GroupFilter(size, group, int(cfg.algorithm.filter_groups.max_num_gen_batches), self.reward_scale)
        while not groups.done:
            attempt = groups.log.tries
            if attempt:
                self._phase(
                    "rollout",
                    f"dynamic sampling try {attempt + 1}/{groups.max_tries}: "
                    f"{groups.kept_trajectories} of {groups.target_trajectories} trajectories kept so far",
                )
            tasks = draw_tasks(self.tasks, size, cfg.trainer.seed, it, attempt)
            tag = f"it{it}" if attempt == 0 else f"it{it}-try{attempt}"
            group_ids = [f"{tag}-g{i}-{t.task_id}" for i, t in enumerate(tasks)]
            result = self.rollout_once(tasks, group_ids, cfg.rollout.temperature, seed + 7919 * attempt, group, on_step)
            groups.add(result)
        return groups.batch(), groups.log.metrics()

    def fuses_old_log_probs(self, samples: list[TrainSample]) -> bool:
        """Whether the update takes the old log-probs from its own forward passes (one optimizer step)."""
        from hgpo_cli.train.fast_paths import one_step_update

        trainer = OmegaConf.to_container(self.cfg.trainer, resolve=True)
        return self.fuse_mode != "false" and one_step_update(samples, trainer, int(self.cfg.trainer.num_workers))

    def attach_log_probs(self, samples: list[TrainSample], rollout_log_probs: list[list[float]]) -> str:
        """Old and reference log-probs of `samples`; returns where the old ones come from:

        - 'fused': left None, the one-step update takes them from its own forward passes;
        - 'rollout': `rollout_log_probs` (one (R,) list per sample: what the shared module recorded while
          sampling these tokens; trainer.old_log_probs_from_rollout);
        - 'recomputed': a separate pass of the policy workers on the exact sampled tokens.
        The reference log-probs are always a pass of the workers (when the KL loss needs them)."""
        import ray

        from hgpo_cli.train.sharding import interleave_shares

        if self.fuses_old_log_probs(samples):
            source = "fused"
        elif self.old_from_rollout:
            source = "rollout"
            for sample, recorded in zip(samples, rollout_log_probs, strict=True):
                if len(recorded) != len(sample.response_ids):
                    raise RuntimeError("the rollout recorded a log-prob per sampled token; these lengths differ")
                sample.old_log_probs = list(recorded)
        else:
            source = "recomputed"
        want_old = source == "recomputed"
        if not want_old and not self._has_reference():
            return source  # neither pass is needed
        ref = ray.put(samples)  # each rank computes samples[rank::num_workers]
        with self._micro_progress("log-probs") as sink:
            refs = [w.log_probs.remote(ref, want_old, sink) for w in self.workers]
            results = interleave_shares(self._await(refs, sink, "log-probs"))
        for sample, lp in zip(samples, results, strict=True):
            if want_old:
                sample.old_log_probs = lp["old"]
            sample.ref_log_probs = lp["ref"]
        return source

    @contextlib.contextmanager
    def _micro_progress(self, phase: str) -> Any:
        """The Ray queue the rank-0 worker reports its micro-batch passes into while a UI shows them (None
        without a UI: no queue actor is started). One queue per run, emptied before each phase."""
        if self.ui is None or not hasattr(self.ui, "phase_progress"):
            yield None
            return
        if getattr(self, "_progress_sink", None) is None:
            from ray.util.queue import Queue

            self._progress_sink = Queue(actor_options={"num_cpus": 0})
        sink = self._progress_sink
        if sink.qsize():
            sink.get_nowait_batch(sink.qsize())
        yield sink

    def _await(self, refs: list[Any], sink: Any, phase: str) -> list[Any]:
        """`ray.get(refs)`, showing the newest (done, total) micro-batch count the sink holds meanwhile."""
        import ray

        if sink is None:
            return ray.get(refs)
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            counts = sink.get_nowait_batch(sink.qsize()) if sink.qsize() else []
            if counts:
                self.ui.phase_progress(phase, *counts[-1])
        return ray.get(refs)

    def _has_reference(self) -> bool:
        return bool(self.cfg.trainer.use_kl_loss) and float(self.cfg.trainer.kl_coef) > 0

    def update(self, samples: list[TrainSample], seed: int) -> dict[str, float]:
        import ray

        ref = ray.put(samples)
        with self._micro_progress("update") as sink:
            stats = self._await([w.update.remote(ref, seed, sink) for w in self.workers], sink, "update")
        return stats[0]

    def sync_weights(self) -> None:
        """The rollout engine gets the policy's new weights, gathered from the shards bucket by bucket
        (nothing to do when it samples with the policy module itself)."""
        from hgpo_cli.train.weight_sync import sync_in_buckets

        if self.shared_policy:
            return
        sync_in_buckets(self.workers, self.rollout)

    def save(self, iteration: int, run_id: str | None, history_tail: dict[str, Any]) -> Path:
        import ray

        folder = checkpoint_dir(self.run_dir, iteration)
        ray.get([w.save.remote(str(folder)) for w in self.workers])
        if self.critic is not None:
            ray.get(self.critic.save.remote(str(folder)))  # FOLDER/critic/
        write_state(
            folder,
            {
                "iteration": iteration,
                "wandb_run_id": run_id,
                "metrics": history_tail,
                "algorithm": self.cfg.algorithm.name,
            },
        )
        trainer = self.cfg.trainer
        prune_checkpoints(
            self.run_dir,
            int(trainer.keep_checkpoints),
            finished=iteration >= int(trainer.iterations),
            keep_final_optimizer=bool(trainer.keep_final_optimizer),
        )
        return folder

    def restore(self) -> tuple[int, str | None]:
        """Load the checkpoint that trainer.resume names; returns (iterations done, W&B run id)."""
        import ray

        prune_incomplete(self.run_dir)
        folder = resolve_resume(self.run_dir, self.cfg.trainer.resume)
        if folder is None:
            return 0, None
        ray.get([w.load.remote(str(folder)) for w in self.workers])
        if self.critic is not None:
            from hgpo_cli.errors import UserError
            from hgpo_cli.train.critic_worker import CRITIC_DIR

            if (folder / CRITIC_DIR).is_dir():
                ray.get(self.critic.load.remote(str(folder)))
            elif has_training_state(folder):  # trained without a critic (another algorithm.name)
                raise UserError(f"checkpoint {folder} has no critic/ to resume algorithm.name=ppo from")
            else:  # an older checkpoint, stripped of its training state
                self._say("that checkpoint kept no critic/: the critic starts again from the base model")
        self.sync_weights()
        state = read_state(folder)
        self.resumed_from = folder
        self._say(f"resumed from {folder} (iteration {state['iteration']})")
        if not has_training_state(folder) and int(state["iteration"]) < int(self.cfg.trainer.iterations):
            self._say("that checkpoint ended a finished run and kept no optimizer state: Adam restarts from zero")
        return int(state["iteration"]), state.get("wandb_run_id")

    # ---- one iteration -------------------------------------------------------------------------------
    def iteration(self, it: int, on_step: Any = None) -> tuple[dict[str, Any], RolloutResult, Any]:
        cfg = self.cfg
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        result, filter_metrics = self.rollout_batch(it, on_step)
        timings["rollout"] = time.perf_counter() - clock
        # steps of trajectories a failed env worker cut short: neither trained on nor in any group statistic
        result, dropped_steps = without_failed_trajectories(result)

        clock = time.perf_counter()
        algorithm = OmegaConf.to_container(cfg.algorithm, resolve=True)
        adv = advantages_for(result.records, algorithm, self.reward_scale)
        timings["advantages"] = time.perf_counter() - clock

        samples = train_samples(result, adv.advantages)
        self._phase("log-probs", f"{len(samples)} step samples")
        clock = time.perf_counter()
        old_source = self.attach_log_probs(samples, [r.extra["rollout_log_probs"] for r in result.records])
        timings["log_probs"] = time.perf_counter() - clock

        critic_stats: dict[str, float] = {}
        if self.critic is not None:  # ppo: values, per-token GAE advantages, critic update (verl's order)
            from hgpo_cli.train.ppo_step import attach_gae, critic_update, critic_values

            self._phase("critic", f"values and update on {len(samples)} step samples")
            clock = time.perf_counter()
            values = critic_values(self.critic, samples)
            timings["values"] = time.perf_counter() - clock
            returns, critic_stats = attach_gae(samples, values, cfg.algorithm.ppo.gamma, cfg.algorithm.ppo.lam)
            if len(samples) == adv.advantages.size:  # the saved rollouts show each step's mean token advantage
                adv.advantages = np.array([s.advantage for s in samples])
            clock = time.perf_counter()
            critic_stats.update(critic_update(self.critic, samples, values, returns))
            timings["critic_update"] = time.perf_counter() - clock

        actor_stats: dict[str, float] = {}
        if self.critic is None or actor_trains(it + 1, int(cfg.critic.warmup)):
            self._phase("update", f"{len(samples)} step samples, {cfg.trainer.ppo_epochs} epoch(s)")
            clock = time.perf_counter()
            actor_stats = self.update(samples, seed=cfg.trainer.seed * 100_003 + it)
            timings["update"] = time.perf_counter() - clock

        self._phase("weight sync", "policy -> rollout engine")
        clock = time.perf_counter()
        self.sync_weights()
        timings["weight_sync"] = time.perf_counter() - clock
        metrics = iteration_metrics(result, adv, actor_stats, timings, samples)
        metrics.update(critic_stats)
        metrics.update(filter_metrics)
        metrics["rollout/worker_failures_total"] = self.pool.failed_episodes
        metrics["batch/worker_failed_steps_dropped"] = dropped_steps
        metrics["batch/fused_old_log_probs"] = float(old_source == "fused")
        metrics["batch/rollout_old_log_probs"] = float(old_source == "rollout")
        metrics["batch/shared_policy"] = float(self.shared_policy)
        return metrics, result, adv

    def close(self) -> None:
        """Stop the environment pool and the engine and policy actors (Ray itself stays up)."""
        import contextlib

        import ray

        with contextlib.suppress(Exception):
            self.pool.close()
        if getattr(self, "_progress_sink", None) is not None:
            with contextlib.suppress(Exception):
                self._progress_sink.shutdown()
        for actor in [self.rollout, *self.workers, *([self.critic] if getattr(self, "critic", None) else [])]:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        from hgpo_cli.train.placement import release_actors

        release_actors(self.workers)  # and the placement group that reserved their resources


def train(cfg: DictConfig, ui: Any = None) -> TrainSummary:
    """The whole job: resume if asked, run the remaining iterations, checkpoint, log, summarise.

    Ctrl-C finishes the step in flight, saves a checkpoint of the last completed iteration and returns.
    """
    from hgpo_cli.tracking.run_logger import RunLogger

    trainer = Trainer(cfg, ui)
    history: list[dict[str, Any]] = []
    try:
        done, run_id = trainer.restore()
    except BaseException:
        trainer.close()  # a checkpoint that cannot be resumed leaves no actors behind
        raise
    logger = RunLogger(
        trainer.run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        project=cfg.logging.project,
        entity=cfg.logging.entity,
        mode=cfg.logging.mode,
        name=cfg.trainer.experiment_name,
        tags=list(cfg.logging.tags),
        run_id=run_id,
    )
    last_ckpt = None
    total = cfg.trainer.iterations
    interrupted = False
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    try:
        if cfg.trainer.eval_before:
            from hgpo_cli.eval.before_after import evaluate_start

            before = evaluate_start(cfg, trainer, done, ui, logger)  # the starting policy, same games and seeds
        if ui is not None:
            ui.start_training(total, done, cfg.env.max_steps)
        for it in range(done, total):
            on_step = ui.rollout_step if ui is not None else None
            if ui is not None:
                ui.start_iteration(it + 1)
            metrics, result, adv = trainer.iteration(it, on_step)
            done = it + 1
            logger.log(metrics, step=done)
            history.append({"iteration": done, **metrics})
            if cfg.trainer.save_rollouts:
                save_rollouts(trainer.run_dir, done, result, adv)
            if done % cfg.trainer.save_freq == 0 or done == total:
                last_ckpt = trainer.save(done, logger.run_id, _headline(metrics))
            if ui is not None:
                ui.end_iteration(done, metrics)
        if cfg.trainer.eval_after and last_ckpt is not None:
            from hgpo_cli.eval.before_after import evaluate_end

            # the trainer's engine holds the final weights: evaluated into the training run itself, so a
            # sweep's run carries its own final numbers
            after = evaluate_end(cfg, trainer, last_ckpt, ui, logger)
    except KeyboardInterrupt:
        interrupted = True
        after = {}
        if done > 0 and (last_ckpt is None or read_state(last_ckpt)["iteration"] != done):
            last_ckpt = trainer.save(done, logger.run_id, _headline(history[-1]) if history else {})
        if ui is not None and last_ckpt is not None:
            ui.message(f"interrupted: iteration {done} is saved in {last_ckpt}; `hgpo train` again resumes it")
        elif ui is not None:
            ui.message("interrupted before the first iteration finished: nothing to save")
    finally:
        if ui is not None:
            ui.stop()
        trainer.close()
        logger.summary({"iterations_done": done})
        logger.finish()
    summary = None
    if (before or after) and not interrupted:
        from hgpo_cli.eval.before_after import before_after, write_summary

        split = next(iter(after or before))  # the first evaluation split (ALFWorld: in-distribution)
        summary = before_after(before.get(split), after.get(split), done)
        write_summary(trainer.run_dir, summary)
    # a resumed run that had nothing left to do still names the checkpoint it holds
    return TrainSummary(trainer.run_dir, done, last_ckpt or trainer.resumed_from, history, interrupted, summary)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "rollout/success_rate",
        "rollout/episode_length",
        "rollout/invalid_action_rate",
        "actor/kl",
        "actor/pg_loss",
        "time/iteration",
    )
    return {k: metrics[k] for k in keys if k in metrics}
