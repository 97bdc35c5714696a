"""agent.prompt_template=PATH: a user's template file renders with the right values, reproduces
verl-agent's wording, and every problem with it is a one-line config error at load time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hgpo_cli.agent.prompt_file import EXAMPLES_DIR, load_prompt_file
from hgpo_cli.agent.prompts import build_prompt
from hgpo_cli.config import load_config
from hgpo_cli.errors import ConfigError

MINE = r"""prompt: "Task: {task_description}. Done {step_count}; last {history_length}:\n{action_history}\n\
  Step {current_step}: {current_observation}\nChoose from [{admissible_actions}]. {{literal}}"
first_prompt: "First: {current_observation} | {available_actions}"
memory_item: "<{step}|{observation}|{action}>"
memory_separator: " ; "
action_item: "({action})"
action_separator: ", "
"""


def _write(tmp_path: Path, text: str, name: str = "t.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_template_file_renders_with_the_right_values(tmp_path: Path) -> None:
    template = load_prompt_file(_write(tmp_path, MINE))
    text = build_prompt(
        template,
        instruction="heat an egg",
        step_index=4,
        history=[("saw a", "did a"), ("saw b", "did b")],
        observation="now c",
        admissible_actions=["look", "go to sink 1"],
    )
    assert text == (
        "Task: heat an egg. Done 4; last 2:\n<3|saw a|did a> ; <4|saw b|did b>\n"
        "Step 5: now c\nChoose from [(look), (go to sink 1)]. {literal}"
    )
    first = build_prompt(
        template, instruction="heat an egg", step_index=0, history=[], observation="start", admissible_actions=["x"]
    )
    assert first == "First: start | (x)"
    # values go in verbatim: braces in an observation are not placeholders
    odd = template.render(
        instruction="{x}", step_index=1, history=[("{o}", "{a}")], observation="{y}", admissible_actions=["{z}"]
    )
    assert "<1|{o}|{a}>" in odd and "Step 2: {y}" in odd and "[({z})]" in odd


def test_without_first_prompt_the_prompt_serves_every_step(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'prompt: "{step_count}/{history_length}[{action_history}] {current_observation} {admissible_actions}"'
    )
    template = load_prompt_file(path)
    assert template.render(
        instruction="t", step_index=0, history=[], observation="o", admissible_actions=["a", "b"]
    ) == ("0/0[] o a\nb")
    # the default memory item is verl-agent's SimpleMemory line
    assert template.render(
        instruction="t", step_index=3, history=[("o2", "a2")], observation="o", admissible_actions=["a"]
    ) == ("3/1[[Observation 3: 'o2', Action 3: 'a2']] o a")


VERL_AGENT_ALFWORLD = (
    "\nYou are an expert agent operating in the ALFRED Embodied Environment. Your task is to: put a mug in "
    "the sink\nPrior to this step, you have already taken 2 step(s). Below are the most recent 2 observations "
    "and the corresponding actions you took: [Observation 1: 'You are in a kitchen.', Action 1: 'go to sink 1']"
    "\n[Observation 2: 'You see a sink.', Action 2: 'look']\nYou are now at step 3 and your current observation "
    "is: Nothing happens.\nYour admissible actions of the current situation are: ['look'\n 'go to sink 1'].\n\n"
    "Now it's your turn to take an action.\nYou should first reason step-by-step about the current situation. "
    "This reasoning process MUST be enclosed within <think> </think> tags. \nOnce you've finished your "
    "reasoning, you should choose an admissible action for current step and present it within <action> "
    "</action> tags.\n"
)


def test_the_shipped_alfworld_example_reproduces_verl_agent() -> None:
    template = load_prompt_file(str(EXAMPLES_DIR / "alfworld-verl-agent.yaml"))
    text = template.render(
        instruction="put a mug in the sink",
        step_index=2,
        history=[("You are in a kitchen.", "go to sink 1"), ("You see a sink.", "look")],
        observation="Nothing happens.",
        admissible_actions=["look", "go to sink 1"],
    )
    assert text == VERL_AGENT_ALFWORLD
    first = template.render(
        instruction="x", step_index=0, history=[], observation="Your task is to: y", admissible_actions=["look"]
    )
    assert first.startswith(
        "\nYou are an expert agent operating in the ALFRED Embodied Environment.\nYour current observation is: "
        "Your task is to: y\nYour admissible actions of the current situation are: ['look'].\n\n"
    )
    web = load_prompt_file(str(EXAMPLES_DIR / "webshop-verl-agent.yaml"))
    page = web.render(instruction="a red mug", step_index=0, history=[], observation="o", admissible_actions=["a", "b"])
    assert "WebShop e\u2011commerce environment. \nYour task is to: a red mug.\n" in page
    assert "are: \n[\n'a',\n'b',\n].\n" in page


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'prompt: "{current_observation} {admissible_actions} {actoin_history}"',
            "unknown placeholder {actoin_history}",
        ),
        ('prompt: "{action_history} {admissible_actions}"', "prompt: missing placeholder {current_observation}"),
        (
            'prompt: "{action_history} {current_observation}"',
            "missing placeholder {admissible_actions} or {available_actions}",
        ),
        ('prompt: "{current_observation} {admissible_actions}"', "missing placeholder {action_history}"),
        ('prompt: "{action_history} {current_observation} {admissible_actions} {}"', "unknown placeholder {}"),
        ('prompt: "{action_history} {current_observation} {admissible_actions} {step}"', "unknown placeholder {step}"),
        ('prompt: "{action_history} {current_observation} {admissible_actions} {"', "prompt: Single '{'"),
        ('prompt: "{action_history} {current_observation:d} {admissible_actions}"', "does not render"),
        ('first_prompt: "{current_observation} {admissible_actions}"', "the key 'prompt' is required"),
        ('prompt: "{action_history} {current_observation} {admissible_actions}"\nfoo: x', "unknown key 'foo'"),
        (
            'prompt: "{action_history} {current_observation} {admissible_actions}"\nmemory_item: "{observation}"',
            "memory_item: missing placeholder {action}",
        ),
        (
            'prompt: "{action_history} {current_observation} {admissible_actions}"\naction_item: "{name}"',
            "action_item: unknown placeholder {name}",
        ),
        ("prompt: [1, 2]", "prompt must be a text, not list"),
        ("- just a list", "expected YAML keys"),
        ('prompt: "unclosed', "not a readable YAML file"),
    ],
)
def test_template_problems_are_one_line_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config("default", [f"agent.prompt_template={path}"])
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith(f"agent.prompt_template={path}: ")
    assert "\n" not in str(err.value)


def test_a_missing_file_and_a_missing_placeholder_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = _write(tmp_path, 'prompt: "{task_description} {current_observation} {admissible_actions}"', "bad.txt")
    for path, message in ((bad, "missing placeholder {action_history}"), (str(tmp_path / "none.yaml"), "no such file")):
        done = subprocess.run(
            [sys.executable, "-m", "hgpo_cli", "config", "show", "default", f"agent.prompt_template={path}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hgpo: error: agent.prompt_template=") and message in lines[0]
        assert "Traceback" not in done.stderr


def test_the_config_keeps_an_absolute_path_and_rollouts_use_the_file(tmp_path: Path, monkeypatch) -> None:
    from hgpo_cli.envs.alfworld.suite import PROMPT
    from hgpo_cli.train.rollout import prompt_template, rollout_options

    _write(tmp_path, MINE, "mine.yaml")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("default", ["agent.prompt_template=mine.yaml"])
    assert cfg.agent.prompt_template == str(tmp_path / "mine.yaml")
    assert rollout_options(cfg, PROMPT)["template"].first_prompt == "First: {current_observation} | {available_actions}"
    assert prompt_template(load_config("default"), PROMPT) is PROMPT
