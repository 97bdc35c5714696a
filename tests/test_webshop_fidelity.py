"""WebShop as verl-agent trains on it: master's reward rules on written-out cases (values worked out by
hand from master's formulas), a term-by-term agreement check against a transcription of master's
`goal.py` (tests/webshop_master_reference.py), the binary training reward, and the data defaults."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from hgpo_cli.agent.records import StepRecord
from hgpo_cli.config import load_config
from hgpo_cli.envs.webshop import fuzz_master
from hgpo_cli.envs.webshop.catalogue import generate
from hgpo_cli.envs.webshop.goals import split_range
from hgpo_cli.envs.webshop.reward import (
    content_words,
    normalize_color,
    option_matches,
    token_set_score,
    type_reward,
    webshop_reward,
)
from hgpo_cli.envs.webshop.suite import TrainingReward, training_reward
from hgpo_cli.train.step_advantages import step_arrays
from tests.webshop_master_reference import ref_reward, ref_token_set_ratio, sample_pairs

CATEGORY = "Grocery & Gourmet Food › Snacks › Nuts"
NAME = "Crunchy Roasted Almonds Snack Pack"


def product(**overrides):
    p = {
        "asin": "B000000002",
        "Title": NAME,
        "name": NAME,
        "query": "almonds",
        "product_category": CATEGORY,
        "Attributes": ["gluten free", "non-gmo"],
        "BulletPoints": ["GLUTEN FREE: a snack for everyone."],
        "Description": "Lightly salted roasted almonds, resealable bag.",
    }
    p.update(overrides)
    return p


def goal(options, **overrides):
    g = {
        "asin": "B000000002",
        "query": "almonds",
        "name": NAME,
        "product_category": CATEGORY,
        "attributes": ["gluten free", "non gmo"],
        "goal_options": options,
        "price_upper": 20.0,
    }
    g.update(overrides)
    return g


# ---- the text score (thefuzz 0.19 with difflib), by hand ---------------------------------------------


def test_ratio_and_token_set_ratio_by_hand():
    # ratio = round(100 * 2M / (len a + len b)), M = characters in difflib's matching blocks
    assert fuzz_master.ratio("small", "small size") == round(100 * 10 / 15) == 67
    assert fuzz_master.ratio("small", "small x") == round(100 * 10 / 12) == 83
    assert fuzz_master.ratio("small size", "small x") == round(100 * 12 / 17) == 71  # block "small "
    assert fuzz_master.ratio("", "abc") == 0 and fuzz_master.ratio("", "") == 100
    # tokens of one a subset of the other's: the sorted intersection equals one side, 100
    assert fuzz_master.token_set_ratio("small", "x-small") == 100
    # a (name, value) pair is scored as its str(): "('size', 'small')" -> tokens {size, small}
    assert fuzz_master.preprocess(("size", "small")) == "size    small"
    assert fuzz_master.token_set_ratio("x-small", ("size", "small")) == max(67, 83, 71) == 83
    # "_" is a word character for thefuzz 0.19 (rapidfuzz turns it into a space)
    assert fuzz_master.preprocess("DUMMY_ATTR") == "dummy_attr" and fuzz_master.preprocess("caf\u00e9") == "caf"


def test_pack_sizes_by_hand():
    # {12, ounce, pack, of, 2} vs {8, ounce, pack, of, 1}: sect "of ounce pack" (13 chars),
    # sect+diff "of ounce pack 12 2" (18) and "of ounce pack 1 8" (17)
    a, b = "12 ounce (pack of 2)", "8 ounce (pack of 1)"
    assert fuzz_master.ratio("of ounce pack", "of ounce pack 12 2") == round(100 * 26 / 31) == 84
    assert fuzz_master.ratio("of ounce pack", "of ounce pack 1 8") == round(100 * 26 / 30) == 87
    # blocks "of ounce pack 1" (15) and " " (1): 2 x 16 / 35
    assert fuzz_master.ratio("of ounce pack 12 2", "of ounce pack 1 8") == round(100 * 32 / 35) == 91
    assert fuzz_master.token_set_ratio(a, b) == 91
    # against master's dict-goal pair the goal side gains the token "size": 84, 74, 80 -> 84, no match
    assert fuzz_master.ratio("of ounce pack", "of ounce pack 1 8 size") == round(100 * 26 / 35) == 74
    assert fuzz_master.ratio("of ounce pack 12 2", "of ounce pack 1 8 size") == round(100 * 32 / 40) == 80
    assert fuzz_master.token_set_ratio(a, ("size", b)) == 84


# ---- options: master vs v2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goal_options", "chosen", "master", "v2"),
    [
        # list goal (human goals): size fuzzy under master (100 > 85), exact under v2
        (["small"], {"size": "x-small"}, 1, 0),
        # dict goal: master compares "x-small" with the pair ('size', 'small'): 83, no match
        ({"size": "small"}, {"size": "x-small"}, 0, 0),
        # ... but "small" against ('size', 'x-small') is a token subset: 100, a match
        ({"size": "x-small"}, {"size": "small"}, 1, 0),
        # pack sizes: 91 for a list goal, 84 for a dict goal; v2 needs the exact size
        (["8 ounce (pack of 1)"], {"size": "12 ounce (pack of 2)"}, 1, 0),
        ({"size": "8 ounce (pack of 1)"}, {"size": "12 ounce (pack of 2)"}, 0, 0),
        ({"size": "8 ounce (pack of 1)"}, {"size": "8 ounce (pack of 1)"}, 1, 1),
        # colours: "dark blue" -> "blue", a subset of ('color', 'navy blue')'s tokens: a match for both
        ({"color": "navy blue"}, {"color": "dark blue"}, 1, 1),
        # the pair becomes a colour word only when its value *is* one: ('color', 'black') -> 'black'
        ({"color": "black"}, {"color": "black"}, 1, 1),
        # 'dark wash' -> 'ash' (first colour word inside it) vs the pair's tokens {color, dark, wash}: 33
        ({"color": "dark wash"}, {"color": "dark wash"}, 0, 1),
        # v2 matches a non-size option fuzzily on values; master needs some chosen value for each goal pair
        ({"flavor name": "honey roasted", "size": "1 pound"}, {"flavor name": "honey roasted"}, 1, 1),
        # names are ignored by master: a colour chosen under another option still counts
        ({"color": "black"}, {"style": "black"}, 1, 1),
    ],
)
def test_option_rules(goal_options, chosen, master, v2):
    assert option_matches(goal_options, chosen, "master") == master
    assert option_matches(goal_options, chosen, "v2") == v2


def test_dark_wash_by_hand():
    assert normalize_color("dark wash") == "ash" and normalize_color(("color", "dark wash")) == ("color", "dark wash")
    assert normalize_color(("color", "black")) == "black" and normalize_color("midnight navy") == "midnight"
    # no shared token: sect "" -> ratio("", .) = 0; ratio("ash", "color dark wash"): block "ash" -> 6 / 18
    assert fuzz_master.token_set_ratio("ash", ("color", "dark wash")) == round(100 * 6 / 18) == 33


# ---- whole rewards by hand -----------------------------------------------------------------------


def test_rewards_by_hand():
    opts = {"flavor name": "sea salt", "size": "8 ounce (pack of 1)"}
    # 2 attributes ("non gmo" fuzzy-matches "non-gmo"; "gluten free" too), 2 options, price: / 5
    r, info = webshop_reward(product(), goal(opts), 10.0, dict(opts))
    assert r == 1.0 and info["num_attr_matches"] == 2 and info["num_option_matches"] == 2
    wrong_pack = {"flavor name": "sea salt", "size": "12 ounce (pack of 2)"}
    assert webshop_reward(product(), goal(opts), 10.0, wrong_pack)[0] == pytest.approx(4 / 5)  # dict: 84
    as_list = goal(list(opts.values()))  # a human goal lists values: 91, a match under master
    assert webshop_reward(product(), as_list, 10.0, wrong_pack)[0] == 1.0
    assert webshop_reward(product(), as_list, 10.0, wrong_pack, rules="v2")[0] == pytest.approx(4 / 5)
    # price: 20 <= 20 in budget, 20.5 out: (2 + 2 + 0) / 5
    assert webshop_reward(product(), goal(opts), 20.0, dict(opts))[0] == 1.0
    assert webshop_reward(product(), goal(opts), 20.5, dict(opts))[0] == pytest.approx(4 / 5)
    # attributes: "resealable bag" is in the description, "organic" nowhere: (1 + 1 + 2 + 1) / 6
    g = goal(opts, attributes=["gluten free", "resealable bag", "organic"])
    r, info = webshop_reward(product(), g, 10.0, dict(opts))
    assert info["num_attr_matches"] == 2 and r == pytest.approx(5 / 6)


def test_type_term_thresholds_by_hand():
    base = {"query": "q", "product_category": "A › B"}
    other = {"query": "other", "product_category": "C › D"}
    five = "alpha bravo charlie delta echo"  # 5 content words
    cases = [
        ("alpha zulu", 0.5),  # 1/5 = 0.2, not > 0.2, no query or category match: 0.5
        ("alpha bravo", 1.0),  # 2/5 = 0.4 > 0.2
        ("zulu", 0.0),  # 0/5
    ]
    for name, expected in cases:
        t = type_reward({**other, "name": name}, {**base, "name": five}, content_words)
        assert t["r_type"] == expected, name
    eleven = " ".join(f"w{c}x" for c in "abcdefghijk")  # 11 words: 1/11 < 0.1 -> 0.1 even with a query match
    t = type_reward({**base, "name": "wax"}, {**base, "name": eleven}, content_words)
    assert t["title_score"] == pytest.approx(1 / 11) and t["r_type"] == 0.1


# ---- agreement with the transcription of master -------------------------------------------------


def test_reference_scorer_agrees_with_ours_and_rapidfuzz_differs_somewhere():
    cat = generate(3, 200, 200)
    texts = sorted({a for p in cat.products for a in p["Attributes"]})
    texts += sorted({v for p in cat.products for vals in p["options"].values() for v in vals})
    pairs = [(a, b) for a in texts[::3] for b in texts[1::5]]
    assert all(fuzz_master.token_set_ratio(a, b) == ref_token_set_ratio(a, b) for a, b in pairs)
    # difflib's ratio is not rapidfuzz's Indel ratio: the scores differ on some pairs
    assert any(token_set_score(a, b) != fuzz_master.token_set_ratio(a, b) for a, b in pairs)


def _terms(mine: dict, ref: dict) -> dict[str, bool]:
    return {
        "attributes": mine["num_attr_matches"] == ref["num_attr_matches"],
        "options": mine["num_option_matches"] == ref["num_option_matches"],
        "price": bool(mine["r_price"]) == bool(ref["r_price"]),
        "type": mine["r_type"] == ref["r_type"],
    }


def test_master_rules_agree_term_by_term_with_the_transcription():
    cat = generate(5, 400, 600)
    pairs = sample_pairs(cat, 2000, seed=1)
    v2_option_disagreements = 0
    for g, p, price, chosen in pairs:
        ref = ref_reward(p, g, price, chosen, content_words)
        r, info = webshop_reward(p, g, price, chosen, content_words, "master")
        assert all(_terms(info, ref).values()) and r == pytest.approx(ref["total"]), (g["goal_options"], chosen)
        _, info_v2 = webshop_reward(p, g, price, chosen, content_words, "v2")
        v2_option_disagreements += not _terms(info_v2, ref)["options"]
    assert v2_option_disagreements > 0  # the check can tell the rule sets apart


# ---- training reward ------------------------------------------------------------------------------


def _record(reward: float, traj: str = "t0") -> StepRecord:
    return StepRecord(
        group_id="g",
        traj_id=traj,
        step_index=0,
        prompt="",
        response="",
        action="",
        reward=reward,
        done=True,
        valid=True,
        anchor="",
    )


def test_binary_and_dense_training_rewards():
    binary, dense = TrainingReward("binary"), TrainingReward("dense")
    assert (binary(1.0), binary(0.8), binary(0.0)) == (10.0, 0.0, 0.0)
    assert (dense(1.0), dense(0.8)) == (10.0, pytest.approx(8.0))
    records = [_record(0.0), _record(0.75, "t1"), _record(1.0, "t2")]
    assert np.array_equal(step_arrays(records, binary).rewards, [0.0, 0.0, 10.0])
    assert np.allclose(step_arrays(records, dense).rewards, [0.0, 7.5, 10.0])
    assert np.allclose(step_arrays(records, 10.0).rewards, [0.0, 7.5, 10.0])  # a plain scale still works
    cfg = load_config("smollm2", ["env.name=webshop"])
    assert training_reward(cfg) == binary
    # what the trainer reads: the WebShop suite's training_reward; ALFWorld keeps its plain REWARD_SCALE
    from hgpo_cli.envs.registry import get_suite

    assert get_suite("webshop").training_reward(cfg) == binary
    assert not hasattr(get_suite("alfworld"), "training_reward")
    assert training_reward(load_config("smollm2", ["env.name=webshop", "env.webshop.reward=dense"])) == dense


# ---- defaults -------------------------------------------------------------------------------------


def test_data_and_reward_defaults_are_verl_agents():
    w = load_config("smollm2", ["env.name=webshop"]).env.webshop
    assert (w.use_small, w.human_goals, w.goal_split, w.reward, w.reward_rules) == (
        True,
        False,
        "verl-agent",
        "binary",
        "master",
    )
    assert w.num_products == 1000
    # a default generated set (1500 goals) uses verl-agent's indices: 0-499 evaluate, 500+ train
    assert split_range("test", 1500, real=False) == split_range("validation", 1500, real=False) == range(500)
    assert split_range("train", 1500, real=False) == range(500, 1500)
    # the original's shape, in proportion below 3000 generated goals
    assert split_range("validation", 1500, real=False, scheme="webshop") == range(150, 300)
    assert split_range("train", 3000, real=False, scheme="webshop") == range(1500, 3000)


@pytest.mark.parametrize("override", ["env.webshop.reward=sparse", "env.webshop.reward_rules=v3"])
def test_bad_reward_settings_are_config_errors(override):
    from hgpo_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config("smollm2", ["env.name=webshop", override])


def test_config_show_webshop_preset():
    done = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "config", "show", "webshop-qwen2.5-1.5b"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["env"]["webshop"]["reward"] == "binary" and shown["env"]["webshop"]["reward_rules"] == "master"
    assert shown["trainer"]["ppo_mini_batch_size"] == 64
    assert (shown["env"]["webshop"]["use_small"], shown["env"]["webshop"]["human_goals"]) == (True, False)
