"""`hgpo train` through the real path: Ray env workers on generated ALFWorld games, the HF engine actor,
the policy worker, the real loss, W&B offline; then resume after a kill -9, and a killed env worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hgpo_cli.config import load_config
from hgpo_cli.tracking.run_logger import read_metrics
from hgpo_cli.train.checkpoint import latest_checkpoint
from hgpo_cli.train.trainer import Trainer, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("HGPO_CACHE")
    os.environ["HGPO_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HGPO_CACHE", None)
    else:
        os.environ["HGPO_CACHE"] = old


def overrides(model_dir: Path, out: Path, **extra: object) -> list[str]:
    base = {
        "model.path": str(model_dir),
        "env.max_steps": 3,
        "env.num_workers": 2,
        "env.alfworld.generated_games": 6,
        "trainer.train_batch_size": 2,
        "trainer.group_size": 2,
        "trainer.iterations": 2,
        "trainer.lr": 1e-3,
        "trainer.ppo_mini_batch_size": 6,
        "trainer.micro_batch_size": 4,
        "trainer.torch_threads": 1,
        "trainer.output_dir": str(out),
        "trainer.resume": "auto",
        "rollout.max_response_tokens": 10,
        "rollout.max_prompt_tokens": 400,
        "logging.mode": "offline",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def policy_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    folder = latest_checkpoint(run_dir)
    assert folder is not None
    return load_file(str(folder / "policy" / "model.safetensors"))


@pytest.fixture(scope="module")
def straight_run(tiny_model_dir, cache_dir, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    summary = train(load_config("smollm2", overrides(tiny_model_dir, out)))
    return out, summary


def test_two_iterations_on_generated_games(straight_run, tiny_model_dir):
    out, summary = straight_run
    assert summary.iterations_done == 2 and not summary.interrupted
    records = read_metrics(out)
    assert [r["iteration"] for r in records] == [1, 2]
    for key in (
        "rollout/success_rate",
        "rollout/invalid_action_rate",
        "actor/kl",
        "actor/grad_norm",
        "time/rollout",
        "time/update",
        "groups/level0/num_groups",
        "throughput/rollout_tokens_per_s",
    ):
        assert key in records[-1], key
    assert records[-1]["batch/step_samples"] == 2 * 2 * 3  # no env finishes in 3 steps with a random model
    # one machine's shortcuts: the policy worker samples, and 12 samples in mini-batches of 6 are two
    # optimizer steps, so the old log-probs are those the rollout recorded (no separate pass)
    assert records[-1]["batch/shared_policy"] == 1.0
    assert records[-1]["batch/rollout_old_log_probs"] == 1.0 and records[-1]["batch/fused_old_log_probs"] == 0.0
    # the policy moved, and the checkpoint is an ordinary HF folder
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    trained = policy_weights(out)
    assert max((trained[k] - initial[k]).abs().max().item() for k in initial) > 1e-4
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(latest_checkpoint(out) / "policy")
    rollouts = sorted((out / "rollouts").glob("iter_*.jsonl"))
    assert len(rollouts) == 2
    # the default preset's answer format: the reply is opened with <action>, the prompt asks for the action only
    saved = [json.loads(line) for line in rollouts[0].read_text().splitlines()]
    assert saved and all(r["response"].startswith("<action>") for r in saved)
    assert all("<think>" not in r["prompt"] for r in saved)
    assert list((out / "wandb").glob("offline-run-*")), "no offline W&B run written"


def test_the_fast_paths_roll_out_and_train_as_the_plain_ones(straight_run, tiny_model_dir, cache_dir, tmp_path):
    """The same run with every fast path off (`PLAIN_PATHS`: an engine actor with its own copy synced after
    each update, a separate old-log-prob pass, no dedup, no chunked prefill, no trims) samples the same
    replies in both iterations and ends with the same weights, to float rounding (the fast paths sum the same
    terms in other orders)."""
    from hgpo_cli.train.fast_paths import PLAIN_PATHS

    out = tmp_path / "plain"
    summary = train(load_config("smollm2", [*overrides(tiny_model_dir, out), *PLAIN_PATHS]))
    assert summary.iterations_done == 2
    assert read_metrics(out)[-1]["batch/shared_policy"] == 0.0  # the plain paths did run

    def replies(run_dir: Path) -> list[list[tuple[str, str, str]]]:
        files = sorted((run_dir / "rollouts").glob("iter_*.jsonl"))
        rows = [[json.loads(line) for line in f.read_text().splitlines()] for f in files]
        return [[(r["traj_id"], r["prompt"], r["response"]) for r in rows_of] for rows_of in rows]

    fast, plain = replies(straight_run[0]), replies(out)
    assert len(plain) == 2 and all(len(rows) == 12 for rows in plain)
    assert plain == fast
    expected, trained = policy_weights(out), policy_weights(straight_run[0])
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    assert max((expected[k] - initial[k]).abs().max().item() for k in initial) > 1e-4
    # updates of up to 4e-3. AdamW divides by the root of the squared gradients, so an entry whose gradients are
    # near 0 turns float rounding into a step of up to lr = 1e-3: measured, 76 of 393k entries more than 1e-6
    # apart (at most 1.9e-5, a rare token's embedding), every other within 1e-6
    diff = torch.cat([(trained[name] - value).abs().flatten() for name, value in expected.items()])
    assert float(diff.max()) < 5e-5
    assert float((diff > 1e-6).float().mean()) < 1e-3


def test_resume_after_kill_matches_straight_run(straight_run, tiny_model_dir, cache_dir, tmp_path):
    out = tmp_path / "killed"
    # a fresh process, as after a real crash: no Ray or W&B service shared with this test process
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_SERVICE", "RAY_ADDRESS"))}
    env.update({"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "hgpo_cli", "train", "smollm2", *overrides(tiny_model_dir, out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = out / "checkpoints" / "iter_000001" / "state.json"
    deadline = time.monotonic() + 400
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.exists(), "the first checkpoint never appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [p.name for p in (out / "checkpoints").glob("iter_*") if (p / "state.json").exists()]
    assert "iter_000002" not in done, "killed too late: the run had finished"
    summary = train(load_config("smollm2", overrides(tiny_model_dir, out)))
    assert summary.iterations_done == 2
    expected, resumed = policy_weights(straight_run[0]), policy_weights(out)
    for name, value in expected.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6)


def test_killed_env_worker_does_not_stop_training(tiny_model_dir, cache_dir, ray_local, tmp_path):
    import ray

    cfg = load_config("smollm2", overrides(tiny_model_dir, tmp_path / "crash"))
    trainer = Trainer(cfg)
    try:

        def kill_first_worker(step: int, active: int) -> None:
            if step == 1:
                ray.kill(trainer.pool.workers[0], no_restart=False)

        metrics, result, _ = trainer.iteration(0, on_step=kill_first_worker)
        assert metrics["rollout/worker_failed_episodes"] >= 1
        assert trainer.pool.failed_episodes >= 1
        assert any(e.worker_failed and not e.won for e in result.episodes)
        metrics, _, _ = trainer.iteration(1)
        assert metrics["rollout/worker_failed_episodes"] == 0
        assert metrics["batch/step_samples"] == 2 * 2 * 3
    finally:
        trainer.close()
