"""WebShop's pages as text: the visible strings of each page in order, as the original's `text` observation
mode reads them off its HTML, and the clickables of each page.

`render(...)` gives the segments of a page; `format_observation` turns them into what verl-agent shows the
agent: the segments after the instruction, each in single quotes, joined by ` [SEP] `, for example

    'Back to Search' [SEP] 'Page 1 (Total results: 50)' [SEP] 'Next >' [SEP] 'B0C1...' [SEP] '<title>' ...

`webshop_text` gives the original's full text (`WebShop [SEP] Instruction: [SEP] <instruction> [SEP] ...`).
Option choices are not shown on the item page (the original's text mode does not show them either).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRODUCT_WINDOW = 10

BACK_TO_SEARCH = "Back to Search"
NEXT_PAGE = "Next >"
PREV_PAGE = "< Prev"
BUY_NOW = "Buy Now"
SUB_PAGES = ("Description", "Features", "Reviews")

SEARCH, RESULTS, ITEM, SUB, DONE = "search", "results", "item", "sub", "done"


@dataclass
class Page:
    """A rendered page: its kind, its visible text segments (instruction excluded), whether it has a search
    bar, and its clickables in the original's order (buttons, then product links, then option values),
    each mapped to what clicking it does: ("nav", button) | ("product", asin) | ("option", name, value)."""

    kind: str
    segments: list[str]
    has_search_bar: bool = False
    clickables: dict[str, tuple[str, ...]] = field(default_factory=dict)


def click_key(text: str) -> str:
    """How a clickable is named in `click[...]`: lower case, whitespace collapsed."""
    return " ".join(text.split()).lower()


def _buttons(*names: str) -> dict[str, tuple[str, ...]]:
    return {click_key(n): ("nav", n) for n in names}


def search_page() -> Page:
    return Page(SEARCH, ["Search"], has_search_bar=True)


def results_page(products: list[dict[str, Any]], page: int, total: int) -> Page:
    """Page `page` (1-based) of a result list of `total` products; `products` are that page's products."""
    buttons = [BACK_TO_SEARCH]
    segments = [BACK_TO_SEARCH, f"Page {page} (Total results: {total})"]
    if page > 1:
        buttons.append(PREV_PAGE)
        segments.append(PREV_PAGE)
    if page * PRODUCT_WINDOW < total:
        buttons.append(NEXT_PAGE)
        segments.append(NEXT_PAGE)
    clickables = _buttons(*buttons)
    for p in products:
        segments += [p["asin"], p["Title"], p["Price"]]
        clickables[click_key(p["asin"])] = ("product", p["asin"])
    return Page(RESULTS, segments, clickables=clickables)


def item_page(product: dict[str, Any]) -> Page:
    segments = [BACK_TO_SEARCH, PREV_PAGE]
    option_clicks: dict[str, tuple[str, ...]] = {}
    for name, values in (product.get("options") or {}).items():
        segments.append(name)
        for value in values:
            segments.append(value)
            option_clicks[click_key(value)] = ("option", name, value)
    segments += [product["Title"], f"Price: {product['Price']}", f"Rating: {product.get('Rating', 'N.A.')}"]
    segments += [*SUB_PAGES, BUY_NOW]
    clickables = _buttons(BACK_TO_SEARCH, PREV_PAGE, *SUB_PAGES, BUY_NOW)
    for key, target in option_clicks.items():
        clickables.setdefault(key, target)
    return Page(ITEM, segments, clickables=clickables)


def sub_page(product: dict[str, Any], which: str) -> Page:
    """The Description, Features (bullet points) or Reviews page of a product."""
    segments = [BACK_TO_SEARCH, PREV_PAGE]
    if which == "Description":
        segments.append(str(product.get("Description") or ""))
    elif which == "Features":
        segments += [str(b) for b in product.get("BulletPoints") or []]
    else:
        for review in product.get("Reviews") or []:
            segments += [f'"{review.get("title", "")}"', str(review.get("score", "")), str(review.get("body", ""))]
    return Page(SUB, segments, clickables=_buttons(BACK_TO_SEARCH, PREV_PAGE))


def done_page(asin: str, options: dict[str, str], reward: float) -> Page:
    segments = ["Thank you for shopping with us!", "Purchased", asin, *options.values()]
    segments += ["Your score (min 0.0, max 1.0)", f"{reward:.4g}"]
    return Page(DONE, segments)


def _clean(segments: list[str]) -> list[str]:
    return [s.strip() for s in segments if s and s.strip()]


def format_observation(page: Page) -> str:
    """verl-agent's observation: the page's segments (no instruction) quoted and joined by ' [SEP] '."""
    return " [SEP] ".join(f"'{s}'" for s in _clean(page.segments))


def webshop_text(page: Page, instruction: str) -> str:
    """The original `text` observation of the page, instruction included."""
    head = ["WebShop"] if page.kind == SEARCH else []
    if page.kind != DONE:
        head += ["Instruction:", instruction]
    return " [SEP] ".join(_clean(head + page.segments))


def available_actions(page: Page) -> list[str]:
    """The actions listed to the agent: the search template, then `click[...]` per clickable."""
    from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE

    actions = [SEARCH_TEMPLATE] if page.has_search_bar else []
    actions += [f"click[{key}]" for key in page.clickables]
    return actions
