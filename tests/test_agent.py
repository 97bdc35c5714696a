"""The agent side: action projection, the K-step memory, and prompt building."""

from __future__ import annotations

import time

import pytest

from hgpo_cli.agent.memory import MemoryBank, StepMemory
from hgpo_cli.agent.projection import MAX_ACTION_CHARS, extract_action, extract_action_line, project_action
from hgpo_cli.agent.prompts import REPLY_PREFIX, PromptTemplate, build_prompt

ADMISSIBLE = ["go to cabinet 1", "go to countertop 2", "take apple 1 from countertop 2", "look", "inventory"]


# ------------------------------------------------------------------------------------------- projection
# The `admissible` rule (agent.validity=admissible); verl-agent's `format` rule: test_projection_validity.py.
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>hmm</think><action>go to cabinet 1</action>", ("go to cabinet 1", True)),
        ("<think>no tag at all</think> go to cabinet 1", ("", False)),
        ("", ("", False)),
        ("<action></action>", ("", False)),
        ("<action>   \n\t </action>", ("", False)),
        ("<action>go to cabinet 1", ("", False)),  # never closed
        ("<action>look</action> then <action>go to countertop 2</action>", ("go to countertop 2", True)),
        ("<action>look</action> later <action>unclosed", ("", False)),  # the last tag is not closed
        ("<action>  Go To   Cabinet 1 \n</action>", ("go to cabinet 1", True)),
        ("<ACTION>LOOK</ACTION>", ("look", True)),
        ("<action>go to fridge 1</action>", ("go to fridge 1", False)),
        ("<action>help</action>", ("help", False)),
        ("<action>go to cabinet</action>", ("go to cabinet", False)),  # a prefix is not a match
    ],
)
def test_projection_cases(response: str, expected: tuple[str, bool]) -> None:
    assert project_action(response, ADMISSIBLE, validity="admissible") == expected


def test_projection_returns_the_admissible_spelling() -> None:
    action, valid = project_action("<action>TAKE apple 1 FROM countertop 2</action>", ADMISSIBLE, validity="admissible")
    assert valid and action == "take apple 1 from countertop 2"


def test_projection_of_a_10k_character_reply() -> None:
    filler = "I am thinking about this very carefully. " * 250  # ~10k characters
    reply = f"<think>{filler}</think><action>inventory</action>"
    assert len(reply) > 10_000
    start = time.perf_counter()
    assert project_action(reply, ADMISSIBLE, validity="admissible") == ("inventory", True)
    assert time.perf_counter() - start < 0.05
    long_action = "x" * 10_000
    action, valid = project_action(f"<action>{long_action}</action>", ADMISSIBLE, validity="admissible")
    assert not valid and len(action) == MAX_ACTION_CHARS
    assert project_action(filler * 1, ADMISSIBLE, validity="admissible") == ("", False)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<action>go to cabinet 1</action>", ("go to cabinet 1", True)),
        ("<action>\n- go to countertop 2\n- go to cabinet 1\n", ("go to countertop 2", True)),  # copied list
        ("<action> * LOOK", ("look", True)),
        ("<action>inventory</action>\nlook", ("inventory", True)),
        ("<action> will be: go to cabinet 1", ("will be: go to cabinet 1", False)),
        ("<action>\n\n  \n", ("", False)),
        ("<action></action>go to cabinet 1", ("", False)),  # nothing inside the tag
        ("go to cabinet 1", ("", False)),  # no tag: the prefix was not part of the reply
    ],
)
def test_projection_of_the_action_answer_format(response: str, expected: tuple[str, bool]) -> None:
    assert project_action(response, ADMISSIBLE, "action", "admissible") == expected


def test_the_action_format_is_lenient_only_when_asked() -> None:
    reply = REPLY_PREFIX["action"] + "\n- look\n"
    assert project_action(reply, ADMISSIBLE, "think", "admissible") == ("", False)  # the paper's rule needs </action>
    assert project_action(reply, ADMISSIBLE, "action", "admissible") == ("look", True)
    assert REPLY_PREFIX["think"] == ""
    assert extract_action_line("<action>- - -\n  -- inventory") == "inventory"


def test_extract_action_takes_the_last_tag() -> None:
    assert extract_action("<action>a</action><action>b</action>") == "b"
    assert extract_action("nothing") is None


# ----------------------------------------------------------------------------------------------- memory
def _fill(memory: StepMemory, n: int) -> None:
    for t in range(n):
        memory.add(f"obs {t}", f"act {t}")


@pytest.mark.parametrize("k", [0, 2, 4])
def test_memory_window(k: int) -> None:
    memory = StepMemory(k)
    assert memory.window() == []
    _fill(memory, 1)
    assert memory.window() == ([] if k == 0 else [("obs 0", "act 0")])
    memory.reset()
    _fill(memory, 6)
    expected = [(f"obs {t}", f"act {t}") for t in range(6)][-k:] if k else []
    assert memory.window() == expected
    assert len(memory.window()) == min(k, 6)
    assert memory.steps == 6
    memory.reset()
    assert memory.window() == [] and memory.steps == 0


def test_memory_rejects_negative_k() -> None:
    with pytest.raises(ValueError):
        StepMemory(-1)


def test_memory_bank_keeps_trajectories_apart() -> None:
    bank = MemoryBank(3, 2)
    bank.add(0, "a", "x")
    bank.add(2, "b", "y")
    bank.add(2, "c", "z")
    bank.add(2, "d", "w")
    assert bank.window(0) == [("a", "x")]
    assert bank.window(1) == []
    assert bank.window(2) == [("c", "z"), ("d", "w")]


# ---------------------------------------------------------------------------------------------- prompts
TEMPLATE = PromptTemplate(
    intro="TASK: {instruction}",
    history="HISTORY ({history_length} of {num_steps}):\n{history}",
    history_item="[{step}] {observation} => {action}",
    no_history="STEPS SO FAR: {num_steps}",
    no_history_first="FIRST STEP",
    current="NOW (step {step}): {observation}",
    actions="ACTIONS:\n{actions}",
    action_item="* {action}",
    answer="ANSWER with <think></think><action></action>",
)


@pytest.mark.parametrize("k", [0, 2, 4])
def test_prompt_holds_task_step_history_observation_actions(k: int) -> None:
    memory = StepMemory(k)
    _fill(memory, 5)
    text = build_prompt(
        TEMPLATE,
        instruction="put a clean apple in fridge",
        step_index=5,
        history=memory.window(),
        observation="You are in the kitchen {with braces}.",
        admissible_actions=["look", "inventory"],
    )
    assert text.startswith("TASK: put a clean apple in fridge")
    assert "NOW (step 6): You are in the kitchen {with braces}." in text
    assert "* look\n* inventory" in text
    assert text.endswith("ANSWER with <think></think><action></action>")
    if k == 0:
        assert "STEPS SO FAR: 5" in text and "HISTORY" not in text
    else:
        assert f"HISTORY ({k} of 5)" in text
        shown = [line for line in text.splitlines() if line.startswith("[")]
        assert shown == [f"[{t + 1}] obs {t} => act {t}" for t in range(5 - k, 5)]
        assert "obs 0 =>" not in text or k >= 5


def test_prompt_of_the_first_step() -> None:
    text = build_prompt(
        TEMPLATE, instruction="x", step_index=0, history=[], observation="start", admissible_actions=["look"]
    )
    assert "FIRST STEP" in text and "NOW (step 1): start" in text


def test_prompt_in_the_action_answer_format() -> None:
    from hgpo_cli.envs.alfworld.suite import PROMPT

    kwargs = {"instruction": "x", "step_index": 0, "history": [], "observation": "o", "admissible_actions": ["look"]}
    think = build_prompt(PROMPT, **kwargs)
    action = build_prompt(PROMPT, **kwargs, answer_format="action")
    assert think.endswith(PROMPT.answer) and action.endswith(PROMPT.answer_action)
    assert "<think>" in think and "<think>" not in action
    assert think[: -len(PROMPT.answer)] == action[: -len(PROMPT.answer_action)]


def test_encode_prompt_opens_the_reply_and_keeps_it_when_truncating(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    from hgpo_cli.train.rollout import encode_prompt

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prefix_ids = tokenizer.encode("<action>", add_special_tokens=False)
    plain, cut = encode_prompt(tokenizer, "go to the kitchen " * 20, 10_000)
    opened, _ = encode_prompt(tokenizer, "go to the kitchen " * 20, 10_000, "<action>")
    assert not cut and opened == plain + prefix_ids
    short, cut = encode_prompt(tokenizer, "go to the kitchen " * 20, 12, "<action>")
    assert cut and len(short) == 12 and short[-len(prefix_ids) :] == prefix_ids
    assert tokenizer.decode(short).endswith("<action>")


def test_alfworld_prompt_asks_for_think_and_action() -> None:
    from hgpo_cli.envs.alfworld.suite import PROMPT

    text = build_prompt(
        PROMPT,
        instruction="put a mug in sinkbasin",
        step_index=3,
        history=[("saw a", "go to cabinet 1"), ("saw b", "open cabinet 1")],
        observation="The cabinet 1 is open.",
        admissible_actions=["close cabinet 1", "look"],
    )
    for needle in (
        "put a mug in sinkbasin",
        "3 step",
        "saw b",
        "open cabinet 1",
        "The cabinet 1 is open.",
        "- close cabinet 1",
        "<think>",
        "</think>",
        "<action>",
        "</action>",
        "Step 4",
    ):
        assert needle in text, needle
