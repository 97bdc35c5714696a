"""A scripted player that knows the goal's product: it searches, pages through the results until the
product shows, opens it, picks the goal's options and buys. It checks that the environment, search and
reward fit together (a goal it cannot win points at a search or reward problem, or a goal the product
cannot satisfy).

Queries, in order: the instruction without its option and price parts, then the product's title.
Human goals list option values without names: each is matched to the product's closest option value.
"""

from __future__ import annotations

from typing import Any

from hgpo_cli.envs.base import StepResult
from hgpo_cli.envs.webshop.env import WebShopEnv
from hgpo_cli.envs.webshop.pages import click_key
from hgpo_cli.envs.webshop.reward import normalize_color, token_set_score


def oracle_queries(goal: dict[str, Any], product: dict[str, Any]) -> list[str]:
    text = goal["instruction_text"]
    for cut in (", and price lower than", " with "):
        if cut in text:
            text = text[: text.index(cut)]
    queries = [text.strip(), str(product.get("Title", "")).strip()]
    return [q for i, q in enumerate(queries) if q and q not in queries[:i]]


def oracle_option_clicks(goal: dict[str, Any], product: dict[str, Any]) -> list[str]:
    """The option values to click: the goal's own (synthetic goals name them), else for each wanted value
    the product value of any option that matches it best."""
    options = product.get("options") or {}
    wanted = goal.get("goal_options") or {}
    clicks = []
    if isinstance(wanted, dict):
        for name, value in wanted.items():
            if value in options.get(name, []):
                clicks.append(value)
        return clicks
    taken: set[str] = set()
    for value in wanted:
        best, best_score = None, 0
        for name, values in options.items():
            if name in taken:
                continue
            for v in values:
                score = 101 if v == value else token_set_score(normalize_color(v), normalize_color(value))
                if score > best_score:
                    best, best_score = (name, v), score
        if best is not None and best_score > 50:
            taken.add(best[0])
            clicks.append(best[1])
    return clicks


def play_oracle(env: WebShopEnv) -> tuple[StepResult, list[str]]:
    """Play one episode; returns the last step result and the actions taken."""
    goal = env.goal
    asin = goal["asin"]
    product = env.catalogue.by_asin[asin]
    actions: list[str] = []

    def act(action: str) -> StepResult:
        actions.append(action)
        return env.step(action)

    res = env.reset()
    target = f"click[{asin.lower()}]"
    found = False
    first_product: str | None = None
    for q_index, query in enumerate(oracle_queries(goal, product)):
        if q_index > 0:
            res = act("click[back to search]")
        res = act(f"search[{query}]")
        while not res.done:
            if first_product is None:
                first_product = next((a for a in res.admissible_actions if a[6:-1] in _asins(env)), None)
            if target in res.admissible_actions:
                found = True
                break
            if "click[next >]" not in res.admissible_actions:
                break
            res = act("click[next >]")
        if found or res.done:
            break
    if res.done:
        return res, actions
    if found:
        res = act(target)
    elif first_product is not None:  # not found: buy the first result, for a partial reward
        if "click[back to search]" in res.admissible_actions and first_product not in res.admissible_actions:
            res = act("click[back to search]")
            res = act(f"search[{oracle_queries(goal, product)[0]}]")
        if res.done:
            return res, actions
        res = act(first_product)
    else:
        return res, actions
    if res.done:
        return res, actions
    if found:
        for value in oracle_option_clicks(goal, product):
            res = act(f"click[{click_key(value)}]")
            if res.done:
                return res, actions
    res = act("click[buy now]")
    return res, actions


def _asins(env: WebShopEnv) -> set[str]:
    return {key for key, target in env.page.clickables.items() if target[0] == "product"}
