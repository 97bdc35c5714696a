"""WebShop goals: how the original builds them from its files, how we build them for a generated catalogue,
and the goal splits.

A goal is a dict: `asin` (the product it was written for), `category`, `query`, `name`,
`product_category`, `instruction_text`, `attributes`, `price_upper`, `goal_options` (a dict for
synthetic goals, a list of values for human goals), `weight`.

Price bounds follow the original: among the multiples of 10 above the product's price, take the first
four, draw two and keep the larger (no bound, 1e6, when fewer than two exist).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

from hgpo_cli.envs.webshop.reward import NO_BUDGET

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
GOAL_SHUFFLE_SEED = 233  # the original shuffles its goals with random.seed(233)
SPLITS = ("train", "validation", "test")


def price_bound(rng: random.Random, price: float) -> tuple[float, str]:
    """(price_upper, the text appended to the instruction)."""
    candidates = [p for p in PRICE_RANGE if p > price][:4]
    if len(candidates) >= 2:
        _, upper = sorted(rng.sample(candidates, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return NO_BUDGET, ""


def human_goals(products: list[dict[str, Any]], prices: dict[str, float], rng: random.Random) -> list[dict]:
    """Goals from `items_human_ins.json` (products carry `instructions`), in the original's order."""
    goals = []
    for item in products:
        for ins in item.get("instructions") or []:
            attributes = ins.get("instruction_attributes") or []
            if not attributes:
                continue
            upper, price_text = price_bound(rng, prices[item["asin"]])
            goals.append(
                {
                    "asin": item["asin"],
                    "category": item["category"],
                    "query": item["query"],
                    "name": item["name"],
                    "product_category": item["product_category"],
                    "instruction_text": ins["instruction"].strip(".") + price_text,
                    "attributes": attributes,
                    "price_upper": upper,
                    "goal_options": ins.get("instruction_options") or [],
                    "weight": 1,
                }
            )
    return goals


def synthetic_goals(products: list[dict[str, Any]], prices: dict[str, float], rng: random.Random) -> list[dict]:
    """Goals from `items_ins_v2*.json` (products carry `instruction_text`, `instruction_attributes`): one
    goal per combination of the product's option values, as the original does."""
    goals = []
    counts: dict[str, int] = defaultdict(int)
    for product in products:
        if not product.get("instruction_text"):
            continue
        attributes = product.get("instruction_attributes") or []
        if not attributes:
            continue
        upper, price_text = price_bound(rng, prices[product["asin"]])
        names = sorted(product.get("options") or {})
        for combination in itertools.product(*(product["options"][n] for n in names)):
            goal_options = dict(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
            option_text = " with " + option_text if option_text else ""
            goals.append(
                {
                    "asin": product["asin"],
                    "category": product["category"],
                    "query": product["query"],
                    "name": product["Title"],
                    "product_category": product["product_category"],
                    "instruction_text": f"{product['instruction_text']}{option_text}{price_text}",
                    "attributes": attributes,
                    "price_upper": upper,
                    "goal_options": goal_options,
                }
            )
            for att in attributes:
                counts[att] += 1
    for goal in goals:
        goal["weight"] = sum(1.0 / counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    return goals


def shuffle_goals(goals: list[dict]) -> list[dict]:
    """The original's fixed goal order: `random.seed(233); random.shuffle(goals)`."""
    goals = list(goals)
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return goals


GOAL_SPLITS = ("verl-agent", "webshop")
# verl-agent's WebShop env (env_package/webshop/envs.py): validation goals range(500), training goals
# range(500, len(goals)); it has no separate test set, so test and validation are the same goals.
VERL_AGENT_EVAL_GOALS = 500
# The original WebShop's ranges (its baseline_models): test 0-499, validation ("eval") 500-1499, train 1500+.
WEBSHOP_TEST_END, WEBSHOP_VAL_END = 500, 1500


def split_range(split: str, num_goals: int, *, real: bool, scheme: str = "verl-agent") -> range:
    """Goal indices of a split under `scheme` (`env.webshop.goal_split`).

    verl-agent: test = validation = goals 0-499, train 500 onwards. webshop: test 0-499, validation
    500-1499, train 1500 onwards. Real data uses these indices (cut at `num_goals`); so does a generated set
    large enough to train on at least as many goals as it evaluates on (1000 goals for verl-agent, 3000 for
    webshop). Smaller generated sets keep the shape in proportion, 10% per evaluation range (verl-agent:
    test = validation = the first 10%, train the other 90%; webshop: 10% / 10% / 80%).
    """
    from hgpo_cli.errors import UserError

    if split not in SPLITS:
        raise UserError(f"unknown WebShop split '{split}' (one of {', '.join(SPLITS)})")
    if scheme not in GOAL_SPLITS:
        raise UserError(f"unknown env.webshop.goal_split '{scheme}' (one of {', '.join(GOAL_SPLITS)})")
    fixed_end = VERL_AGENT_EVAL_GOALS if scheme == "verl-agent" else WEBSHOP_VAL_END
    if real or num_goals >= 2 * fixed_end:
        test_end = min(VERL_AGENT_EVAL_GOALS if scheme == "verl-agent" else WEBSHOP_TEST_END, num_goals)
        val_end = min(WEBSHOP_VAL_END, num_goals)
    else:
        tenth = max(1, num_goals // 10) if num_goals >= 3 else 0
        test_end, val_end = tenth, 2 * tenth
    if scheme == "verl-agent":
        return {"test": range(0, test_end), "validation": range(0, test_end), "train": range(test_end, num_goals)}[
            split
        ]
    return {"test": range(0, test_end), "validation": range(test_end, val_end), "train": range(val_end, num_goals)}[
        split
    ]
