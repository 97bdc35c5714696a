"""Environment suites by name. Each suite module exposes:

- `list_tasks(cfg: DictConfig, split: str) -> list[TaskSpec]`: the tasks of a split (a user error when
  the data path is missing);
- `make_env(task: TaskSpec, cfg: DictConfig) -> TextEnv`: a fresh environment for one task;
- `PROMPT`: the suite's prompt template (see `hgpo_cli.agent.prompts`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hgpo_cli.errors import UserError

SUITES = {
    "alfworld": "hgpo_cli.envs.alfworld.suite",
    "webshop": "hgpo_cli.envs.webshop.suite",
}


def get_suite(name: str) -> ModuleType:
    """The suite module of an environment name; imports it lazily (alfworld is heavy)."""
    if name not in SUITES:
        raise UserError(f"unknown environment '{name}' (one of {', '.join(SUITES)})")
    return importlib.import_module(SUITES[name])
