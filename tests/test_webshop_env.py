"""WebShopEnv: pages, transitions, pagination, invalid actions, episode end, determinism."""

from __future__ import annotations

import pytest

from hgpo_cli.envs.base import TaskSpec
from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE, is_admissible, parse_action
from hgpo_cli.envs.webshop.catalogue import Catalogue, generate
from hgpo_cli.envs.webshop.env import WebShopEnv

CAT = "Home & Kitchen › Gadgets › Widgets"


def _widget(i: int) -> dict:
    return {
        "asin": f"B00000W{i:03d}",
        "name": f"Widget number {i}",
        "Title": f"Widget number {i}",
        "category": "furniture",
        "query": "widget",
        "product_category": CAT,
        "Description": f"Widget {i} description.",
        "BulletPoints": [f"feature one of {i}", f"feature two of {i}"],
        "Price": f"${10 + i}.00",
        "pricing": [10.0 + i],
        "options": {"color": ["black", "white"], "size": ["small", "large"]},
        "Attributes": ["easy clean"],
        "Reviews": [{"title": "Nice", "score": 5, "body": "Works."}] if i == 0 else [],
        "Rating": "5.0" if i == 0 else "N.A.",
    }


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    products = [_widget(i) for i in range(25)]
    gizmo = {"asin": "B00000G001", "name": "Gizmo", "Title": "Gizmo", "query": "gizmo", "Description": "A gizmo."}
    products.append({**_widget(99), **gizmo, "BulletPoints": ["shiny"]})
    goal = {
        "asin": "B00000W000",
        "category": "furniture",
        "query": "widget",
        "name": "Widget number 0",
        "product_category": CAT,
        "instruction_text": (
            "i need an easy clean widget with color: white, and size: large, and price lower than 20.00 dollars"
        ),
        "attributes": ["easy clean"],
        "price_upper": 20.0,
        "goal_options": {"color": "white", "size": "large"},
    }
    prices = {p["asin"]: p["pricing"][0] for p in products}
    return Catalogue(products=products, prices=prices, goals=[goal], real=False, source="test")


def make(catalogue, max_steps=30) -> WebShopEnv:
    return WebShopEnv(TaskSpec("webshop", "0", "furniture"), catalogue, 0, max_steps=max_steps)


def test_search_page(catalogue):
    res = make(catalogue).reset()
    assert res.observation == "'Search'"
    assert res.admissible_actions == [SEARCH_TEMPLATE]
    assert res.instruction.startswith("i need an easy clean widget")
    assert (res.reward, res.done, res.won) == (0.0, False, False)


def test_pagination(catalogue):
    env = make(catalogue)
    env.reset()
    res = env.step("search[widget]")
    seg = res.observation.split(" [SEP] ")
    assert seg[:3] == ["'Back to Search'", "'Page 1 (Total results: 25)'", "'Next >'"]
    assert len(seg) == 3 + 10 * 3
    assert res.admissible_actions[:2] == ["click[back to search]", "click[next >]"]
    assert len([a for a in res.admissible_actions if a.startswith("click[b00000w")]) == 10
    page1 = res.observation
    res = env.step("click[next >]")
    assert res.observation.split(" [SEP] ")[:4] == [
        "'Back to Search'",
        "'Page 2 (Total results: 25)'",
        "'< Prev'",
        "'Next >'",
    ]
    res = env.step("click[next >]")
    seg = res.observation.split(" [SEP] ")
    assert seg[1] == "'Page 3 (Total results: 25)'" and "'Next >'" not in seg
    assert len(seg) == 3 + 5 * 3
    assert "click[next >]" not in res.admissible_actions
    res = env.step("click[next >]")
    assert res.info["invalid"]
    env.step("click[< prev]")
    res = env.step("click[< prev]")
    assert res.observation == page1  # same page, same text
    assert "click[< prev]" not in res.admissible_actions


def test_item_page_and_sub_pages(catalogue):
    env = make(catalogue)
    env.reset()
    env.step("search[widget]")
    res = env.step("click[b00000w000]")  # product ids are clicked in lower case
    assert res.observation == (
        "'Back to Search' [SEP] '< Prev' [SEP] 'color' [SEP] 'black' [SEP] 'white' [SEP] 'size' [SEP] 'small'"
        " [SEP] 'large' [SEP] 'Widget number 0' [SEP] 'Price: $10.00' [SEP] 'Rating: 5.0' [SEP] 'Description'"
        " [SEP] 'Features' [SEP] 'Reviews' [SEP] 'Buy Now'"
    )
    assert res.admissible_actions == [
        "click[back to search]",
        "click[< prev]",
        "click[description]",
        "click[features]",
        "click[reviews]",
        "click[buy now]",
        "click[black]",
        "click[white]",
        "click[small]",
        "click[large]",
    ]
    item = res.observation
    res = env.step("click[white]")
    assert res.observation == item and not res.info["invalid"]  # choices are not shown, as in WebShop
    res = env.step("click[description]")
    assert res.observation == "'Back to Search' [SEP] '< Prev' [SEP] 'Widget 0 description.'"
    assert res.admissible_actions == ["click[back to search]", "click[< prev]"]
    res = env.step("click[< prev]")
    assert res.observation == item
    res = env.step("click[features]")
    assert res.observation.endswith("'feature one of 0' [SEP] 'feature two of 0'")
    env.step("click[< prev]")
    res = env.step("click[reviews]")
    assert res.observation.endswith("'\"Nice\"' [SEP] '5' [SEP] 'Works.'")
    env.step("click[< prev]")
    assert env.options == {"color": "white"}  # kept across sub-pages
    res = env.step("click[< prev]")  # item -> its results page, options cleared
    assert res.observation.split(" [SEP] ")[1] == "'Page 1 (Total results: 25)'" and env.options == {}
    res = env.step("click[back to search]")
    assert res.observation == "'Search'" and res.admissible_actions == [SEARCH_TEMPLATE]


def test_buy_with_all_options_wins(catalogue):
    env = make(catalogue)
    env.reset()
    env.step("search[easy clean widget]")
    env.step("click[b00000w000]")
    env.step("click[white]")
    env.step("click[large]")
    res = env.step("click[Buy Now]")  # case does not matter
    assert res.done and res.won and res.reward == 1.0
    assert res.admissible_actions == []
    assert res.info["purchased_options"] == {"color": "white", "size": "large"}
    after = env.step("click[buy now]")
    assert after.done and after.reward == 0.0 and after.info["invalid"]


def test_buy_partial(catalogue):
    env = make(catalogue)
    env.reset()
    env.step("search[widget]")
    env.step("click[next >]")
    res = env.step("click[b00000w012]")  # price 22 > 20, no options chosen
    res = env.step("click[buy now]")
    # attribute 1 of 1, options 0 of 2, price 0: 1/4, type matches (same query)
    assert res.done and not res.won and res.reward == pytest.approx(1 / 4)


@pytest.mark.parametrize(
    "action",
    [
        "search[",
        "search[]",
        "search[   ]",
        "click[]",
        "click[nothing here]",
        "jump[widget]",
        "",
        "buy now",
        "click[next >",
        "click[b00000w000]",
        "click[white]",
        "click[< prev]",
        None,
        42,
    ],
)
def test_invalid_actions_keep_the_page(catalogue, action):
    env = make(catalogue)
    start = env.reset()
    res = env.step(action)
    assert res.info["invalid"] is True
    assert res.observation == start.observation and res.admissible_actions == start.admissible_actions
    assert (res.reward, res.done) == (0.0, False)


def test_search_needs_the_search_bar(catalogue):
    env = make(catalogue)
    env.reset()
    res = env.step("search[widget]")
    again = env.step("search[gizmo]")
    assert again.info["invalid"] and again.observation == res.observation
    assert not is_admissible("search[gizmo]", res.admissible_actions)
    assert is_admissible("search[gizmo]", [SEARCH_TEMPLATE])
    assert not is_admissible("search[ ]", [SEARCH_TEMPLATE])
    assert is_admissible("click[Next >]", res.admissible_actions)
    assert not is_admissible("click[buy now]", res.admissible_actions)


def test_parse_action():
    assert parse_action(" Search[ Red  Shoes ] ") == ("search", "red shoes")
    assert parse_action("click[< Prev]") == ("click", "< prev")
    assert parse_action("click[a [b] c]") == ("click", "a [b] c")
    assert parse_action("search[") is None and parse_action("search[]") is None
    assert parse_action("look[x]") is None


def test_no_results(catalogue):
    env = make(catalogue)
    env.reset()
    res = env.step("search[the of and]")
    assert res.observation == "'Back to Search' [SEP] 'Page 1 (Total results: 0)'"
    assert res.admissible_actions == ["click[back to search]"]


def test_max_steps_ends_the_episode(catalogue):
    env = make(catalogue, max_steps=3)
    env.reset()
    env.step("search[widget]")
    env.step("click[nothing]")  # invalid actions count
    res = env.step("click[b00000w001]")
    assert res.done and not res.won and res.reward == 0.0 and res.info["truncated"]


def test_reset_starts_over(catalogue):
    env = make(catalogue)
    first = env.reset()
    env.step("search[widget]")
    env.step("click[b00000w000]")
    env.step("click[white]")
    again = env.reset()
    assert again.observation == first.observation and env.options == {} and env.steps == 0


def test_original_text_mode(catalogue):
    env = make(catalogue)
    env.reset()
    assert env.page_text().startswith("WebShop [SEP] Instruction: [SEP] i need an easy clean widget")
    env.step("search[gizmo]")
    assert env.page_text().split(" [SEP] ")[2:5] == [
        "Back to Search",
        "Page 1 (Total results: 1)",
        "B00000G001",
    ]


def test_identical_runs_give_identical_steps():
    cat_a = generate(3, 300, 20)
    cat_b = generate(3, 300, 20)
    assert cat_a.products == cat_b.products and cat_a.goals == cat_b.goals and cat_a.prices == cat_b.prices
    assert generate(4, 300, 20).products != cat_a.products

    def run(cat):
        env = WebShopEnv(TaskSpec("webshop", "5", "x"), cat, 5, max_steps=15)
        out = [env.reset()]
        for action in ["search[" + cat.goals[5]["instruction_text"][:40] + "]", "click[next >]", "click[< prev]"]:
            out.append(env.step(action))
        first = next(a for a in out[-1].admissible_actions if a.startswith("click[b0"))
        out.append(env.step(first))
        out.append(env.step("click[buy now]"))
        return [(r.observation, r.reward, r.done, tuple(r.admissible_actions)) for r in out]

    assert run(cat_a) == run(cat_b)
