"""Log a run's config and per-iteration metrics to `RUN_DIR/metrics.jsonl` and to W&B.

W&B mode: `logging.mode=auto` is online when an API key is configured (WANDB_API_KEY or a netrc entry)
and offline otherwise; an explicit `WANDB_MODE` in the environment wins. The API key is never written to
the config, the metrics or a checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import netrc
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


def has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(configured: str) -> str:
    """online | offline | disabled, from the config value and the environment."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if configured != "auto":
        return configured
    return "online" if has_wandb_key() else "offline"


def scrub(value: Any) -> Any:
    """A copy of a nested config with any secret-looking key removed."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not any(m in str(k).lower() for m in SECRET_MARKERS)}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


class RunLogger:
    """Writes metrics.jsonl in the run folder and mirrors every record to a W&B run."""

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        *,
        project: str,
        entity: str | None,
        mode: str,
        name: str,
        tags: list[str],
        run_id: str | None = None,
        job_type: str = "train",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.mode = wandb_mode(mode)
        self.run = None
        self.run_id = run_id
        if self.mode != "disabled":
            self.run = self._start_wandb(project, entity, name, tags, job_type, config)
            self.run_id = self.run.id if self.run is not None else run_id

    def _start_wandb(
        self, project: str, entity: str | None, name: str, tags: list[str], job_type: str, config: dict[str, Any]
    ) -> Any:
        """wandb.init, resuming `self.run_id` when given; W&B trouble never stops a run (metrics.jsonl stays)."""
        import wandb

        attempts = [self.run_id, None] if self.run_id else [None]
        for run_id in attempts:
            try:
                return wandb.init(
                    project=project,
                    entity=entity,
                    name=name,
                    id=run_id,
                    resume="allow" if run_id else None,
                    mode=self.mode,
                    dir=str(self.run_dir),
                    config=scrub(config),
                    tags=list(tags),
                    job_type=job_type,
                    reinit="finish_previous",
                    settings=wandb.Settings(silent=True, console="off"),
                )
            except Exception as err:  # noqa: BLE001 - logging must not cost the run
                log.warning("W&B could not start (%s: %s)", type(err).__name__, str(err).splitlines()[0:1])
        log.warning("W&B disabled for this run; metrics are still written to %s", self.metrics_path)
        return None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        record = {"iteration": step, **{k: _plain(v) for k, v in metrics.items()}}
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.run is not None:
            self.run.log({k: v for k, v in record.items() if v is not None and k != "iteration"}, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            for key, value in values.items():
                self.run.summary[key] = _plain(value)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl (later records of a resumed iteration replace earlier ones)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    by_iteration: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_iteration[record["iteration"]] = record
    return [by_iteration[k] for k in sorted(by_iteration)]
