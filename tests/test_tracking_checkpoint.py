"""The run's own logging layer (metrics.jsonl, W&B mode, no secrets) and checkpoint bookkeeping."""

from __future__ import annotations

import json

import pytest

from hgpo_cli.errors import UserError
from hgpo_cli.tracking.run_logger import RunLogger, read_metrics, scrub, wandb_mode
from hgpo_cli.train.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    prune_incomplete,
    resolve_resume,
    write_state,
)


def test_wandb_mode_follows_key_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("online") == "offline"


def test_scrub_removes_secret_keys():
    cfg = {"logging": {"project": "p", "api_key": "s3cret"}, "model": {"path": "m", "hf_token": "t"}, "x": [1]}
    assert scrub(cfg) == {"logging": {"project": "p"}, "model": {"path": "m"}, "x": [1]}


def test_offline_run_logs_metrics_and_never_writes_the_key(monkeypatch, tmp_path):
    secret = "a1b2c3d4e5f6a7b8c9d0" * 2
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = RunLogger(
        tmp_path,
        {"trainer": {"lr": 1e-6}, "logging": {"api_key": secret}},
        project="hgpo-test",
        entity=None,
        mode="auto",
        name="t",
        tags=["test"],
    )
    assert logger.mode == "offline" and logger.run is not None
    logger.log({"rollout/success_rate": 0.25, "actor/kl": float("nan")}, step=1)
    logger.log({"rollout/success_rate": 0.5}, step=2)
    logger.log({"rollout/success_rate": 0.75}, step=2)  # a resumed iteration replaces the earlier record
    run_id = logger.run_id
    logger.finish()
    records = read_metrics(tmp_path)
    assert [(r["iteration"], r["rollout/success_rate"]) for r in records] == [(1, 0.25), (2, 0.75)]
    assert records[0]["actor/kl"] is None
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_latest_checkpoint_ignores_incomplete_folders(tmp_path):
    for it in (1, 2, 3):
        checkpoint_dir(tmp_path, it).mkdir(parents=True)
    write_state(checkpoint_dir(tmp_path, 1), {"iteration": 1})
    write_state(checkpoint_dir(tmp_path, 2), {"iteration": 2})
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 2)
    assert resolve_resume(tmp_path, "auto") == checkpoint_dir(tmp_path, 2)
    assert resolve_resume(tmp_path, "never") is None
    assert resolve_resume(tmp_path, str(checkpoint_dir(tmp_path, 1))) == checkpoint_dir(tmp_path, 1)
    with pytest.raises(UserError, match="no state.json"):
        resolve_resume(tmp_path, str(checkpoint_dir(tmp_path, 3)))
    prune_incomplete(tmp_path)
    assert not checkpoint_dir(tmp_path, 3).exists()
    assert json.loads((checkpoint_dir(tmp_path, 2) / "state.json").read_text()) == {"iteration": 2}


def test_no_checkpoint_means_fresh_start(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert resolve_resume(tmp_path, "auto") is None
