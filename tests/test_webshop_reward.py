"""The WebShop reward, term by term, on hand-computed cases."""

from __future__ import annotations

import pytest

from hgpo_cli.envs.webshop.reward import (
    content_words,
    normalize_color,
    token_set_score,
    type_reward,
    webshop_reward,
)

CATEGORY = "Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorants"
TITLE = "Acme Gentle Deodorant Stick for Women, Aluminum Free"


def product(**overrides):
    p = {
        "asin": "B000000001",
        "Title": TITLE,
        "name": TITLE,
        "query": "deodorant",
        "product_category": CATEGORY,
        "Attributes": ["aluminum free", "long lasting"],
        "BulletPoints": ["ALUMINUM FREE: kind to skin."],
        "Description": "A deodorant stick that keeps you fresh.",
    }
    p.update(overrides)
    return p


def goal(**overrides):
    g = {
        "asin": "B000000001",
        "query": "deodorant",
        "name": TITLE,
        "product_category": CATEGORY,
        "attributes": ["aluminum free", "long lasting"],
        "goal_options": {"scent": "lavender", "size": "2.6 ounce (pack of 1)"},
        "price_upper": 20.0,
    }
    g.update(overrides)
    return g


ALL_OPTIONS = {"scent": "lavender", "size": "2.6 ounce (pack of 1)"}


def test_all_matched_is_one():
    r, info = webshop_reward(product(), goal(), 10.0, ALL_OPTIONS)
    assert r == 1.0
    assert info["r_type"] == 1.0 and info["r_att"] == 1.0 and info["r_option"] == 1.0 and info["r_price"]
    assert info["w_att"] == pytest.approx(2 / 5) and info["w_option"] == pytest.approx(2 / 5)


def test_missing_option_loses_its_share():
    r, info = webshop_reward(product(), goal(), 10.0, {"scent": "lavender"})
    assert r == pytest.approx(4 / 5)
    assert info["num_option_matches"] == 1


def test_size_needs_an_exact_match_under_v2():
    # "pack of 2" is a fuzzy match of "pack of 1" (token_set_ratio > 85) but v2 matches size exactly
    # (master fuzzy-matches it: tests/test_webshop_fidelity.py).
    assert token_set_score("2.6 ounce (pack of 2)", "2.6 ounce (pack of 1)") > 85
    chosen = {"scent": "lavender", "size": "2.6 ounce (pack of 2)"}
    r, _ = webshop_reward(product(), goal(), 10.0, chosen, rules="v2")
    assert r == pytest.approx(4 / 5)
    r, _ = webshop_reward(product(), goal(), 10.0, chosen, rules="master")
    assert r == 1.0


def test_other_options_match_fuzzily_and_by_colour_word():
    r, _ = webshop_reward(product(), goal(), 10.0, {"scent": "lavender scent", "size": "2.6 ounce (pack of 1)"})
    assert r == 1.0
    assert normalize_color("navy blue") == normalize_color("dark blue") == "blue"
    g = goal(goal_options={"color": "navy blue"})
    r, _ = webshop_reward(product(), g, 10.0, {"color": "dark blue"})
    assert r == 1.0


def test_an_option_counts_once_even_if_two_choices_match_it():
    g = goal(goal_options={"scent": "lavender"})
    r, info = webshop_reward(product(), g, 10.0, {"scent": "lavender", "color": "lavender"})
    assert info["num_option_matches"] == 1 and r == 1.0


def test_human_goal_options_are_a_list():
    g = goal(goal_options=["lavender", "2.6 ounce (pack of 1)"])
    assert webshop_reward(product(), g, 10.0, ALL_OPTIONS)[0] == 1.0
    assert webshop_reward(product(), g, 10.0, {})[0] == pytest.approx(3 / 5)


def test_price_above_budget():
    r, info = webshop_reward(product(), goal(), 25.0, ALL_OPTIONS)
    assert r == pytest.approx(4 / 5) and info["r_price"] is False
    assert webshop_reward(product(), goal(), 20.0, ALL_OPTIONS)[0] == 1.0  # at the bound is within


def test_missing_attribute_and_attribute_found_in_text():
    g = goal(attributes=["aluminum free", "long lasting", "cruelty free"])
    r, info = webshop_reward(product(), g, 10.0, ALL_OPTIONS)
    assert r == pytest.approx(5 / 6) and info["num_attr_matches"] == 2
    # not in the attribute list, but in the title: counts
    g = goal(attributes=["aluminum free", "gentle"])
    assert webshop_reward(product(), g, 10.0, ALL_OPTIONS)[0] == 1.0
    # fuzzy match against the attribute list (punctuation and case do not matter)
    g = goal(attributes=["Long-Lasting", "aluminum free"])
    assert webshop_reward(product(), g, 10.0, ALL_OPTIONS)[0] == 1.0


def test_wrong_type_is_zero():
    lotion = product(
        Title="Vanilla Body Lotion",
        name="Vanilla Body Lotion",
        query="body lotion",
        product_category="Beauty & Personal Care › Skin Care › Body › Lotions",
    )
    info = type_reward(lotion, goal())
    assert info == {"r_type": 0.0, "query_match": False, "category_match": False, "title_score": 0.0}
    assert webshop_reward(lotion, goal(), 10.0, ALL_OPTIONS)[0] == 0.0


def test_type_factor_half_and_tenth():
    other = {"query": "lotion", "product_category": "Health › Lotions"}
    # one goal noun in seven shared (1/7 > 0.1 but not > 0.2), no query or category match: 0.5
    half = product(name="Acme Lotion", Title="Acme Lotion", **other)
    assert len(content_words(TITLE)) == 7
    assert type_reward(half, goal())["r_type"] == 0.5
    assert webshop_reward(half, goal(), 10.0, ALL_OPTIONS)[0] == 0.5  # attributes and options all match
    assert webshop_reward(half, goal(), 25.0, ALL_OPTIONS)[0] == pytest.approx(0.5 * 4 / 5)
    # the same product is fine when the query matches
    assert type_reward(product(name="Acme Lotion", Title="Acme Lotion"), goal())["r_type"] == 1.0
    # 1 of 12 nouns shared (< 0.1): 0.1
    long_name = "acme alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo"
    g = goal(name=long_name)
    assert type_reward(half, g)["title_score"] == pytest.approx(1 / 12)
    assert type_reward(half, g)["r_type"] == 0.1
    # two shared category levels are a match
    cat = product(name="Acme Lotion", query="x", product_category="Beauty & Personal Care › Personal Care › Soap")
    assert type_reward(cat, goal())["category_match"] is True


def test_goal_without_options():
    g = goal(goal_options={})
    r, info = webshop_reward(product(), g, 10.0, {})
    assert r == 1.0 and info["r_option"] is None
    assert webshop_reward(product(), g, 30.0, {})[0] == pytest.approx(2 / 3)


def test_scores_follow_the_original_fuzzy_preprocessing():
    assert token_set_score("Long Lasting!", "long lasting") == 100
    assert token_set_score("", "x") == 0
    assert token_set_score("café", "caf") == 100  # non-ASCII dropped
