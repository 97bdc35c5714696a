"""The WebShop suite (see `hgpo_cli.envs.registry`): tasks, environments, the prompt and the checker.

One task per goal; `task_type` is the product category (beauty, electronics, fashion, food, furniture).
The catalogue and its search index are loaded once per process, so making an environment is cheap.
Admissibility of `search[...]`: see `hgpo_cli.envs.webshop.actions.is_admissible`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hgpo_cli.agent.prompts import PromptTemplate
from hgpo_cli.envs.base import TaskSpec, TextEnv
from hgpo_cli.envs.webshop.actions import SEARCH_TEMPLATE, is_admissible, parse_action
from hgpo_cli.envs.webshop.catalogue import Catalogue, get_catalogue
from hgpo_cli.envs.webshop.env import WebShopEnv
from hgpo_cli.envs.webshop.reward import content_words, nouns_with_spacy

__all__ = [
    "PROMPT",
    "SEARCH_TEMPLATE",
    "check",
    "is_admissible",
    "list_tasks",
    "load_catalogue",
    "make_env",
    "parse_action",
    "training_reward",
]

ENV_NAME = "webshop"
# The training reward is on ALFWorld's 0..10 scale, so that the invalid-action penalty (0.1) weighs the
# same on both benchmarks: `training_reward` maps the environment's r in [0, 1] to it.
REWARD_SCALE = 10.0

# The WebShop prompt (verl-agent's layout, our words). Actions are listed one per line in quotes; the
# search entry is a template whose brackets take the agent's own query.
PROMPT = PromptTemplate(
    intro=(
        "You are an autonomous shopping agent in WebShop, an online store. "
        "Buy the product that fits this request: {instruction}"
    ),
    history=(
        "You have taken {num_steps} step(s) so far. Here are the last {history_length} page(s) you saw "
        "and the action you took on each:\n{history}"
    ),
    history_item="[Step {step}] Page: {observation}\nAction: {action}",
    no_history="You have taken {num_steps} step(s) so far.",
    current="This is step {step}. The current page shows: {observation}",
    actions=(
        "The actions available on this page (in 'search[<your query>]', put your own query in place of "
        "<your query>):\n[\n{actions}\n]"
    ),
    action_item="'{action}'",
    action_separator=",\n",
    answer=(
        "Choose the one action that best moves you toward buying the right product (matching attributes, "
        "options and price). First reason step by step about the page and the request, inside "
        "<think> </think> tags. Then write exactly one available action inside <action> </action> tags."
    ),
    answer_action=(
        "Choose the one action that best moves you toward buying the right product (matching attributes, "
        "options and price). Write exactly one available action inside <action> </action> tags, and nothing else."
    ),
)


def _wcfg(cfg: Any) -> Any:
    return cfg.env.webshop


def load_catalogue(cfg: Any, *, progress: bool = True) -> Catalogue:
    """The catalogue of a run config (real data when `env.webshop.data_dir` is set, else generated)."""
    return get_catalogue(_wcfg(cfg), progress=progress)


def _opt(cfg: Any, name: str, default: Any) -> Any:
    wcfg = _wcfg(cfg)
    return wcfg.get(name, default) if hasattr(wcfg, "get") else getattr(wcfg, name, default)


@dataclass(frozen=True)
class TrainingReward:
    """The reward the trainer optimises, from the environment's step reward r (WebShop's score, in [0, 1],
    non-zero only on the purchase step).

    binary (verl-agent, `env_manager`/`envs.py`: "win for 10, lose for 0"): `scale` when r == 1, else 0.
    dense: `scale * r`. Evaluation keeps reporting r itself (score = 100 x mean r, success = share of r = 1).
    """

    mode: str = "binary"
    scale: float = REWARD_SCALE

    def __call__(self, r: float) -> float:
        if self.mode == "binary":
            return self.scale if r == 1.0 else 0.0
        return self.scale * r


def training_reward(cfg: Any) -> TrainingReward:
    """The training reward of a config (`env.webshop.reward`: binary or dense)."""
    mode = str(_opt(cfg, "reward", "binary"))
    if mode not in ("binary", "dense"):
        from hgpo_cli.errors import UserError

        raise UserError(f"env.webshop.reward={mode!r} is not one of binary, dense")
    return TrainingReward(mode=mode)


def list_tasks(cfg: Any, split: str) -> list[TaskSpec]:
    """One TaskSpec per goal of the split (`env.webshop.goal_split` decides the index ranges), in goal
    order; task_id is the goal index."""
    cat = load_catalogue(cfg)
    scheme = str(_opt(cfg, "goal_split", "verl-agent"))
    return [
        TaskSpec(
            env=ENV_NAME,
            task_id=str(i),
            task_type=str(cat.goals[i]["category"]),
            payload={"goal_index": i, "split": split},
        )
        for i in cat.split(split, scheme)
    ]


def _nouns(cfg: Any) -> Callable[[str], list[str]]:
    model = _wcfg(cfg).get("spacy_model") if hasattr(_wcfg(cfg), "get") else None
    return nouns_with_spacy(model) if model else content_words


def make_env(task: TaskSpec, cfg: Any) -> TextEnv:
    """A fresh environment for one goal (the catalogue and index are shared within the process)."""
    cat = load_catalogue(cfg, progress=False)
    index = int(task.payload.get("goal_index", task.task_id))
    if not 0 <= index < len(cat.goals):
        from hgpo_cli.errors import UserError

        raise UserError(f"WebShop goal {index} does not exist (the catalogue has {len(cat.goals)} goals)")
    rules = str(_opt(cfg, "reward_rules", "master"))
    return WebShopEnv(task, cat, index, max_steps=int(cfg.env.max_steps), nouns=_nouns(cfg), rules=rules)


def check(
    cfg: Any,
    split: str,
    *,
    walkthrough: bool,
    limit: int | None = None,
    progress: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Load (and with `walkthrough`, play with the oracle) the goals of a split.

    Returns games, loaded, won, by_task_type {type: {games, loaded, won}}, reward_mean, score (100 x mean r)
    and success_rate. `progress`, when given, is called once per goal with (done, total).
    """
    from hgpo_cli.envs.webshop.oracle import play_oracle

    tasks = list_tasks(cfg, split)
    if limit is not None:
        tasks = tasks[:limit]
    loaded = won = 0
    rewards: list[float] = []
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {"games": 0, "loaded": 0, "won": 0})
    for n, task in enumerate(tasks, 1):
        row = by_type[task.task_type]
        row["games"] += 1
        try:
            env = make_env(task, cfg)
            env.reset()
        except Exception:  # a goal that cannot start counts as not loaded
            env = None
            rewards.append(0.0)
        if env is not None:
            loaded += 1
            row["loaded"] += 1
            if walkthrough:
                res, _ = play_oracle(env)  # type: ignore[arg-type]
                rewards.append(float(res.reward) if res.done else 0.0)
                if res.won:
                    won += 1
                    row["won"] += 1
            env.close()
        if progress is not None:
            progress(n, len(tasks))
    games = len(tasks)
    reward_mean = sum(rewards) / games if (games and walkthrough) else 0.0
    return {
        "games": games,
        "loaded": loaded,
        "won": won,
        "by_task_type": {k: dict(v) for k, v in sorted(by_type.items())},
        "reward_mean": reward_mean,
        "score": 100.0 * reward_mean,
        "success_rate": won / games if games else 0.0,
    }
