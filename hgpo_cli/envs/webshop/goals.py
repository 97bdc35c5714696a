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


def split_range(split: str, num_goals: int, *, real: bool) -> range:
    """Goal indices of a split. Real data: the original's ranges, test 0-500, validation 500-1500, train
    the rest. Generated goals: the same order of splits in proportion, test the first 10%, validation the
    next 10%, train the remaining 80% (so a default 1500-goal set still has a train split)."""
    if split not in SPLITS:
        from hgpo_cli.errors import UserError

        raise UserError(f"unknown WebShop split '{split}' (one of {', '.join(SPLITS)})")
    if real:
        test_end, val_end = min(500, num_goals), min(1500, num_goals)
    else:
        test_end = max(1, num_goals // 10) if num_goals >= 3 else 0
        val_end = test_end + (max(1, num_goals // 10) if num_goals >= 3 else 0)
    return {"test": range(0, test_end), "validation": range(test_end, val_end), "train": range(val_end, num_goals)}[
        split
    ]
