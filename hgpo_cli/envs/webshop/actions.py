"""WebShop's two actions, `search[query]` and `click[button]`, and the admissibility rule.

The available actions at a step are listed as in verl-agent: `search[<your query>]` when the page has a
search bar (a template: any non-empty query goes), then `click[<button>]` for each clickable, lower case.
An action is admissible when it is one of the listed clicks, or a `search[...]` with a non-empty query
while the template is listed (`is_admissible`). Matching is case-insensitive, as in WebShop.
"""

from __future__ import annotations

import re

SEARCH_TEMPLATE = "search[<your query>]"

_ACTION = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


def parse_action(action: str) -> tuple[str, str] | None:
    """`("search", query)` or `("click", button)`, both lower case and stripped; None when malformed
    (not `name[argument]`, an unknown name, or an empty argument)."""
    if not isinstance(action, str):
        return None
    m = _ACTION.match(action)
    if m is None:
        return None
    name, arg = m.group(1).lower(), " ".join(m.group(2).split()).lower()
    if not arg:
        return None
    return name, arg


def is_admissible(action: str, admissible_actions: list[str]) -> bool:
    """True when `action` can be taken at a step whose available actions are `admissible_actions`."""
    parsed = parse_action(action)
    if parsed is None:
        return False
    name, arg = parsed
    if name == "search":
        return SEARCH_TEMPLATE in admissible_actions
    return f"click[{arg}]" in admissible_actions
