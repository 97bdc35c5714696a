"""`hgpo train` with algorithm.name=ppo and dynamic sampling through the real path (Ray env workers on
generated ALFWorld games, the HF engine, policy and critic workers): the PPO phases run and are timed,
the critic is checkpointed, and resuming goes through the critic's checkpoint."""

from __future__ import annotations

import os
import shutil

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.errors import UserError
from hgpo_cli.tracking.run_logger import read_metrics
from hgpo_cli.train.trainer import train
from tests.test_train_e2e import overrides

pytestmark = pytest.mark.slow


@pytest.fixture()
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("HGPO_CACHE")
    os.environ["HGPO_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HGPO_CACHE", None)
    else:
        os.environ["HGPO_CACHE"] = old


def test_ppo_with_group_filtering_runs_saves_and_resumes_the_critic(tiny_model_dir, cache_dir, ray_local, tmp_path):
    out = tmp_path / "ppo"
    extra = {
        "algorithm.name": "ppo",
        "algorithm.filter_groups.enable": "true",
        "algorithm.filter_groups.max_num_gen_batches": 2,
        "env.max_steps": 2,
        "critic.lr": 1e-3,
        "trainer.keep_final_optimizer": "true",  # a finished run's checkpoint keeps its training state
    }
    summary = train(load_config("smollm2", overrides(tiny_model_dir, out, **extra, **{"trainer.iterations": 1})))
    assert summary.iterations_done == 1
    (record,) = read_metrics(out)
    for key in ("time/values", "time/critic_update", "time/update", "critic/value_loss", "critic/vf_clipfrac"):
        assert key in record, key
    assert record["critic/value_loss"] >= 0 and 0 <= record["critic/vf_clipfrac"] <= 1
    assert record["rollout/filter_tries"] in (1.0, 2.0)
    assert 0 < record["rollout/groups_kept_fraction"] <= 1
    # a try keeps whole groups: step samples come in groups of 2 trajectories x up to 2 steps
    assert record["batch/step_samples"] % 2 == 0
    critic = out / "checkpoints" / "iter_000001" / "critic"
    assert (critic / "model.safetensors").is_file() and (critic / "optimizer.pt").is_file()

    # resuming a ppo run needs the critic: without it, one line saying so
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    shutil.rmtree(broken / "checkpoints" / "iter_000001" / "critic")
    with pytest.raises(UserError, match="no critic/"):
        train(load_config("smollm2", overrides(tiny_model_dir, broken, **extra, **{"trainer.iterations": 2})))

    summary = train(load_config("smollm2", overrides(tiny_model_dir, out, **extra, **{"trainer.iterations": 2})))
    assert summary.iterations_done == 2
    assert (out / "checkpoints" / "iter_000002" / "critic" / "model.safetensors").is_file()
