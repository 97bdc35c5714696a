"""`WebShopEnv`: one WebShop goal as a `TextEnv`.

Pages: search -> results (10 per page) -> item (options) -> description / features / reviews. Actions:
`search[query]` on the search page, `click[button]` for a listed clickable (`back to search`, `next >`,
`< prev`, a product id, an option value, `description`, `features`, `reviews`, `buy now`). Transitions
follow the original engine: `back to search` clears the query and options, `< prev` goes from an item to
its results page (options cleared) and from a sub-page to its item page (options kept), clicking an
option value selects it for that option.

The episode ends on `buy now` (reward = WebShop's r in [0, 1] under `rules`, won = r == 1; the trainer turns
it into the training reward, `suite.training_reward`) or after `max_steps`
actions (reward 0). An action that is malformed or not available leaves the page as it is, with
`info["invalid"] = True`; `step` never raises. `observation` is the page text in verl-agent's format
(identical pages give identical text: it is the HGPO anchor); the instruction is separate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hgpo_cli.envs.base import StepResult, TaskSpec
from hgpo_cli.envs.webshop import pages as P
from hgpo_cli.envs.webshop.actions import parse_action
from hgpo_cli.envs.webshop.catalogue import Catalogue
from hgpo_cli.envs.webshop.reward import content_words, webshop_reward
from hgpo_cli.errors import UserError


class WebShopEnv:
    """A WebShop session for one goal of a catalogue."""

    def __init__(
        self,
        task: TaskSpec,
        catalogue: Catalogue,
        goal_index: int,
        *,
        max_steps: int = 15,
        nouns: Callable[[str], list[str]] = content_words,
        rules: str = "master",
    ) -> None:
        self.task = task
        self.catalogue = catalogue
        self.goal = catalogue.goals[goal_index]
        self.goal_index = goal_index
        self.max_steps = max_steps
        self._nouns = nouns
        self.rules = rules
        self._reset_state()

    # ---------------------------------------------------------------- state
    def _reset_state(self) -> None:
        self.steps = 0
        self.done = False
        self.won = False
        self.reward = 0.0
        self.keywords: str | None = None
        self.results: tuple[int, ...] = ()
        self.page_num = 1
        self.asin: str | None = None
        self.options: dict[str, str] = {}
        self.sub: str | None = None
        self.page: P.Page = P.search_page()
        self.last_info: dict[str, Any] = {}

    @property
    def instruction(self) -> str:
        return self.goal["instruction_text"]

    def _show_results(self) -> None:
        self.asin, self.sub, self.options = None, None, {}
        start = (self.page_num - 1) * P.PRODUCT_WINDOW
        products = [self.catalogue.products[i] for i in self.results[start : start + P.PRODUCT_WINDOW]]
        self.page = P.results_page(products, self.page_num, len(self.results))

    def _show_item(self) -> None:
        self.sub = None
        self.page = P.item_page(self.catalogue.by_asin[self.asin])

    def _result(self, reward: float, info: dict[str, Any]) -> StepResult:
        info.setdefault("invalid", False)
        info["page"] = self.page.kind
        info["steps"] = self.steps
        self.last_info = info
        return StepResult(
            observation=P.format_observation(self.page),
            reward=reward,
            done=self.done,
            won=self.won,
            admissible_actions=[] if self.done else P.available_actions(self.page),
            instruction=self.instruction,
            info=info,
        )

    # ---------------------------------------------------------------- TextEnv
    def reset(self) -> StepResult:
        self._reset_state()
        return self._result(0.0, {})

    def step(self, action: str) -> StepResult:
        if self.done:
            return self._result(0.0, {"invalid": True, "error": "episode is over"})
        self.steps += 1
        reward, info = self._apply(action)
        if not self.done and self.steps >= self.max_steps:
            self.done = True
            info["truncated"] = True
        return self._result(reward, info)

    def close(self) -> None:
        pass

    def walkthrough(self) -> list[str]:
        """The scripted player's actions for this goal (`oracle.play_oracle`: search, page to the product,
        pick the goal's options, buy), the way ALFWorld's planner gives its solution: what `hgpo sft`
        clones. The player reads the result pages, so it plays the episode; pages are deterministic, so
        the actions replayed after the reset this ends with give the same episode. From the start only:
        WebShop has no planner that replans from the middle of an episode (so `model.sft_detours` must be
        0 on WebShop)."""
        from hgpo_cli.envs.webshop.oracle import play_oracle

        if self.steps:
            raise UserError(
                "WebShop's scripted player plans from the start of an episode only: set model.sft_detours=0"
            )
        _, actions = play_oracle(self)
        self.reset()
        return actions

    def page_text(self) -> str:
        """The current page as the original's `text` observation (instruction included)."""
        return P.webshop_text(self.page, self.instruction)

    # ---------------------------------------------------------------- transitions
    def _apply(self, action: str) -> tuple[float, dict[str, Any]]:
        parsed = parse_action(action)
        if parsed is None:
            return 0.0, {"invalid": True, "error": "not search[...] or click[...] with a non-empty argument"}
        name, arg = parsed
        if name == "search":
            if not self.page.has_search_bar:
                return 0.0, {"invalid": True, "error": "no search bar on this page"}
            self.keywords = arg
            self.results = self.catalogue.search_engine.search(arg)
            self.page_num = 1
            self._show_results()
            return 0.0, {}
        target = self.page.clickables.get(arg)
        if target is None:
            return 0.0, {"invalid": True, "error": f"'{arg}' is not clickable here"}
        kind, value = target[0], target[1]
        if kind == "product":
            self.asin, self.options = value, {}
            self._show_item()
        elif kind == "option":
            self.options[value] = target[2]
            self._show_item()
        elif value == P.BACK_TO_SEARCH:
            self.keywords, self.results, self.asin, self.options, self.sub = None, (), None, {}, None
            self.page = P.search_page()
        elif value == P.NEXT_PAGE:
            self.page_num += 1
            self._show_results()
        elif value == P.PREV_PAGE:
            if self.page.kind == P.RESULTS:
                self.page_num -= 1
                self._show_results()
            elif self.page.kind == P.ITEM:
                self._show_results()
            else:  # a sub-page: back to its item page, options kept
                self._show_item()
        elif value in P.SUB_PAGES:
            self.sub = value
            self.page = P.sub_page(self.catalogue.by_asin[self.asin], value)
        elif value == P.BUY_NOW:
            return self._buy()
        return 0.0, {}

    def _buy(self) -> tuple[float, dict[str, Any]]:
        product = self.catalogue.by_asin[self.asin]
        price = float(self.catalogue.prices[self.asin])
        r, parts = webshop_reward(product, self.goal, price, dict(self.options), self._nouns, self.rules)
        self.done, self.reward, self.won = True, r, r == 1.0
        self.page = P.done_page(self.asin, self.options, r)
        return r, {
            "reward_info": parts,
            "purchased_asin": self.asin,
            "purchased_options": dict(self.options),
            "goal_asin": self.goal["asin"],
            "webshop_score": r,
        }
