"""The loader of the real WebShop files, on a small sample in the original format written here."""

from __future__ import annotations

import json
import random

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.envs.webshop import catalogue as catalogue_mod
from hgpo_cli.envs.webshop import suite
from hgpo_cli.envs.webshop.catalogue import load_real
from hgpo_cli.envs.webshop.goals import split_range
from hgpo_cli.errors import UserError

CAT = "Clothing, Shoes & Jewelry › Women › Shoes › Sandals"


def raw_product(i: int, **extra) -> dict:
    p = {
        "asin": f"B0SANDAL{i:02d}",
        "name": f"Summer Flat Sandal {i} for Women",
        "full_description": f"Comfortable sandal number {i}.",
        "small_description": [f"Rubber sole {i}", "Open toe"],
        "pricing": f"${20 + i}.99",
        "customization_options": {
            "Color": [{"value": "Black/White", "image": "x.jpg"}, {"value": " Tan ", "image": None}],
            "Size": [{"value": "7"}, {"value": "8"}],
        },
        "category": "fashion",
        "query": " Sandals ",
        "product_category": CAT,
        "images": ["a.jpg"],
        "brand": "dropped",
    }
    p.update(extra)
    return p


@pytest.fixture()
def data_dir(tmp_path):
    products = [raw_product(i) for i in range(12)]
    products[3]["pricing"] = "$15.00$25.00"  # a price range
    products[4]["pricing"] = None  # no price: $100
    products[5]["customization_options"] = None
    products += [
        raw_product(50, asin="nan"),  # skipped
        raw_product(51, asin="B0TOOLONGASIN"),  # skipped
        raw_product(52, asin="B0SANDAL00", name="duplicate"),  # a repeated asin: skipped
    ]
    attrs = {
        f"B0SANDAL{i:02d}": {
            "attributes": ["rubber sole", "open toe"],
            "instruction": f"i want sandal {i}",
            "instruction_attributes": ["rubber sole"],
        }
        for i in range(12)
    }
    del attrs["B0SANDAL06"]  # no attributes: DUMMY_ATTR, and no synthetic goal
    human = {
        f"B0SANDAL{i:02d}": [
            {
                "instruction": f"i need flat sandals {i} with a rubber sole in black white color.",
                "instruction_attributes": ["rubber sole"],
                "instruction_options": ["black | white", "7"],
            },
            {"instruction": "skipped: no attributes", "instruction_attributes": [], "instruction_options": []},
        ]
        for i in range(10)
    }
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(products))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    (tmp_path / "items_human_ins.json").write_text(json.dumps(human))
    return tmp_path


def test_products_are_cleaned_like_the_original(data_dir):
    cat = load_real(data_dir)
    assert [p["asin"] for p in cat.products] == [f"B0SANDAL{i:02d}" for i in range(12)]
    p0 = cat.by_asin["B0SANDAL00"]
    assert p0["Title"] == p0["name"] == "Summer Flat Sandal 0 for Women"
    assert p0["options"] == {"color": ["black | white", "tan"], "size": ["7", "8"]}
    assert p0["query"] == "sandals" and p0["Price"] == "$20.99" and p0["pricing"] == [20.99]
    assert p0["BulletPoints"] == ["Rubber sole 0", "Open toe"] and p0["Description"].startswith("Comfortable")
    assert p0["Attributes"] == ["rubber sole", "open toe"] and p0["Rating"] == "N.A."
    assert "brand" not in p0
    assert cat.by_asin["B0SANDAL03"]["Price"] == "$15.0 to $25.0"
    assert 15.0 <= cat.prices["B0SANDAL03"] <= 25.0
    assert cat.by_asin["B0SANDAL04"]["Price"] == "$100.0" and cat.prices["B0SANDAL04"] == 100.0
    assert cat.by_asin["B0SANDAL05"]["options"] == {}
    assert cat.by_asin["B0SANDAL06"]["Attributes"] == ["DUMMY_ATTR"]


def test_human_goals_order_and_splits(data_dir):
    cat = load_real(data_dir, human_goals=True)
    assert len(cat.goals) == 10  # one per product with instructions; empty-attribute ones are skipped
    # the original order: goals in product order, then random.seed(233); random.shuffle(goals)
    unshuffled = [f"B0SANDAL{i:02d}" for i in range(10)]
    random.Random(233).shuffle(unshuffled)
    assert [g["asin"] for g in cat.goals] == unshuffled
    g = next(g for g in cat.goals if g["asin"] == "B0SANDAL00")
    assert g["instruction_text"].startswith("i need flat sandals 0 with a rubber sole in black white color")
    assert g["instruction_text"].endswith(" dollars")  # ", and price lower than X dollars", no trailing '.'
    assert g["price_upper"] in (30.0, 40.0, 50.0, 60.0) and g["price_upper"] > cat.prices["B0SANDAL00"]
    assert g["goal_options"] == ["black | white", "7"] and g["category"] == "fashion"
    assert cat.real and list(cat.split("test")) == list(range(10))
    # the original WebShop's ranges
    assert list(split_range("test", 12087, real=True, scheme="webshop")) == list(range(500))
    assert split_range("validation", 12087, real=True, scheme="webshop") == range(500, 1500)
    assert split_range("train", 12087, real=True, scheme="webshop") == range(1500, 12087)
    # verl-agent's (envs.py: validation range(500), train range(500, len(goals))), the default
    assert split_range("test", 12087, real=True) == split_range("validation", 12087, real=True) == range(500)
    assert split_range("train", 12087, real=True) == range(500, 12087)


def test_defaults_are_verl_agents_small_synthetic_setting(data_dir):
    (data_dir / "items_shuffle.json").write_text("[]")  # a full file present: the small one is still used
    cat = load_real(data_dir)
    assert cat.source.endswith(":items_shuffle_1000.json:synthetic:None")
    assert all(isinstance(g["goal_options"], dict) for g in cat.goals) and len(cat.goals) == 41
    with pytest.raises(UserError, match="yields no goals"):
        load_real(data_dir, use_small=False)  # the (empty) full file


def test_synthetic_goals_one_per_option_combination(data_dir):
    cat = load_real(data_dir, human_goals=False)
    # 11 products with an instruction; 10 have 2 x 2 option values, one has no options
    assert len(cat.goals) == 10 * 4 + 1
    g = next(g for g in cat.goals if g["asin"] == "B0SANDAL01" and g["goal_options"] == {"color": "tan", "size": "8"})
    assert g["instruction_text"].startswith("i want sandal 1 with color: tan, and size: 8, and price lower than")
    assert g["name"] == "Summer Flat Sandal 1 for Women"


def test_limit_and_errors(data_dir, tmp_path_factory):
    assert len(load_real(data_dir, limit=5).products) == 5
    with pytest.raises(UserError, match="no products file"):
        load_real(tmp_path_factory.mktemp("empty"))
    with pytest.raises(UserError, match="not a folder"):
        load_real(data_dir / "missing")


def test_oracle_plays_the_real_format(data_dir):
    catalogue_mod._CATALOGUES.clear()
    overrides = ["env.name=webshop", f"env.webshop.data_dir={data_dir}", "env.max_steps=15"]
    cfg = load_config("smollm2", [*overrides, "env.webshop.human_goals=true"])
    tasks = suite.list_tasks(cfg, "test")
    assert len(tasks) == 10 and {t.task_type for t in tasks} == {"fashion"}
    out = suite.check(cfg, "test", walkthrough=True)
    assert out["games"] == out["loaded"] == 10
    # product 5 has no options, so its goal's two options cannot be met: r = (1 + 0 + 1) / 4 there
    assert out["won"] == 9 and out["score"] == pytest.approx(100 * (9 + 0.5) / 10)
    assert out["by_task_type"] == {"fashion": {"games": 10, "loaded": 10, "won": 9}}
    env = suite.make_env(tasks[0], cfg)
    res = env.reset()
    assert res.observation == "'Search'" and res.instruction == env.goal["instruction_text"]


def test_oracle_plays_the_default_synthetic_goals_under_masters_rules(data_dir):
    catalogue_mod._CATALOGUES.clear()
    cfg = load_config("smollm2", ["env.name=webshop", f"env.webshop.data_dir={data_dir}", "env.max_steps=15"])
    # 41 synthetic goals, all below index 500: verl-agent's split evaluates on all of them, trains on none
    assert len(suite.list_tasks(cfg, "test")) == len(suite.list_tasks(cfg, "validation")) == 41
    assert suite.list_tasks(cfg, "train") == []
    out = suite.check(cfg, "test", walkthrough=True)
    # master: ('color', 'black | white') is matched by 'black | white' -> 'black' (a token of the pair),
    # ('color', 'tan') becomes 'tan', ('size', '7') is matched by '7': the oracle wins every goal
    assert out["games"] == out["loaded"] == 41
    assert out["won"] == 41 and out["score"] == pytest.approx(100.0)
    catalogue_mod._CATALOGUES.clear()
