"""The main job's pieces: success before/after with its spread (by hand), the cached hgpo sft warm start
(model.sft_epochs), and a tiny real run writing RUN_DIR/summary.json (trainer.eval_before/eval_after)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("alfworld")

from hgpo_cli.eval.before_after import before_after, summary_table  # noqa: E402
from tests.test_alfworld_generated import generated_games  # noqa: E402


def _report(per_seed_percent: dict[int, float], tasks: int = 10) -> dict:
    return {
        "split": "eval_in_distribution",
        "tasks": tasks,
        "seeds": list(per_seed_percent),
        "per_seed": {seed: {"All": value, "Pick": 0.0} for seed, value in per_seed_percent.items()},
    }


def test_before_after_by_hand() -> None:
    # before 10 %, 20 %, 30 %: mean 0.2, std sqrt(((-.1)^2 + 0 + .1^2) / 2) = 0.1
    # after 40 %, 40 %, 70 %: mean 0.5, std sqrt((.1^2 + .1^2 + .2^2) / 2) = sqrt(0.03) = 0.1732
    # paired differences .3, .2, .4: mean 0.3, std 0.1; clear: 0.3 > 0.1 + 0.1732
    out = before_after(_report({1: 10.0, 2: 20.0, 3: 30.0}), _report({1: 40.0, 2: 40.0, 3: 70.0}), iterations=5)
    assert out["success_before"] == pytest.approx(0.2) and out["success_before_std"] == pytest.approx(0.1)
    assert out["success_after"] == pytest.approx(0.5) and out["success_after_std"] == pytest.approx(0.03**0.5)
    assert out["difference"] == pytest.approx(0.3) and out["difference_std"] == pytest.approx(0.1)
    assert out["clear"] is True
    assert out["eval_seeds"] == [1, 2, 3] and out["eval_episodes"] == 10 and out["iterations"] == 5
    assert out["success_after_per_seed"] == pytest.approx([0.4, 0.4, 0.7])
    # a gain inside the noise: before 0, 40, 20 (std 0.2), after 20, 40, 30 (std 0.1), gain 0.1 < 0.3
    noisy = before_after(_report({1: 0.0, 2: 40.0, 3: 20.0}), _report({1: 20.0, 2: 40.0, 3: 30.0}), iterations=1)
    assert noisy["difference"] == pytest.approx(0.1) and noisy["clear"] is False
    table = summary_table(out)
    assert "20.0% ± 10.0" in table and "50.0% ± 17.3" in table and "+30.0 points" in table


def test_before_after_with_one_side_missing() -> None:
    out = before_after(None, _report({7: 50.0}), iterations=2)
    assert out["success_before"] is None and out["success_after"] == pytest.approx(0.5)
    assert out["success_after_std"] == 0.0 and "difference" not in out and out["eval_seeds"] == [7]


def _sft_cfg(model_dir: Path, root: Path, *extra: str):
    from hgpo_cli.config import load_config

    return load_config(
        "smollm2",
        [
            f"model.path={model_dir}",
            f"env.alfworld.data_dir={root}",
            "env.max_steps=2",
            "agent.answer_format=action",
            "rollout.max_prompt_tokens=400",
            "trainer.micro_batch_size=4",
            "trainer.torch_threads=1",
            "model.sft_epochs=1",
            "model.sft_lr=1e-3",
            *extra,
        ],
    )


def test_warm_start_is_built_once_and_keyed_by_its_settings(tmp_path_factory, tiny_model_dir, private_cache) -> None:
    from hgpo_cli.train.warm_start import starting_policy, warm_start_dir

    root = generated_games(tmp_path_factory)
    cfg = _sft_cfg(tiny_model_dir, root)
    path = Path(starting_policy(cfg))
    assert path == warm_start_dir(cfg, str(tiny_model_dir)) and path.parent == private_cache / "warm-start"
    report = json.loads((path / "sft.json").read_text())
    assert report["games"] == 6 and report["samples"] == 12 and report["epochs"] == 1  # 6 games x 2 steps
    key = json.loads((path / "warm_start_key.json").read_text())
    assert key["epochs"] == 1 and key["lr"] == 1e-3 and key["max_steps"] == 2
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert Path(starting_policy(cfg)) == path and (path / "model.safetensors").stat().st_mtime_ns == mtime
    # another learning rate, another warm start; sft_epochs=0 is the model itself
    assert warm_start_dir(_sft_cfg(tiny_model_dir, root, "model.sft_lr=1e-4"), str(tiny_model_dir)) != path
    # more held-out games change no training game: the same warm start
    more_eval = _sft_cfg(tiny_model_dir, root, "env.alfworld.generated_eval_games=50")
    assert warm_start_dir(more_eval, str(tiny_model_dir)) == path
    assert starting_policy(_sft_cfg(tiny_model_dir, root, "model.sft_epochs=0")) == str(tiny_model_dir)


def test_warm_start_needs_a_planner_and_the_action_format(tiny_model_dir) -> None:
    from hgpo_cli.config import load_config
    from hgpo_cli.errors import UserError

    with pytest.raises(UserError, match="model.sft_epochs > 0"):
        load_config(None, [f"model.path={tiny_model_dir}", "model.sft_epochs=1", "agent.answer_format=think"])
    with pytest.raises(UserError, match="trainer.eval_seeds is empty"):
        load_config(None, ["trainer.eval_after=true", "trainer.eval_seeds=[]"])


@pytest.mark.slow
def test_tiny_run_writes_summary_json(tmp_path_factory, tiny_model_dir, private_cache, ray_local) -> None:
    """1 iteration of embedded-size training with the starting policy evaluated before and the final one
    after, on the same 2 held-out games x 2 seeds: summary.json has the keys, fractions in [0, 1]."""
    from hgpo_cli.config import load_config
    from hgpo_cli.eval.evaluate import evaluate_checkpoint
    from hgpo_cli.train.trainer import train

    root = generated_games(tmp_path_factory)
    generated_games(tmp_path_factory, split="valid_seen")
    out = tmp_path_factory.mktemp("runs") / "main-job"
    cfg = load_config(
        "smollm2",
        [
            f"model.path={tiny_model_dir}",
            f"env.alfworld.data_dir={root}",
            "env.max_steps=2",
            "env.num_workers=2",
            "agent.answer_format=action",
            "agent.validity=admissible",
            "trainer.iterations=1",
            "trainer.train_batch_size=1",
            "trainer.group_size=2",
            "trainer.ppo_mini_batch_size=4",
            "trainer.micro_batch_size=4",
            "trainer.loss_scale=global",
            "trainer.torch_threads=1",
            "trainer.eval_before=true",
            "trainer.eval_after=true",
            "trainer.eval_episodes=2",
            "trainer.eval_seeds=[11,12]",
            f"trainer.output_dir={out}",
            "rollout.max_response_tokens=8",
            "rollout.max_prompt_tokens=400",
            "logging.mode=disabled",
        ],
    )
    summary = train(cfg)
    data = json.loads((out / "summary.json").read_text())
    assert data == summary.before_after
    assert data["eval_seeds"] == [11, 12] and data["eval_episodes"] == 2 and data["iterations"] == 1
    for key in ("success_before", "success_after"):
        assert 0.0 <= data[key] <= 1.0
        assert len(data[f"{key}_per_seed"]) == 2
    before = json.loads((out / "eval_before" / "eval-alfworld-eval_in_distribution.json").read_text())
    assert before["checkpoint"] == str(tiny_model_dir) and before["seeds"] == [11, 12]
    # the same games before and after
    after_file = summary.last_checkpoint / "policy" / "eval-alfworld-eval_in_distribution.json"
    after = json.loads(after_file.read_text())
    ids = {int(s): [e["task_id"] for e in rows] for s, rows in before["episodes"].items()}
    assert ids == {int(s): [e["task_id"] for e in rows] for s, rows in after["episodes"].items()}
    # the evaluation after training used the trainer's own engine and environments: it plays exactly as a
    # fresh engine loading the saved checkpoint does (`hgpo eval`), episode by episode
    evaluate_checkpoint(cfg, summary.last_checkpoint / "policy", seeds=(11, 12), episodes=2, out_dir=out / "fresh")
    fresh = json.loads((out / "fresh" / "eval-alfworld-eval_in_distribution.json").read_text())
    assert after["checkpoint"] == fresh["checkpoint"] == str(summary.last_checkpoint / "policy")
    assert after["episodes"] == fresh["episodes"] and after["per_seed"] == fresh["per_seed"]


def test_the_default_preset_is_the_main_job() -> None:
    """`hgpo train` with no arguments: the small embedded model, warm-started on training games only,
    evaluated before and after on the held-out split with 3 seeds, small generated rooms."""
    from hgpo_cli.config import load_config
    from hgpo_cli.envs.alfworld.suite import generated_count, generated_root

    cfg = load_config(None)
    assert cfg.model.path == "embedded:hgpo-cpu-1m" and cfg.model.sft_epochs > 0 and cfg.model.sft_prompt_loss > 0
    assert cfg.trainer.eval_before and cfg.trainer.eval_after and len(cfg.trainer.eval_seeds) == 3
    assert cfg.algorithm.name == "hgpo" and cfg.algorithm.hgpo.history_length == 2
    assert cfg.env.alfworld.train_split == "train" and cfg.env.alfworld.eval_split == "eval_in_distribution"
    assert generated_count(cfg, "train") == 400 and generated_count(cfg, "eval_in_distribution") == 100
    # under mean_std_norm the invalid-step penalty alone gave groups without a success unit-size advantages
    # and the 1M model drifted to valid but useless commands (results/main-job/README.md)
    assert cfg.algorithm.norm == "mean_norm" and cfg.algorithm.invalid_action_penalty == 0.1
    assert generated_root(cfg).name.endswith("-r6o6")
