"""A prompt template from a user's file (`agent.prompt_template=PATH`), in place of the suite's wording.

The file is YAML with these keys (only `prompt` is required):

- `prompt`: the whole prompt of a step whose memory window is not empty.
- `first_prompt`: the prompt of a step with nothing in the memory window (the first step, or every step
  when K = 0), as verl-agent's `*_TEMPLATE_NO_HIS`; absent: `prompt` is used there too.
- `memory_item`: one (observation, action) pair of the memory. Default (verl-agent's `SimpleMemory`):
  `[Observation {step}: '{observation}', Action {step}: '{action}']`.
- `memory_separator`: between memory items. Default: a newline.
- `action_item`: one admissible action. Default: `{action}`.
- `action_separator`: between actions. Default: a newline.

Placeholders (Python `str.format` fields; write `{{` and `}}` for literal braces; values go in verbatim):

- in `prompt` and `first_prompt`:
  `{task_description}` (the task, e.g. "put a clean mug in coffeemachine"),
  `{step_count}` (steps taken so far, 0 at the first step),
  `{history_length}` (memory items shown),
  `{action_history}` (the memory items, formatted and joined),
  `{current_step}` (this step's 1-based number, `step_count` + 1),
  `{current_observation}` (what the environment shows now),
  `{admissible_actions}` (the actions, formatted and joined; `{available_actions}` is the same, under
  verl-agent's WebShop name).
  `prompt` must hold `{action_history}`; both must hold `{current_observation}` and
  `{admissible_actions}` (or `{available_actions}`).
- in `memory_item`: `{step}` (the pair's 1-based step number), `{observation}` (what was seen),
  `{action}` (the action the environment received); `{action}` is required.
- in `action_item`: `{action}` (required).

The names are verl-agent's (`agent_system/environments/prompts/`, filled in `env_manager.py`), so their
published templates can be pasted as they are: `hgpo_cli/agent/templates/alfworld-verl-agent.yaml` and
`webshop-verl-agent.yaml` reproduce the ALFWorld and WebShop wording. The answer instruction is part of
the text: with `agent.answer_format=action` the reply is still opened with `<action>`, so write a
template that asks for the action alone. An unreadable file, an unknown key, an unknown or missing
placeholder is a one-line `ConfigError` when the config is loaded.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hgpo_cli.errors import ConfigError

PROMPT_FIELDS = (
    "task_description",
    "step_count",
    "history_length",
    "action_history",
    "current_step",
    "current_observation",
    "admissible_actions",
    "available_actions",
)
MEMORY_FIELDS = ("step", "observation", "action")
ACTION_FIELDS = ("action",)
VERL_AGENT_MEMORY_ITEM = "[Observation {step}: '{observation}', Action {step}: '{action}']"
KEYS = ("prompt", "first_prompt", "memory_item", "memory_separator", "action_item", "action_separator")
EXAMPLES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class FilePromptTemplate:
    """A prompt from a template file; `render` is what `hgpo_cli.agent.prompts.build_prompt` calls."""

    path: str
    prompt: str
    first_prompt: str | None = None
    memory_item: str = VERL_AGENT_MEMORY_ITEM
    memory_separator: str = "\n"
    action_item: str = "{action}"
    action_separator: str = "\n"

    def render(
        self,
        *,
        instruction: str,
        step_index: int,
        history: Sequence[tuple[str, str]],
        observation: str,
        admissible_actions: Sequence[str],
        answer_format: str = "think",
    ) -> str:
        """The prompt of step `step_index` (0-based); history: the memory window, oldest first, pairs of
        (observation, action). answer_format is not read: the file's text holds the answer instruction."""
        first = step_index - len(history) + 1
        items = self.memory_separator.join(
            self.memory_item.format(step=first + j, observation=obs, action=act) for j, (obs, act) in enumerate(history)
        )
        actions = self.action_separator.join(self.action_item.format(action=a) for a in admissible_actions)
        text = self.first_prompt if (not history and self.first_prompt is not None) else self.prompt
        return text.format(
            task_description=instruction,
            step_count=step_index,
            history_length=len(history),
            action_history=items,
            current_step=step_index + 1,
            current_observation=observation,
            admissible_actions=actions,
            available_actions=actions,
        )


def _fields(path: str, key: str, text: str) -> set[str]:
    """The field names of a str.format text; ConfigError on a malformed one."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as err:
        raise ConfigError(
            f"agent.prompt_template={path}: {key}: {err} (write {{{{ and }}}} for literal braces)"
        ) from None


def _check(path: str, key: str, text: str, known: Sequence[str], required: Sequence[Sequence[str]]) -> None:
    names = _fields(path, key, text)
    for name in sorted(names):
        if name not in known:
            shown = "{}" if name == "" else "{" + name + "}"
            raise ConfigError(
                f"agent.prompt_template={path}: {key}: unknown placeholder {shown} "
                f"(known: {', '.join('{' + k + '}' for k in known)})"
            )
    for options in required:
        if not names.intersection(options):
            raise ConfigError(
                f"agent.prompt_template={path}: {key}: missing placeholder "
                + " or ".join("{" + o + "}" for o in options)
            )


def _read(path: str) -> dict[str, str]:
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"agent.prompt_template={path}: no such file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"agent.prompt_template={path}: not a readable YAML file ({first_line})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"agent.prompt_template={path}: expected YAML keys ({', '.join(KEYS)})")
    for key, value in data.items():
        if key not in KEYS:
            raise ConfigError(f"agent.prompt_template={path}: unknown key '{key}' (allowed: {', '.join(KEYS)})")
        if not isinstance(value, str):
            raise ConfigError(f"agent.prompt_template={path}: {key} must be a text, not {type(value).__name__}")
    if "prompt" not in data:
        raise ConfigError(f"agent.prompt_template={path}: the key 'prompt' is required")
    return data


def load_prompt_file(path: str) -> FilePromptTemplate:
    """The checked template of the file `path` (ConfigError, one line, on any problem). Cached per path
    and modification time, so the config check and the rollouts read the file once."""
    file = Path(path).expanduser()
    stamp = file.stat().st_mtime_ns if file.is_file() else -1
    return _load(str(path), stamp)


@lru_cache(maxsize=16)
def _load(path: str, stamp: int) -> FilePromptTemplate:
    data = _read(path)
    actions = [("admissible_actions", "available_actions")]
    _check(path, "prompt", data["prompt"], PROMPT_FIELDS, [("action_history",), ("current_observation",), *actions])
    if "first_prompt" in data:
        _check(path, "first_prompt", data["first_prompt"], PROMPT_FIELDS, [("current_observation",), *actions])
    if "memory_item" in data:
        _check(path, "memory_item", data["memory_item"], MEMORY_FIELDS, [("action",)])
    if "action_item" in data:
        _check(path, "action_item", data["action_item"], ACTION_FIELDS, [("action",)])
    for key in ("memory_separator", "action_separator"):
        if key in data:
            _check(path, key, data[key], (), [])
    template = FilePromptTemplate(path=path, **data)
    try:  # a format spec that does not fit its value ({step_count:s}) shows up here, not mid-run
        template.render(
            instruction="t", step_index=1, history=[("o", "a")], observation="o", admissible_actions=["a", "b"]
        )
        template.render(instruction="t", step_index=0, history=[], observation="o", admissible_actions=["a"])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise ConfigError(f"agent.prompt_template={path}: the template does not render ({err})") from None
    return template
