"""A test oracle: WebShop master's reward (`web_agent_site/engine/goal.py`, the copy verl-agent ships),
transcribed formula by formula, written for the tests and kept independent of `hgpo_cli.envs.webshop`.

Text scores are those of `thefuzz==0.19.0` (master's pin) without python-Levenshtein, i.e. difflib.
`sample_pairs` draws (goal, purchase) pairs from a catalogue for term-by-term agreement checks.
"""

from __future__ import annotations

import difflib
import random
import re
from typing import Any

# engine/normalize.py COLOR_SET, in its order
MASTER_COLORS = [
    "alabaster",
    "apricot",
    "aqua",
    "ash",
    "asphalt",
    "azure",
    "banana",
    "beige",
    "black",
    "blue",
    "blush",
    "bordeaux",
    "bronze",
    "brown",
    "burgundy",
    "camel",
    "camo",
    "caramel",
    "champagne",
    "charcoal",
    "cheetah",
    "chestnut",
    "chocolate",
    "christmas",
    "coffee",
    "cognac",
    "copper",
    "coral",
    "cranberry",
    "cream",
    "crystal",
    "dark",
    "denim",
    "eggplant",
    "elephant",
    "espresso",
    "fuchsia",
    "gold",
    "granite",
    "grape",
    "graphite",
    "grass",
    "gray",
    "green",
    "grey",
    "heather",
    "indigo",
    "ivory",
    "ivy",
    "khaki",
    "lavender",
    "lemon",
    "leopard",
    "light",
    "lilac",
    "lime",
    "magenta",
    "maroon",
    "mauve",
    "merlot",
    "midnight",
    "mint",
    "mocha",
    "multicolor",
    "mushroom",
    "mustard",
    "natural",
    "navy",
    "nude",
    "olive",
    "orange",
    "peach",
    "pewter",
    "pink",
    "plum",
    "purple",
    "rainbow",
    "red",
    "rose",
    "royal",
    "rust",
    "sand",
    "sapphire",
    "seashell",
    "silver",
    "skull",
    "slate",
    "steel",
    "stone",
    "stonewash",
    "sunflower",
    "tan",
    "taupe",
    "teal",
    "tiger",
    "turquoise",
    "violet",
    "walnut",
    "wheat",
    "white",
    "wine",
    "yellow",
]


def ref_normalize_color(x: Any) -> Any:
    # `norm_color in color_string`: a substring test on text, element equality on a tuple
    for c in MASTER_COLORS:
        if c in x:
            return c
    return x


def _full_process(s: Any) -> str:
    s = str(s)  # thefuzz: non-strings go through str()
    s = "".join(ch for ch in s if not 128 <= ord(ch) <= 255)
    s = re.sub(r"\W", " ", s)
    return s.lower().strip()


def _ratio(a: str, b: str) -> int:
    if a == b:
        return 100
    if len(a) == 0 or len(b) == 0:
        return 0
    return int(round(100 * difflib.SequenceMatcher(None, a, b).ratio()))


def ref_token_set_ratio(s1: Any, s2: Any) -> int:
    p1, p2 = _full_process(s1), _full_process(s2)
    if len(p1) == 0 or len(p2) == 0:
        return 0
    t1, t2 = set(p1.split()), set(p2.split())
    common = " ".join(sorted(t1.intersection(t2)))
    c1 = (common + " " + " ".join(sorted(t1.difference(t2)))).strip()
    c2 = (common + " " + " ".join(sorted(t2.difference(t1)))).strip()
    common = common.strip()
    return max([_ratio(common, c1), _ratio(common, c2), _ratio(c1, c2)])


def ref_type_reward(purchased: dict, goal: dict, nouns) -> dict:
    query_match = purchased["query"] == goal["query"]
    pc = [x.strip() for x in purchased["product_category"].split("›")]
    gc = [x.strip() for x in goal["product_category"].split("›")]
    category_match = len(set(pc) & set(gc)) >= 2
    p_nouns = nouns(purchased["name"])
    g_nouns = nouns(goal["name"])
    n_common = len(set(p_nouns) & set(g_nouns))
    title_score = 0.2 if len(g_nouns) == 0 else n_common / len(g_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match, "title_score": title_score}


def ref_attribute_matches(purchased: dict, goal: dict) -> int:
    n = 0
    for g_attr in goal["attributes"]:
        found = False
        for p_attr in purchased["Attributes"]:
            if ref_token_set_ratio(p_attr, g_attr) > 85:
                n += 1
                found = True
                break
        if not found and (
            g_attr in purchased["Title"].lower()
            or g_attr in " ".join(purchased["BulletPoints"]).lower()
            or g_attr in purchased["Description"].lower()
        ):
            n += 1
    return n


def ref_option_matches(purchased_values: list, goal_options: list) -> int:
    chosen = [ref_normalize_color(o) for o in purchased_values]
    wanted = [ref_normalize_color(o) for o in goal_options]
    n = 0
    for g in wanted:
        for p in chosen:
            if ref_token_set_ratio(p, g) > 85:
                n += 1
                break
    return n


def ref_reward(purchased: dict, goal: dict, price: float, options: dict, nouns) -> dict:
    """master's get_reward(purchased_product, goal, price, options): the total and every term."""
    t = ref_type_reward(purchased, goal, nouns)
    r_price = (price <= goal["price_upper"]) if goal["price_upper"] > 0 else None
    n_att = ref_attribute_matches(purchased, goal)
    g_opts = goal["goal_options"]
    n_opt = ref_option_matches(list(options.values()), list(g_opts.items()) if isinstance(g_opts, dict) else g_opts)
    total = (n_att + n_opt + r_price) / (len(goal["attributes"]) + len(g_opts) + 1) * t["r_type"]
    return {"total": total, "num_attr_matches": n_att, "num_option_matches": n_opt, "r_price": r_price, **t}


def sample_pairs(catalogue: Any, n: int, seed: int = 0) -> list[tuple[dict, dict, float, dict]]:
    """`n` (goal, product, price, chosen options) draws, a quarter of each kind: the goal's product with
    the goal's option values; the goal's product with random values; another product of the same
    query with random values; any product with random values (a random subset of its options chosen)."""
    rng = random.Random(seed)
    by_query: dict[str, list[dict]] = {}
    for p in catalogue.products:
        by_query.setdefault(p["query"], []).append(p)
    pairs = []
    for k in range(n):
        goal = rng.choice(catalogue.goals)
        own = catalogue.by_asin[goal["asin"]]
        kind = k % 4
        if kind == 0:
            product = own
            opts = goal["goal_options"]
            chosen = dict(opts) if isinstance(opts, dict) else {}
        else:
            product = own if kind == 1 else rng.choice(by_query[own["query"]] if kind == 2 else catalogue.products)
            names = [m for m in product["options"] if rng.random() < 0.8]
            chosen = {m: rng.choice(product["options"][m]) for m in names}
        pairs.append((goal, product, float(catalogue.prices[product["asin"]]), chosen))
    return pairs
