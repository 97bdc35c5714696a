"""The PPO row and dynamic sampling as configs: they validate, their mistakes are one-line errors, and
`hgpo compare` puts the GiGPO paper's PPO numbers beside a PPO run."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.errors import ConfigError
from hgpo_cli.eval.compare import compare
from tests.test_compare import alf, make_run


def test_ppo_and_filter_groups_validate_with_verl_defaults() -> None:
    cfg = load_config("default", ["algorithm.name=ppo", "algorithm.filter_groups.enable=true"])
    assert cfg.algorithm.name == "ppo"
    assert (cfg.algorithm.ppo.gamma, cfg.algorithm.ppo.lam) == (1.0, 1.0)  # verl's algorithm.gamma / lam
    assert (cfg.critic.lr, cfg.critic.cliprange_value, cfg.critic.warmup) == (1e-5, 0.5, 0)
    assert cfg.algorithm.filter_groups.max_num_gen_batches == 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algorithm.name=ppx"], "algorithm.name='ppx' is not a known estimator"),
        (["algorithm.ppo.lam=1.5"], "algorithm.ppo.lam=1.5 is not allowed"),
        (["critic.cliprange_value=0"], "critic.cliprange_value=0"),
        (["algorithm.filter_groups.max_num_gen_batches=0"], "max_num_gen_batches=0"),
        (["algorithm.filter_groups.enable=true", "trainer.group_size=1"], "needs trainer.group_size >= 2"),
    ],
)
def test_mistakes_are_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config("default", overrides)


def test_compare_shows_the_published_ppo_row(tmp_path: Path) -> None:
    make_run(
        tmp_path / "runs" / "ppo-s0",
        "alfworld-qwen2.5-1.5b",
        ["algorithm.name=ppo", "trainer.train_batch_size=128", "trainer.group_size=1"],
        {"eval_in_distribution": {123: alf(50.0), 456: alf(52.0), 789: alf(54.0)}},
    )
    result = compare([str(tmp_path / "runs")], out_dir=tmp_path / "out", plots=False)
    (row,) = result["rows"]
    assert row.method == "ppo" and row.cells["alfworld/All"].mean == pytest.approx(52.0)
    assert [(p.source, p.values["alfworld/All"]) for p in row.published] == [("GiGPO paper", 54.4)]
    assert "54.4" in (tmp_path / "out" / "comparison.md").read_text()
