"""Prompt templates: one generic layout, the text of each block supplied by the suite.

A prompt is, in order: the intro (task), the memory block (the last K observation/action pairs, or a
line saying how many steps were taken when there is no memory to show), the current observation, the
admissible actions, and the answer-format instruction. Each suite ships a `PromptTemplate` as `PROMPT`
(ALFWorld: `hgpo_cli.envs.alfworld.suite.PROMPT`; WebShop: `hgpo_cli.envs.webshop.suite.PROMPT`).
`agent.prompt_template=PATH` replaces it with a user's file (`hgpo_cli.agent.prompt_file`).

Placeholders per block (str.format fields; values are inserted verbatim, braces in them are safe):

- `intro`: {instruction}
- `history`: {history} (the items joined), {num_steps} (steps taken so far), {history_length} (pairs shown)
- `history_item`: {step} (1-based step number of the pair), {observation}, {action}
- `no_history`: {num_steps}
- `current`: {step} (1-based number of the current step), {observation}
- `actions`: {actions} (each admissible action formatted by `action_item`, joined by `action_separator`)
- `answer`: no fields (the paper's format: reasoning in <think>, then the action in <action>)
- `answer_action`: no fields (answer format `action`: the action alone; the reply is opened with
  `REPLY_PREFIX["action"]` so that it starts inside the tag)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ANSWER_FORMATS = ("think", "action")
# What the assistant's turn starts with, per answer format: appended to the chat-templated prompt, so the
# model continues from there and is trained on its own tokens only.
REPLY_PREFIX = {"think": "", "action": "<action>"}


@dataclass(frozen=True)
class PromptTemplate:
    """The text blocks of a suite's prompt. `no_history_first` is used at step 1 (nothing taken yet)."""

    intro: str
    history: str
    history_item: str
    no_history: str
    current: str
    actions: str
    answer: str
    answer_action: str = "Give exactly one command from the list inside <action> and </action>, and nothing else."
    no_history_first: str = ""
    history_separator: str = "\n"
    action_item: str = "{action}"
    action_separator: str = "\n"
    block_separator: str = "\n\n"


def build_prompt(
    template: PromptTemplate,
    *,
    instruction: str,
    step_index: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str],
    answer_format: str = "think",
) -> str:
    """The prompt text of step `step_index` (0-based).

    history: the memory window, oldest first: (observation, action) pairs of the steps just before this
    one (`StepMemory.window()`); the pair j of n is numbered step `step_index - n + j + 1` (1-based).
    answer_format: one of ANSWER_FORMATS; picks the `answer` or the `answer_action` block.
    A template with its own `render` (a user's file, `hgpo_cli.agent.prompt_file`) renders itself.
    """
    render = getattr(template, "render", None)
    if callable(render):
        return render(
            instruction=instruction,
            step_index=step_index,
            history=history,
            observation=observation,
            admissible_actions=admissible_actions,
            answer_format=answer_format,
        )
    blocks = [template.intro.format(instruction=instruction)]
    if history:
        first = step_index - len(history) + 1
        items = template.history_separator.join(
            template.history_item.format(step=first + j, observation=obs, action=act)
            for j, (obs, act) in enumerate(history)
        )
        blocks.append(template.history.format(history=items, num_steps=step_index, history_length=len(history)))
    elif step_index == 0:
        if template.no_history_first:
            blocks.append(template.no_history_first.format(num_steps=0))
    elif template.no_history:
        blocks.append(template.no_history.format(num_steps=step_index))
    blocks.append(template.current.format(step=step_index + 1, observation=observation))
    actions = template.action_separator.join(template.action_item.format(action=a) for a in admissible_actions)
    blocks.append(template.actions.format(actions=actions))
    blocks.append(template.answer_action if answer_format == "action" else template.answer)
    return template.block_separator.join(b for b in blocks if b)
