"""The end-of-run summary table."""

from __future__ import annotations

from typing import Any

from hgpo_cli.train.retention import folder_size, human_size
from hgpo_cli.ui import summary_table


def print_training_summary(summary: Any, console: Any) -> None:
    rows = [
        ("run folder", str(summary.run_dir)),
        ("iterations done", str(summary.iterations_done)),
        ("last checkpoint", str(summary.last_checkpoint) if summary.last_checkpoint else "-"),
        ("run folder size", human_size(folder_size(summary.run_dir))),
    ]
    if summary.history:
        first, last = summary.history[0], summary.history[-1]
        for key in (
            "rollout/success_rate",
            "rollout/episode_length",
            "rollout/invalid_action_rate",
            "actor/kl",
            "actor/entropy",
            "time/iteration",
            "throughput/rollout_tokens_per_s",
        ):
            if key in last:
                rows.append((key, f"{first.get(key, float('nan')):.4g} -> {last[key]:.4g}"))
    console.print(summary_table("hgpo train", rows))
    if getattr(summary, "before_after", None):
        from hgpo_cli.eval.before_after import summary_table as before_after_table

        console.print(before_after_table(summary.before_after), highlight=False)
        console.print(f"(written to {summary.run_dir}/summary.json)", highlight=False)
