"""Config loading, presets, validation, and the CLI's one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from hgpo_cli.config import list_presets, load_config
from hgpo_cli.errors import ConfigError

PRESETS = ["default", "alfworld-qwen2.5-1.5b", "alfworld-qwen2.5-7b", "webshop-qwen2.5-1.5b", "webshop-qwen2.5-7b"]


def hgpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hgpo_cli", *args], capture_output=True, text=True, timeout=120)


def test_every_preset_is_shipped_and_valid():
    assert set(PRESETS) <= set(list_presets())
    for name in list_presets():
        cfg = load_config(name)
        assert cfg.algorithm.name in ("grpo", "gigpo", "hgpo", "rloo")


def test_published_settings_in_the_presets():
    cfg = load_config("alfworld-qwen2.5-1.5b")
    assert (cfg.trainer.train_batch_size, cfg.trainer.group_size, cfg.trainer.iterations) == (16, 8, 160)
    assert (cfg.env.max_steps, cfg.algorithm.gamma, cfg.algorithm.norm) == (50, 0.95, "mean_std_norm")
    assert (cfg.rollout.max_prompt_tokens, cfg.rollout.max_response_tokens) == (4096, 512)
    assert (cfg.rollout.temperature, cfg.rollout.eval_temperature) == (1.0, 0.4)
    assert (cfg.trainer.lr, cfg.trainer.kl_coef, cfg.trainer.kl_type) == (1e-6, 0.01, "low_var_kl")
    assert (cfg.trainer.entropy_coeff, cfg.trainer.clip_ratio_c, cfg.algorithm.invalid_action_penalty) == (
        0.001,
        3.0,
        0.1,
    )
    web = load_config("webshop-qwen2.5-1.5b")
    assert (web.env.name, web.env.max_steps, web.algorithm.norm) == ("webshop", 30, "mean_norm")
    assert load_config("alfworld-qwen2.5-7b").model.path == "Qwen/Qwen2.5-7B-Instruct"


def test_overrides_apply_and_history_length_drives_the_memory():
    cfg = load_config(None, ["algorithm.name=gigpo", "algorithm.hgpo.history_length=4", "trainer.seed=3"])
    assert (cfg.algorithm.name, cfg.agent.history_length, cfg.trainer.seed) == ("gigpo", 4, 3)
    cfg = load_config(None, ["algorithm.hgpo.history_length=4", "agent.history_length=1"])
    assert (cfg.algorithm.hgpo.history_length, cfg.agent.history_length) == (4, 1)


def test_a_yaml_file_works_as_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"algorithm": {"name": "grpo"}, "trainer": {"iterations": 7}}))
    cfg = load_config(str(path), ["trainer.iterations=8"])
    assert (cfg.algorithm.name, cfg.trainer.iterations) == ("grpo", 8)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algorithm.hgpo.alpah=1", "unknown config key 'algorithm.hgpo.alpah'"),
        ("algorithm.hgpo.alpha=abc", "invalid value for 'algorithm.hgpo.alpha'"),
        ("algorithm.hgpo.alpha=-0.5", "algorithm.hgpo.alpha=-0.5 is not allowed (must be >= 0)"),
        ("algorithm.hgpo.history_length=-1", "must be >= 0"),
        ("algorithm.gamma=1.5", "algorithm.gamma=1.5 is not allowed (must be in [0, 1])"),
        ("algorithm.name=ppo2", "not a known estimator (one of gigpo, grpo, hgpo, ppo, rloo)"),
        ("algorithm.hgpo.weighting=exact", "one of recipe, paper"),
        ("trainer.kl_type=k9", "one of kl, abs, mse, low_var_kl"),
        (
            "trainer.eval_splits=in,unsen",
            "trainer.eval_splits='in,unsen': --split 'unsen' is not one of the alfworld splits",
        ),
        ("agent.answer_format=json", "agent.answer_format='json' is not allowed (must be one of think, action)"),
        ("agent.validity=strict", "agent.validity='strict' is not allowed (must be one of format, admissible)"),
        ("novalue", "not of the form key=value"),
    ],
)
def test_bad_values_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_prints_one_line_and_exits_2():
    for args in (["config", "show", "algorithm.gamma=2"], ["train", "algorithm.name=nope"], ["config", "show", "nope"]):
        done = hgpo(*args)
        assert done.returncode == 2, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hgpo: error:"), done.stderr
        assert "Traceback" not in done.stderr


def test_config_show_prints_resolved_yaml():
    done = hgpo("config", "show", "alfworld-qwen2.5-1.5b", "algorithm.hgpo.history_length=4")
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["algorithm"]["hgpo"]["history_length"] == 4
    assert shown["agent"]["history_length"] == 4  # interpolation resolved


def test_help_is_fast_and_imports_no_heavy_library():
    code = (
        "import sys, hgpo_cli.cli; heavy = [m for m in ('torch', 'ray', 'vllm', 'transformers', 'alfworld', "
        "'textworld', 'wandb') if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    listed = hgpo("--help").stdout
    for command in ("train", "eval", "ablate", "compare", "config", "analyze", "envs", "data"):
        assert command in listed
