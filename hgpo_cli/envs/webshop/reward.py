"""The WebShop reward (Yao et al., 2022, section 3.1), as pure functions over plain dicts.

    r = (matched attributes + matched options + [price <= budget]) / (|attributes| + |options| + 1) * r_type

A product is a dict with WebShop's keys (`Title`, `name`, `query`, `product_category`, `Attributes`,
`BulletPoints`, `Description`); a goal has `attributes`, `goal_options` (a dict name -> value for synthetic
goals or a list of values for human goals), `price_upper`, `query`, `name`, `product_category`.
`purchased_options` maps option names to the chosen values.

Two rule sets (`env.webshop.reward_rules`):

- `master` (the default): WebShop's master branch, the copy verl-agent ships and trains on
  (`web_agent_site/engine/goal.py`). Text is compared with thefuzz 0.19's `token_set_ratio > 85`
  (`fuzz_master.py`: difflib similarity). Options: every goal option, `size` included, is fuzzy-matched
  against the chosen values (names ignored), both sides passed through the colour normaliser first. For a
  goal whose options are a dict, master passes `goal_options.items()`: each goal option is the pair
  `(name, value)`, the normaliser turns a pair into a colour word only when the name or the value *is*
  that word, and otherwise the pair is scored as the text `"('name', 'value')"`, whose tokens include the
  option name. So `small` matches the goal `size: x-small` (the tokens of `small` are a subset), and a value
  whose colour word is only part of a word (`sandalwood` -> `sand`) no longer matches its own goal pair.
- `v2`: our earlier rules, as WebShop's later v2 branch matches sizes: rapidfuzz `token_set_ratio > 85`
  on the values only, colours normalised on the values, `size` compared exactly after normalisation.

Both count goal options matched (each at most once). The product-type factor compares the nouns of the
two product names; master takes them from spaCy's `en_core_web_sm`, we take the content words by default
(no model to download) or a spaCy model when one is named (`nouns_with_spacy`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz import utils as fuzz_utils

from hgpo_cli.envs.webshop import fuzz_master

FUZZY_THRESHOLD = 85
REWARD_RULES = ("master", "v2")
EXACT_MATCH_OPTIONS = ("size",)
NO_BUDGET = 1_000_000.0


# The colour words of the original's normaliser (`engine/normalize.py`, COLOR_SET), in its (alphabetical)
# order: an option value is replaced by the first of these it contains, so that "navy blue" and "dark blue"
# both read as "blue".
def _wordlist(text: str) -> list[str]:
    return text.split()


COLOR_WORDS = _wordlist(
    "alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown burgundy "
    "camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac copper coral "
    "cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold granite grape graphite grass "
    "gray green grey heather indigo ivory ivy khaki lavender lemon leopard light lilac lime magenta maroon "
    "mauve merlot midnight mint mocha multicolor mushroom mustard natural navy nude olive orange peach pewter pink "
    "plum purple rainbow red rose royal rust sand sapphire seashell silver skull slate steel stone "
    "stonewash sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow"
)

# Words that are never product-type nouns: English function words and shopping filler.
STOPWORDS = frozenset(
    _wordlist(
        "a about above after again all also am an and any are as at be been before being below between both "
        "but by can could did do does doing down during each few for from further had has have having he her "
        "here hers him his how i if in into is it its itself just me more most my no nor not now of off on "
        "once only or other our out over own same she should so some such than that the their them then "
        "there these they this those through to too under until up very was we were what when where which "
        "while who whom why will with would you your yours new pack count set piece pcs inch inches oz fl "
        "ounce ounces lb lbs pound pounds ft feet cm mm x"
    )
)


def normalize_color(value: Any) -> Any:
    """The first colour word `c` with `c in value`, else `value` itself (the original's normaliser).

    For a text, `in` is a substring test; for a `(name, value)` pair (master's dict goals) it is element
    equality, so a pair only becomes a colour word when its name or value equals one.
    """
    for color in COLOR_WORDS:
        if color in value:
            return color
    return value


def _process(text: str) -> str:
    """The original fuzzy library's preprocessing: keep ASCII, lower case, non-alphanumerics to spaces."""
    return fuzz_utils.default_process(text.encode("ascii", "ignore").decode())


def token_set_score(a: str, b: str) -> int:
    """`token_set_ratio` of two texts as the original computed it: preprocessed, rounded to an integer."""
    pa, pb = _process(a), _process(b)
    if not pa or not pb:
        return 0
    return int(round(fuzz.token_set_ratio(pa, pb)))


def fuzzy_match(a: str, b: str) -> bool:
    """v2 rules: rapidfuzz `token_set_ratio > 85`."""
    return token_set_score(a, b) > FUZZY_THRESHOLD


def fuzzy_match_master(a: Any, b: Any) -> bool:
    """master rules: thefuzz 0.19 `token_set_ratio > 85` (a `(name, value)` pair is scored as its `str`)."""
    return fuzz_master.token_set_ratio(a, b) > FUZZY_THRESHOLD


def _matcher(rules: str) -> Callable[[Any, Any], bool]:
    if rules not in REWARD_RULES:
        raise ValueError(f"unknown WebShop reward rules {rules!r} (one of {', '.join(REWARD_RULES)})")
    return fuzzy_match_master if rules == "master" else fuzzy_match


def _product_text(product: dict[str, Any]) -> tuple[str, str, str]:
    return (
        str(product.get("Title", "")).lower(),
        " ".join(product.get("BulletPoints") or []).lower(),
        str(product.get("Description", "")).lower(),
    )


def attribute_matches(product: dict[str, Any], goal_attributes: Iterable[str], rules: str = "master") -> int:
    """How many goal attributes the product has: fuzzy match against its attribute list, else the goal
    attribute appears verbatim in its title, bullet points or description (the same for both rule sets,
    apart from the fuzzy scorer)."""
    match = _matcher(rules)
    title, bullets, description = _product_text(product)
    count = 0
    for g_attr in goal_attributes:
        in_list = any(match(p_attr, g_attr) for p_attr in product.get("Attributes") or [])
        if in_list or g_attr in title or g_attr in bullets or g_attr in description:
            count += 1
    return count


def _goal_option_values(goal_options: dict[str, str] | list[str]) -> list[str]:
    return list(goal_options.values()) if isinstance(goal_options, dict) else list(goal_options)


def option_matches(
    goal_options: dict[str, str] | list[str], purchased_options: dict[str, str], rules: str = "master"
) -> int:
    """How many goal options the purchase satisfies, each goal option matched at most once (the paper's
    |U_opt ∩ Y_opt|, so the option term never exceeds its weight). See the module docstring for the rules."""
    if _matcher(rules) is fuzzy_match_master:
        return option_matches_master(goal_options, purchased_options)
    return option_matches_v2(goal_options, purchased_options)


def option_matches_master(goal_options: dict[str, str] | list[str], purchased_options: dict[str, str]) -> int:
    """master: goal options are the dict's `(name, value)` pairs (or the list's values), chosen options are
    the chosen values; both colour-normalised; a goal option counts when some chosen value scores > 85."""
    goal_items: list[Any] = list(goal_options.items()) if isinstance(goal_options, dict) else list(goal_options)
    chosen = [normalize_color(v) for v in purchased_options.values()]
    count = 0
    for g_option in (normalize_color(o) for o in goal_items):
        if any(fuzzy_match_master(p_option, g_option) for p_option in chosen):
            count += 1
    return count


def option_matches_v2(goal_options: dict[str, str] | list[str], purchased_options: dict[str, str]) -> int:
    """v2: a goal value is matched by a chosen value equal to it (for `size`) or fuzzily matching it
    (other options, rapidfuzz), colours normalised on the values."""
    chosen = [(name.lower(), normalize_color(value)) for name, value in purchased_options.items()]
    count = 0
    for g_value in (normalize_color(v) for v in _goal_option_values(goal_options)):
        for name, value in chosen:
            if name in EXACT_MATCH_OPTIONS:
                if value == g_value:
                    count += 1
                    break
            elif fuzzy_match(g_value, value):
                count += 1
                break
    return count


def price_ok(price: float, price_upper: float) -> bool:
    return price <= price_upper


_WORD = re.compile(r"[a-z]+")


def content_words(name: str) -> list[str]:
    """The default stand-in for spaCy's nouns: lower-case alphabetic words that are not stopwords."""
    return [w for w in _WORD.findall(name.lower()) if len(w) > 1 and w not in STOPWORDS]


_SPACY_MODELS: dict[str, Any] = {}


def nouns_with_spacy(model: str) -> Callable[[str], list[str]]:
    """A noun extractor using an installed spaCy model (master uses `en_core_web_sm`)."""
    from hgpo_cli.errors import UserError

    if model not in _SPACY_MODELS:
        try:
            import spacy

            _SPACY_MODELS[model] = spacy.load(model, disable=["ner", "lemmatizer", "parser"])
        except Exception as err:  # missing package or model: a user mistake, one line
            raise UserError(f"env.webshop.spacy_model={model!r} cannot be loaded ({err})") from None
    nlp = _SPACY_MODELS[model]

    def nouns(name: str) -> list[str]:
        return [t.text.lower() for t in nlp(name) if t.pos_ in ("NOUN", "PROPN")]

    return nouns


def type_reward(
    product: dict[str, Any], goal: dict[str, Any], nouns: Callable[[str], list[str]] = content_words
) -> dict[str, Any]:
    """The product-type factor r_type and its parts (query match, category match, title score).

    1.0 when the query or >= 2 category levels match or more than 20% of the goal name's nouns are in the
    product name; 0.5 otherwise; 0.1 when that share is below 10%; 0 when no noun is shared.
    """
    query_match = product.get("query") == goal.get("query")
    p_cats = {c.strip() for c in str(product.get("product_category", "")).split("›")}
    g_cats = {c.strip() for c in str(goal.get("product_category", "")).split("›")}
    category_match = len(p_cats & g_cats) >= 2
    p_nouns = set(nouns(str(product.get("name", product.get("Title", "")))))
    g_nouns = nouns(str(goal.get("name", "")))
    title_score = 0.2 if not g_nouns else len(p_nouns & set(g_nouns)) / len(g_nouns)
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def webshop_reward(
    product: dict[str, Any],
    goal: dict[str, Any],
    price: float,
    purchased_options: dict[str, str],
    nouns: Callable[[str], list[str]] = content_words,
    rules: str = "master",
) -> tuple[float, dict[str, Any]]:
    """The reward of buying `product` at `price` with `purchased_options` for `goal`, and its parts,
    under `rules` (`master` or `v2`).

    Returns (r, info) with r in [0, 1]; info holds r_type, r_att, r_option, r_price, the match counts
    and the weights of the three terms.
    """
    attrs = list(goal.get("attributes") or [])
    goal_opts = _goal_option_values(goal.get("goal_options") or {})
    n_att = attribute_matches(product, attrs, rules)
    n_opt = option_matches(goal.get("goal_options") or {}, purchased_options, rules)
    in_budget = price_ok(price, float(goal.get("price_upper", NO_BUDGET)))
    denom = len(attrs) + len(goal_opts) + 1
    type_info = type_reward(product, goal, nouns)
    r = (n_att + n_opt + int(in_budget)) / denom * type_info["r_type"]
    info = dict(type_info)
    info.update(
        {
            "r_att": n_att / len(attrs) if attrs else None,
            "r_option": n_opt / len(goal_opts) if goal_opts else None,
            "r_price": in_budget,
            "num_attr_matches": n_att,
            "num_option_matches": n_opt,
            "w_att": len(attrs) / denom,
            "w_option": len(goal_opts) / denom,
            "w_price": 1 / denom,
        }
    )
    return r, info
