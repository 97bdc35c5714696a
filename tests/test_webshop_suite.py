"""The WebShop suite: tasks and splits, the generated-catalogue cache, make_env and the oracle check."""

from __future__ import annotations

import time

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.envs.registry import get_suite
from hgpo_cli.envs.webshop import catalogue as catalogue_mod
from hgpo_cli.envs.webshop.vocab import CATEGORIES
from hgpo_cli.errors import UserError


@pytest.fixture()
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("HGPO_CACHE", str(tmp_path / "cache"))
    catalogue_mod._CATALOGUES.clear()
    yield load_config(
        "smollm2",
        [
            "env.name=webshop",
            "env.max_steps=15",
            "env.webshop.num_products=500",
            "env.webshop.num_goals=200",
            "env.webshop.seed=7",
        ],
    )
    catalogue_mod._CATALOGUES.clear()


def test_tasks_and_splits(cfg, tmp_path):
    suite = get_suite("webshop")
    # the default, verl-agent's shape: validation = test, train the rest (200 goals: in proportion, 10%)
    test, val, train = (suite.list_tasks(cfg, s) for s in ("test", "validation", "train"))
    assert (len(test), len(val), len(train)) == (20, 20, 180)
    assert [t.task_id for t in val] == [t.task_id for t in test] == [str(i) for i in range(20)]
    assert [t.task_id for t in test + train] == [str(i) for i in range(200)]
    cfg.env.webshop.goal_split = "webshop"  # the original's shape: test, validation, train
    test, val, train = (suite.list_tasks(cfg, s) for s in ("test", "validation", "train"))
    assert (len(test), len(val), len(train)) == (20, 20, 160)
    ids = [t.task_id for t in test + val + train]
    assert ids == [str(i) for i in range(200)]
    assert {t.task_type for t in train} <= set(CATEGORIES) and len({t.task_type for t in train}) == 5
    assert all(t.env == "webshop" and t.payload["goal_index"] == int(t.task_id) for t in test)
    assert (tmp_path / "cache" / "webshop" / "generated-7-500").is_dir()
    with pytest.raises(UserError):
        suite.list_tasks(cfg, "dev")


def test_cache_is_reused(cfg):
    first = catalogue_mod.get_catalogue(cfg.env.webshop)
    catalogue_mod._CATALOGUES.clear()
    again = catalogue_mod.get_catalogue(cfg.env.webshop)
    assert again is not first and again.goals == first.goals and again.products == first.products


def test_make_env_is_cheap_and_fresh(cfg):
    suite = get_suite("webshop")
    task = suite.list_tasks(cfg, "train")[0]
    env = suite.make_env(task, cfg)
    env.reset()
    env.step("search[" + env.instruction.split(" with ")[0] + "]")  # builds the index once
    start = time.perf_counter()
    envs = [suite.make_env(task, cfg) for _ in range(50)]
    assert time.perf_counter() - start < 0.5
    a, b = envs[0].reset(), envs[1].reset()
    assert a.observation == b.observation and a.instruction == b.instruction == env.instruction
    assert env.max_steps == 15


def test_check_oracle_wins_generated_goals(cfg):
    suite = get_suite("webshop")
    calls = []
    out = suite.check(cfg, "train", walkthrough=True, progress=lambda done, total: calls.append((done, total)))
    assert out["games"] == out["loaded"] == 180 and len(calls) == 180
    assert out["success_rate"] >= 0.95 and out["score"] >= 95.0
    assert sum(v["games"] for v in out["by_task_type"].values()) == 180
    assert out["won"] == sum(v["won"] for v in out["by_task_type"].values())
    load_only = suite.check(cfg, "test", walkthrough=False, limit=5)
    assert load_only["games"] == load_only["loaded"] == 5 and load_only["won"] == 0


def test_the_walkthrough_replays_the_scripted_players_win(cfg, tiny_model_dir):
    """WebShopEnv.walkthrough: the oracle's actions, the env back at its start; replayed they buy the
    goal's product (won) as the oracle did, and `hgpo sft` turns them into one sample per action."""
    from hgpo_cli.models.loading import load_tokenizer
    from hgpo_cli.train.sft import walkthrough_samples

    suite = get_suite("webshop")
    tasks = suite.list_tasks(cfg, "train")[:6]
    lengths = []
    for task in tasks:
        env = suite.make_env(task, cfg)
        start = env.reset()
        actions = env.walkthrough()
        assert env.steps == 0 and env.reset().observation == start.observation
        assert actions[0].startswith("search[") and actions[-1] == "click[buy now]"
        for action in actions:
            result = env.step(action)
            assert not result.info["invalid"], action
        assert result.done and result.won and result.reward == 1.0
        lengths.append(len(actions))
        env.reset()
        env.step(actions[0])
        with pytest.raises(UserError, match="sft_detours=0"):
            env.walkthrough()
    samples = walkthrough_samples(cfg, load_tokenizer(str(tiny_model_dir)), suite, tasks)
    assert len(samples) == sum(lengths)
    per_task = [t.task_id for t, n in zip(tasks, lengths, strict=True) for _ in range(n)]
    assert [s.meta["task_id"] for s in samples] == per_task


def test_missing_data_dir_is_a_user_error(cfg, tmp_path):
    cfg.env.webshop.data_dir = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match="data_dir"):
        get_suite("webshop").list_tasks(cfg, "test")


def test_spacy_model_that_is_missing_is_a_user_error(cfg):
    cfg.env.webshop.spacy_model = "no_such_spacy_model_xyz"
    suite = get_suite("webshop")
    with pytest.raises(UserError, match="spacy_model"):
        suite.make_env(suite.list_tasks(cfg, "test")[0], cfg)


def test_prompt_shows_the_page_and_actions(cfg):
    from hgpo_cli.agent.prompts import PromptTemplate, build_prompt
    from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE, is_admissible

    suite = get_suite("webshop")
    assert isinstance(suite.PROMPT, PromptTemplate)
    env = suite.make_env(suite.list_tasks(cfg, "test")[0], cfg)
    start = env.reset()
    query = "search[" + env.instruction.split(" with ")[0] + "]"
    first = build_prompt(
        suite.PROMPT,
        instruction=start.instruction,
        step_index=0,
        history=[],
        observation=start.observation,
        admissible_actions=start.admissible_actions,
    )
    assert start.instruction in first and f"'{SEARCH_TEMPLATE}'" in first and "<action>" in first
    res = env.step(query)
    second = build_prompt(
        suite.PROMPT,
        instruction=res.instruction,
        step_index=1,
        history=[(start.observation, query)],
        observation=res.observation,
        admissible_actions=res.admissible_actions,
    )
    assert res.observation in second and query in second and "'click[next >]'" in second
    # the rule a projection applies to WebShop's search template
    assert is_admissible(query, start.admissible_actions) and not is_admissible(query, res.admissible_actions)
