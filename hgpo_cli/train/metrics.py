"""Per-iteration metrics from a rollout, its advantages and the update statistics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from hgpo_cli.train.batch import TrainSample


def episode_metrics(result: Any, prefix: str = "rollout") -> dict[str, float]:
    """Success overall and per task type, episode length, invalid-action rate, reward, failures."""
    episodes = result.episodes
    out: dict[str, float] = {}
    if not episodes:
        return out
    out[f"{prefix}/success_rate"] = float(np.mean([e.won for e in episodes]))
    out[f"{prefix}/episode_length"] = float(np.mean([e.length for e in episodes]))
    steps = sum(e.length for e in episodes)
    out[f"{prefix}/invalid_action_rate"] = sum(e.invalid_steps for e in episodes) / max(1, steps)
    # steps whose sent action is not a listed command (what agent.validity=admissible penalises)
    inadmissible = sum(getattr(e, "inadmissible_steps", 0) for e in episodes)
    out[f"{prefix}/inadmissible_action_rate"] = inadmissible / max(1, steps)
    out[f"{prefix}/reward"] = float(np.mean([e.total_reward for e in episodes]))
    out[f"{prefix}/worker_failed_episodes"] = float(sum(e.worker_failed for e in episodes))
    by_type: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        by_type[e.task_type].append(e.won)
    for task_type, wins in sorted(by_type.items()):
        out[f"{prefix}/success/{task_type}"] = float(np.mean(wins))
    return out


def iteration_metrics(
    result: Any, adv: Any, actor_stats: dict[str, float], timings: dict[str, float], samples: list[TrainSample]
) -> dict[str, Any]:
    metrics: dict[str, Any] = episode_metrics(result)
    values = adv.advantages
    metrics["advantage/mean"] = float(values.mean()) if values.size else 0.0
    metrics["advantage/std"] = float(values.std()) if values.size else 0.0
    metrics["advantage/nonzero_share"] = float((values != 0).mean()) if values.size else 0.0
    metrics["return/mean"] = float(adv.returns.mean()) if adv.returns.size else 0.0
    for level, stats in adv.levels.items():
        sizes = stats["size_hist"]
        groups = max(1, stats["groups"])
        metrics[f"groups/level{level}/num_groups"] = stats["groups"]
        metrics[f"groups/level{level}/mean_size"] = stats["steps"] / groups
        metrics[f"groups/level{level}/grouped_share"] = stats["steps_grouped"] / max(1, stats["steps"])
        metrics[f"groups/level{level}/max_size"] = max(sizes) if sizes else 0
    metrics.update(actor_stats)
    for phase, seconds in timings.items():
        metrics[f"time/{phase}"] = seconds
    metrics["time/iteration"] = sum(timings.values())
    response_tokens = sum(len(s.response_ids) for s in samples)
    all_tokens = response_tokens + sum(len(s.prompt_ids) for s in samples)
    metrics["throughput/rollout_tokens_per_s"] = response_tokens / max(1e-9, timings.get("rollout", 0.0))
    metrics["throughput/train_tokens_per_s"] = all_tokens / max(1e-9, timings.get("update", 0.0))
    metrics["batch/step_samples"] = len(samples)
    metrics["batch/response_tokens"] = response_tokens
    metrics["batch/truncated_prompts"] = result.truncated_prompts
    return metrics
