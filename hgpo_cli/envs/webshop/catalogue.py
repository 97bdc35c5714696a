"""The product catalogue and its goals: the real WebShop files when given, else a generated catalogue.

Products are dicts with the keys WebShop's engine uses: `asin`, `name`, `Title`, `category`, `query`,
`product_category`, `Price` (the shown tag), `pricing` (one price or a [low, high] range), `options`
(name -> values, lower case), `Attributes`, `Description`, `BulletPoints`, `Reviews`, `Rating`.

- `load_real(data_dir, ...)` reads `items_shuffle.json` / `items_shuffle_1000.json`, `items_ins_v2*.json`
  and `items_human_ins.json` the way the original engine does (same filtering, option clean-up, prices,
  goals and goal order).
- `generate(seed, num_products, num_goals)` makes a catalogue over WebShop's five categories and goals
  the way WebShop writes its synthetic goals (attributes, options, a price bound). Deterministic in the
  seed; `load_generated` keeps it in `cache_dir()/webshop/generated-<seed>-<n>/`.
- `get_catalogue(cfg.env.webshop)` returns the catalogue of a config, loaded once per process, with its
  search index built on first use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hgpo_cli.envs.webshop import goals as goal_lib
from hgpo_cli.envs.webshop import vocab
from hgpo_cli.envs.webshop.reward import fuzzy_match, normalize_color
from hgpo_cli.errors import UserError

GENERATOR_VERSION = 2
PRICE_SEED = 233


@dataclass
class Catalogue:
    """Products, their prices (what the reward compares with the budget), and the shuffled goals."""

    products: list[dict[str, Any]]
    prices: dict[str, float]
    goals: list[dict[str, Any]]
    real: bool
    source: str
    by_asin: dict[str, dict[str, Any]] = field(default_factory=dict)
    _search: Any = None

    def __post_init__(self) -> None:
        if not self.by_asin:
            self.by_asin = {p["asin"]: p for p in self.products}

    @property
    def search_engine(self):
        """The BM25 index over the products, built on first use."""
        if self._search is None:
            from hgpo_cli.envs.webshop.search import SearchEngine

            self._search = SearchEngine(self.products)
        return self._search

    def split(self, split: str, scheme: str = "verl-agent") -> range:
        """Goal indices of `split` under `scheme` (`env.webshop.goal_split`: verl-agent or webshop)."""
        return goal_lib.split_range(split, len(self.goals), real=self.real, scheme=scheme)


# --------------------------------------------------------------------------------------------------
# Real WebShop files


def _pick_file(data_dir: Path, names: list[str], what: str) -> Path:
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise UserError(f"env.webshop.data_dir={str(data_dir)!r} has no {what} ({' or '.join(names)})")


def _parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """The original's price parsing: '$12.99' -> [12.99]; '$10.99$15.99' (a range) -> [10.99, 15.99]."""
    if not pricing:
        return [100.0], "$100.0"
    values = []
    for part in str(pricing).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        if digits:
            values.append(float(Decimal(digits)))
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def product_prices(products: list[dict[str, Any]], rng: random.Random) -> dict[str, float]:
    """The price each product sells at: its single price, or a uniform draw in its range (as the original)."""
    prices = {}
    for p in products:
        pricing = p["pricing"]
        if not pricing:
            prices[p["asin"]] = 100.0
        elif len(pricing) == 1:
            prices[p["asin"]] = pricing[0]
        else:
            prices[p["asin"]] = rng.uniform(*pricing[:2])
    return prices


def load_real(
    data_dir: str | Path,
    *,
    human_goals: bool = False,
    products_file: str | None = None,
    limit: int | None = None,
    use_small: bool = True,
) -> Catalogue:
    """Load the original WebShop data from `data_dir`.

    products_file: a products file by name; unset: `items_shuffle_1000.json` with `use_small` (verl-agent's
    `env.webshop.use_small`, its default), else `items_shuffle.json` (each falls back to the other when
    absent); the attributes file follows it (`items_ins_v2.json` / `items_ins_v2_1000.json`); human goals come from
    `items_human_ins.json`. limit: keep the first N products (the original's num_products).
    Goal order and splits are the original's; price draws use a fixed seed (the original left them
    unseeded, so its price bounds vary from run to run).
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"env.webshop.data_dir={str(data_dir)!r} is not a folder")
    if products_file:
        prod_path = _pick_file(root, [products_file], "products file")
    else:
        names = ["items_shuffle.json", "items_shuffle_1000.json"]
        prod_path = _pick_file(root, names[::-1] if use_small else names, "products file")
    small = prod_path.name.endswith("_1000.json")
    attr_names = (
        ["items_ins_v2_1000.json", "items_ins_v2.json"] if small else ["items_ins_v2.json", "items_ins_v2_1000.json"]
    )
    attr_path = _pick_file(root, attr_names, "attributes file")
    human_path = _pick_file(root, ["items_human_ins.json"], "human instructions file") if human_goals else None
    try:
        raw_products = json.loads(prod_path.read_text())
        attributes = json.loads(attr_path.read_text())
        human = json.loads(human_path.read_text()) if human_path else {}
        reviews_path = root / "reviews.json"
        reviews = json.loads(reviews_path.read_text()) if reviews_path.is_file() else []
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read the WebShop data in {root}: {err}") from None
    all_reviews = {r["asin"]: r.get("reviews") or [] for r in reviews}
    all_ratings = {r["asin"]: r.get("average_rating", "N.A.") for r in reviews}
    if limit is not None:
        raw_products = raw_products[:limit]

    products: list[dict[str, Any]] = []
    seen: set[str] = set()
    for p in raw_products:
        asin = str(p.get("asin", "nan"))
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        pricing, price_tag = _parse_pricing(p.get("pricing"))
        options: dict[str, list[str]] = {}
        for opt_name, contents in (p.get("customization_options") or {}).items():
            if contents is None:
                continue
            options[opt_name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
        bullets = p.get("small_description")
        item_reviews = []
        for r in all_reviews.get(asin, []):
            item_reviews.append(
                {
                    "title": r.get("title", ""),
                    "score": r.get("score", r.get("stars", "")),
                    "body": r.get("body", r.get("review", "")),
                }
            )
        product = {
            "asin": asin,
            "name": p.get("name", ""),
            "Title": p.get("name", ""),
            "category": p.get("category", ""),
            "query": str(p.get("query", "")).lower().strip(),
            "product_category": p.get("product_category", ""),
            "Description": p.get("full_description") or "",
            "BulletPoints": bullets if isinstance(bullets, list) else [bullets or ""],
            "Price": price_tag,
            "pricing": pricing,
            "options": options,
            "Reviews": item_reviews,
            "Rating": all_ratings.get(asin, "N.A."),
        }
        info = attributes.get(asin) or {}
        product["Attributes"] = info.get("attributes") or ["DUMMY_ATTR"]
        if human_goals:
            if asin in human:
                product["instructions"] = human[asin]
        else:
            product["instruction_text"] = info.get("instruction")
            product["instruction_attributes"] = info.get("instruction_attributes")
        products.append(product)

    rng = random.Random(PRICE_SEED)
    prices = product_prices(products, rng)
    make = goal_lib.human_goals if human_goals else goal_lib.synthetic_goals
    goals = goal_lib.shuffle_goals(make(products, prices, rng))
    if not goals:
        raise UserError(f"the WebShop data in {root} yields no goals")
    source = f"real:{root.resolve()}:{prod_path.name}:{'human' if human_goals else 'synthetic'}:{limit}"
    return Catalogue(products=products, prices=prices, goals=goals, real=True, source=source)


# --------------------------------------------------------------------------------------------------
# Generated catalogue


def _brands(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        k = rng.choice((2, 2, 3))
        names.add("".join(rng.choice(vocab.BRAND_SYLLABLES) for _ in range(k)).capitalize())
    return sorted(names)


def _asin(rng: random.Random, used: set[str]) -> str:
    alphabet = string.digits + string.ascii_uppercase
    while True:
        n = rng.randrange(36**8)
        chars = []
        for _ in range(8):
            n, d = divmod(n, 36)
            chars.append(alphabet[d])
        asin = "B0" + "".join(chars)
        if asin not in used:
            used.add(asin)
            return asin


@functools.cache
def _clashes(pool: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """For each value of a pool, the values the reward could not tell from it (same colour word, or a
    fuzzy match of the normalised texts)."""
    norm = {v: normalize_color(v) for v in pool}
    return {
        v: frozenset(w for w in pool if w != v and (norm[v] == norm[w] or fuzzy_match(norm[v], norm[w]))) for v in pool
    }


def _option_values(rng: random.Random, name: str, pool: tuple[str, ...]) -> list[str]:
    """2-6 values of one option; for options other than size (matched exactly), no two alike for the reward."""
    want = rng.randint(2, min(6, len(pool)))
    clashes = _clashes(pool)
    values: list[str] = []
    blocked: set[str] = set()
    for value in rng.sample(pool, min(len(pool), 2 * want + 2)):
        if value in blocked:
            continue
        values.append(value)
        if name != "size":
            blocked |= clashes[value]
        if len(values) == want:
            break
    if name == "size":  # keep sizes in their natural order, as shops list them
        values.sort(key=pool.index)
    return values


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _make_product(rng: random.Random, ptype: vocab.ProductType, brand: str, asin: str) -> dict[str, Any]:
    attrs = rng.sample(ptype.attributes, rng.randint(2, min(4, len(ptype.attributes))))
    options = {name: _option_values(rng, name, vocab.OPTION_POOLS[pool]) for name, pool in ptype.options}
    qualifier = rng.choice(vocab.TITLE_QUALIFIERS[ptype.category])
    audience = rng.choice(vocab.AUDIENCES[ptype.category])
    shown = rng.sample(attrs, rng.randint(1, min(2, len(attrs))))
    title = " ".join(x for x in (brand, qualifier, ptype.title, audience) if x)
    title += "".join(", " + a.title() for a in shown)
    low, high = ptype.price
    price = round(rng.uniform(low, high)) - 0.01 if high > 10 else round(rng.uniform(low, high), 2)
    price = max(price, 0.99)
    if rng.random() < 0.15:
        top = round(price * rng.uniform(1.1, 1.6), 2)
        pricing, price_tag = [price, top], f"${price:.2f} to ${top:.2f}"
    else:
        pricing, price_tag = [price], f"${price:.2f}"
    fillers = vocab.FILLER_SENTENCES[ptype.category]
    description = f"{brand} {ptype.title.lower()}: {_join_words(attrs)}. {rng.choice(fillers)} {rng.choice(fillers)}"
    bullets = [f"{a.upper()}: {rng.choice(fillers)}" for a in attrs]
    bullets.append(f"WHAT YOU GET: one {brand} {ptype.title.lower()}.")
    reviews = [
        {
            "title": rng.choice(vocab.REVIEW_TITLES),
            "score": rng.randint(1, 5),
            "body": rng.choice(vocab.REVIEW_BODIES),
        }
        for _ in range(rng.randint(0, 3))
    ]
    rating = f"{sum(r['score'] for r in reviews) / len(reviews):.1f}" if reviews else "N.A."
    return {
        "asin": asin,
        "name": title,
        "Title": title,
        "category": ptype.category,
        "query": ptype.query,
        "product_category": ptype.path,
        "Description": description,
        "BulletPoints": bullets,
        "Price": price_tag,
        "pricing": pricing,
        "options": options,
        "Attributes": attrs,
        "Reviews": reviews,
        "Rating": rating,
        "noun": ptype.noun,
    }


def _make_goal(rng: random.Random, product: dict[str, Any], price: float) -> dict[str, Any]:
    """A synthetic-style goal for `product`: 1-3 of its attributes, one value per option, a price bound."""
    attrs = rng.sample(product["Attributes"], rng.randint(1, min(3, len(product["Attributes"]))))
    desc = f"{_join_words(attrs)} {product['noun']}"
    text = rng.choice(vocab.INSTRUCTION_TEMPLATES).format(desc=desc)
    goal_options = {name: rng.choice(values) for name, values in sorted(product["options"].items())}
    option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
    upper, price_text = goal_lib.price_bound(rng, price)
    return {
        "asin": product["asin"],
        "category": product["category"],
        "query": product["query"],
        "name": product["Title"],
        "product_category": product["product_category"],
        "instruction_text": text + (" with " + option_text if option_text else "") + price_text,
        "attributes": attrs,
        "price_upper": upper,
        "goal_options": goal_options,
        "weight": 1,
    }


def generate(seed: int, num_products: int, num_goals: int, *, progress: bool = False) -> Catalogue:
    """A catalogue of `num_products` products over WebShop's five categories and `num_goals` goals.

    Product types are dealt round-robin (every type gets about the same number of products, so each
    search has same-type distractors); each goal picks a product (each product once before any twice),
    1-3 of its attributes, one value per option and a price bound. Goals are shuffled as the original's.
    """
    rng = random.Random(f"webshop-catalogue-{seed}")
    brands = _brands(rng, max(40, min(400, num_products // 10)))
    types = vocab.PRODUCT_TYPES
    used: set[str] = set()
    products: list[dict[str, Any]] = []
    bar = _progress_bar(progress)
    with bar:
        task = bar.add_task(f"generating {num_products} WebShop products", total=num_products + num_goals)
        for i in range(num_products):
            products.append(_make_product(rng, types[i % len(types)], rng.choice(brands), _asin(rng, used)))
            if i % 500 == 499:
                bar.update(task, advance=500)
        rng.shuffle(products)
        bar.update(task, completed=num_products)
        prices = product_prices(products, rng)
        goals = []
        order: list[int] = []
        for _ in range(num_goals):
            if not order:
                order = list(range(len(products)))
                rng.shuffle(order)
            product = products[order.pop()]
            goals.append(_make_goal(rng, product, prices[product["asin"]]))
        bar.update(task, completed=num_products + num_goals)
    goals = goal_lib.shuffle_goals(goals)
    return Catalogue(
        products=products, prices=prices, goals=goals, real=False, source=f"generated:{seed}:{num_products}:{num_goals}"
    )


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


def _progress_bar(show: bool):
    if not show:
        return _NoBar()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def generated_dir(seed: int, num_products: int) -> Path:
    from hgpo_cli.paths import cache_dir

    return cache_dir() / "webshop" / f"generated-{seed}-{num_products}"


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: several processes may generate the same cache entry at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def load_generated(seed: int, num_products: int, num_goals: int, *, progress: bool = True) -> Catalogue:
    """The generated catalogue, from the cache when it is there, else generated (with a progress bar)
    and written to `cache_dir()/webshop/generated-<seed>-<num_products>/goals-<num_goals>.json`."""
    path = generated_dir(seed, num_products) / f"catalogue-v{GENERATOR_VERSION}-goals-{num_goals}.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return Catalogue(
                products=data["products"], prices=data["prices"], goals=data["goals"], real=False, source=data["source"]
            )
        except (OSError, json.JSONDecodeError, KeyError):
            pass  # a damaged cache entry: generate again
    cat = generate(seed, num_products, num_goals, progress=progress)
    with contextlib.suppress(OSError):  # a read-only cache still lets the run go on
        _write_json(path, {"products": cat.products, "prices": cat.prices, "goals": cat.goals, "source": cat.source})
    return cat


# --------------------------------------------------------------------------------------------------
# Per-process cache keyed by the config

_CATALOGUES: dict[tuple, Catalogue] = {}


def catalogue_key(wcfg: Any) -> tuple:
    data_dir = wcfg.get("data_dir") if hasattr(wcfg, "get") else getattr(wcfg, "data_dir", None)

    def opt(name: str, default: Any = None) -> Any:
        return wcfg.get(name, default) if hasattr(wcfg, "get") else getattr(wcfg, name, default)

    if data_dir:
        return (
            "real",
            str(Path(data_dir).expanduser().resolve()),
            bool(opt("human_goals", False)),
            opt("products_file"),
            opt("data_num_products"),
            bool(opt("use_small", True)),
        )
    return ("generated", int(opt("seed", 0)), int(opt("num_products", 1000)), int(opt("num_goals", 1500)))


def get_catalogue(wcfg: Any, *, progress: bool = True) -> Catalogue:
    """The catalogue of a `cfg.env.webshop` section, loaded or generated once per process."""
    key = catalogue_key(wcfg)
    if key not in _CATALOGUES:
        if key[0] == "real":
            _CATALOGUES[key] = load_real(
                key[1], human_goals=key[2], products_file=key[3], limit=key[4], use_small=key[5]
            )
        else:
            _CATALOGUES[key] = load_generated(key[1], key[2], key[3], progress=progress)
    return _CATALOGUES[key]
