"""agent.validity: verl-agent's `format` rule (the default) against our `admissible` rule, on written-out
replies; the rollout sends, records and remembers the projected action; the paper presets select `format`."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from hgpo_cli.agent.projection import TAIL_CHARS, is_admissible, project_action

ADMISSIBLE = ["go to cabinet 1", "go to countertop 2", "take apple 1 from countertop 2", "look", "inventory"]
PAGE = ["search[<your query>]", "click[back to search]"]
THINK = "<think>The apple is on the countertop.</think>"


# ------------------------------------------------------------------ format rule, answer format "think"
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (f"{THINK}<action>go to cabinet 1</action>", ("go to cabinet 1", True)),
        # two action tags: the first wins (the admissible rule takes the last)
        (f"{THINK}<action>look</action> or <action>go to cabinet 1</action>", ("look", True)),
        # lower-cased and trimmed; inner whitespace kept as written
        (f"{THINK}<ACTION>  Go To  Cabinet 1 \n</Action>", ("go to  cabinet 1", True)),
        # no <think> pair: the action still goes out, the reply is invalid
        ("<action>look</action>", ("look", False)),
        ("<think>half open<action>look</action>", ("look", False)),
        ("<THINK>x</THINK><action>look</action>", ("look", False)),  # the think check is case-sensitive
        ("</think>x<think><action>look</action>", ("look", True)),  # both present, in any order
        # CJK characters anywhere make it invalid
        ("<think>我应该看看</think><action>look</action>", ("look", False)),
        (f"{THINK}<action>look 一下</action>", ("look 一下", False)),
        # well-formed but not a listed command: valid (the game answers "Nothing happens.")
        (f"{THINK}<action>go to fridge 1</action>", ("go to fridge 1", True)),
        # empty tag: valid, "" goes out (verl-agent checks the tags, not their content)
        (f"{THINK}<action></action>", ("", True)),
        (f"{THINK}<action> \n\t </action>", ("", True)),
        # the first </action> before the first <action>: the slice between them is empty
        (f"{THINK}</action> then <action>look</action>", ("", True)),
    ],
)
def test_format_rule_of_the_think_answer_format(reply: str, expected: tuple[str, bool]) -> None:
    assert project_action(reply, ADMISSIBLE) == expected
    assert project_action(reply, ADMISSIBLE, "think", "format") == expected


def test_without_a_tag_pair_the_last_30_characters_go_out_and_the_reply_is_invalid() -> None:
    reply = "<think>a</think>Nothing to add. ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
    assert project_action(reply, ADMISSIBLE) == ("abcdefghijklmnopqrstuvwxyz0123", False)
    # WebShop's projection keeps 20
    assert TAIL_CHARS == {"alfworld": 30, "webshop": 20}
    assert project_action(reply, PAGE, tail_chars=20) == ("klmnopqrstuvwxyz0123", False)
    # an unclosed tag is no tag pair: the tail, 30 characters of "<think>a</think><action>go to cabinet 1"
    assert project_action("<think>a</think><action>go to cabinet 1", ADMISSIBLE) == (
        "/think><action>go to cabinet 1",
        False,
    )
    assert project_action("Look", ADMISSIBLE) == ("look", False)  # shorter than 30: all of it
    assert project_action("", ADMISSIBLE) == ("", False)


def test_inadmissible_but_well_formed_is_valid_under_format_only() -> None:
    reply = f"{THINK}<action>Go to fridge 1</action>"
    assert project_action(reply, ADMISSIBLE, validity="format") == ("go to fridge 1", True)
    assert project_action(reply, ADMISSIBLE, validity="admissible") == ("Go to fridge 1", False)
    assert not is_admissible("go to fridge 1", ADMISSIBLE)
    assert is_admissible("Go To  Cabinet 1", ADMISSIBLE)


def test_a_10k_character_reply() -> None:
    filler = "I am thinking about this very carefully. " * 250  # 10,250 characters
    reply = f"<think>{filler}</think><action>inventory</action>"
    assert len(reply) > 10_000
    start = time.perf_counter()
    assert project_action(reply, ADMISSIBLE) == ("inventory", True)
    assert time.perf_counter() - start < 0.05
    body = "x" * 10_000  # a valid tag body is sent whole (verl-agent cuts nothing)
    assert project_action(f"{THINK}<action>{body}</action>", ADMISSIBLE) == (body, True)
    assert project_action(filler, ADMISSIBLE) == ("ng about this very carefully. ", False)  # no tags: the tail


# ----------------------------------------------------------------- format rule, answer format "action"
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<action>go to cabinet 1</action>", ("go to cabinet 1", True)),
        ("<action>Go To Cabinet 1", ("go to cabinet 1", True)),  # not closed: to the end of the line
        ("<action>\n- Go to countertop 2\n- go to cabinet 1\n", ("go to countertop 2", True)),  # list copied
        ("<action>look</action><action>inventory</action>", ("look", True)),  # the first tag
        ("<action> will be: go to cabinet 1", ("will be: go to cabinet 1", True)),  # unlisted, well-formed
        ("<action>看 look", ("看 look", False)),  # CJK
        ("<action>look\n我", ("look", False)),  # CJK anywhere in the reply
        ("<action>\n\n  \n", ("", False)),  # empty body
        ("<action></action>go to cabinet 1", ("", False)),  # nothing inside the tag
        ("Go to cabinet 1", ("go to cabinet 1", False)),  # no tag at all: the tail, invalid
    ],
)
def test_format_rule_of_the_action_answer_format(reply: str, expected: tuple[str, bool]) -> None:
    assert project_action(reply, ADMISSIBLE, "action") == expected
    assert project_action(reply, ADMISSIBLE, "action", "format") == expected


def test_the_action_format_under_both_rules() -> None:
    reply = "<action> will be: go to cabinet 1"
    assert project_action(reply, ADMISSIBLE, "action", "admissible") == ("will be: go to cabinet 1", False)
    reply = "<action>\n- LOOK\n"
    assert project_action(reply, ADMISSIBLE, "action", "admissible") == ("look", True)
    assert project_action(reply, ADMISSIBLE, "action", "format") == ("look", True)
    assert project_action("<action>", ADMISSIBLE, "action", "admissible") == ("", False)


def test_no_think_and_two_tags_under_the_admissible_rule() -> None:
    """Our earlier rule: <think> is not checked, the last tag wins, only listed commands are valid."""
    assert project_action("<action>look</action>", ADMISSIBLE, validity="admissible") == ("look", True)
    two = f"{THINK}<action>look</action> or <action>go to cabinet 1</action>"
    assert project_action(two, ADMISSIBLE, validity="admissible") == ("go to cabinet 1", True)
    assert project_action(f"{THINK}<action></action>", ADMISSIBLE, validity="admissible") == ("", False)
    assert project_action("no tags here", ADMISSIBLE, validity="admissible") == ("", False)


# ---------------------------------------------------------------------------------------------- WebShop
def test_webshop_under_format_follows_verl_agent() -> None:
    reply = f"{THINK}<action> Search[Red Running Shoes] </action>"
    assert project_action(reply, PAGE, tail_chars=20) == ("search[red running shoes]", True)
    # a click that the page does not list still goes out, valid
    assert project_action(f"{THINK}<action>click[Buy Now]</action>", PAGE, tail_chars=20) == ("click[buy now]", True)
    # the template rule stays for `admissible`: the query is the agent's own
    assert project_action(reply, PAGE, validity="admissible") == ("search[Red Running Shoes]", True)
    assert project_action(f"{THINK}<action>click[buy now]</action>", PAGE, validity="admissible")[1] is False


def test_never_raises() -> None:
    for reply in (None, 12, b"<action>look</action>", "<action>" * 1000, "</action>" * 1000):
        for answer_format in ("think", "action", "other"):
            for validity in ("format", "admissible", "other"):
                action, valid = project_action(reply, ADMISSIBLE, answer_format, validity)  # type: ignore[arg-type]
                assert isinstance(action, str) and isinstance(valid, bool)
    assert project_action(None, ADMISSIBLE) == ("", False)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ the presets
def test_config_show_prints_validity_format_for_the_paper_presets() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "config", "show", "alfworld-qwen2.5-1.5b"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "\nagent:\n" in done.stdout and "  validity: format\n" in done.stdout
    assert yaml.safe_load(done.stdout)["agent"]["validity"] == "format"
    from hgpo_cli.config import load_config

    for name in ("alfworld-qwen2.5-1.5b", "alfworld-qwen2.5-7b", "webshop-qwen2.5-1.5b", "webshop-qwen2.5-7b"):
        assert load_config(name).agent.validity == "format", name
    assert load_config(None, ["agent.validity=admissible"]).agent.validity == "admissible"


# ----------------------------------------------------------------------------- the rollout and its memory
class InProcessPool:
    """The EnvPool interface over real ALFWorld environments in this process (no Ray)."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps
        self.envs: dict = {}

    def reset(self, tasks):
        from hgpo_cli.envs.alfworld.env import AlfWorldEnv

        self.envs = {i: AlfWorldEnv(task, max_steps=self.max_steps) for i, task in enumerate(tasks)}
        return [env.reset() for env in self.envs.values()]

    def step(self, actions):
        return {i: self.envs[i].step(action) for i, action in actions.items()}

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


@pytest.mark.parametrize("validity", ["format", "admissible"])
def test_the_rollout_sends_records_and_remembers_the_projected_action(validity, tmp_path_factory, tiny_model_dir):
    from hgpo_cli.engines.base import Generation, SamplingSettings
    from hgpo_cli.envs.alfworld.games import scan_split
    from hgpo_cli.envs.alfworld.suite import PROMPT
    from hgpo_cli.models.loading import load_tokenizer
    from hgpo_cli.train.rollout import play_episodes
    from tests.test_alfworld_generated import generated_games

    root = generated_games(tmp_path_factory)
    task = sorted(scan_split(root / "json_2.1.1" / "train", "train"), key=lambda t: t.task_id)[0]
    replies = iter(
        [
            f"{THINK}<action>Go To Nowhere 9</action>",  # well-formed, not a command of the game
            "I do not know what to do next, so I will say ABCDEFGHIJKLMNOPQRSTUVWXYZ0123",  # no tags
            f"{THINK}<action>look</action>",
        ]
    )

    def generate(prompts, settings):
        return [
            Generation(token_ids=[1, 2], log_probs=[-0.1, -0.2], text=next(replies), finished=True) for _ in prompts
        ]

    pool = InProcessPool(max_steps=3)
    try:
        result = play_episodes(
            [task],
            ["g0"],
            group_size=1,
            pool=pool,
            generate=generate,
            tokenizer=load_tokenizer(str(tiny_model_dir)),
            template=PROMPT,
            max_steps=3,
            history_length=2,
            max_prompt_tokens=4096,
            sampling=SamplingSettings(max_new_tokens=8),
            validity=validity,
            tail_chars=30,
        )
    finally:
        pool.close()
    first, second, third = result.records
    if validity == "format":
        assert (first.action, first.valid) == ("go to nowhere 9", True)
        assert (second.action, second.valid) == ("abcdefghijklmnopqrstuvwxyz0123", False)
    else:
        assert (first.action, first.valid) == ("Go To Nowhere 9", False)
        assert (second.action, second.valid) == ("", False)
    assert (third.action, third.valid) == ("look", True)
    # the next prompts' memory shows what the environment received
    assert f"Command: {first.action}\n" in second.prompt
    assert f"Command: {first.action}\n" in third.prompt and f"Command: {second.action}\n" in third.prompt
    assert "Nothing happens." in second.prompt  # the game's answer to the unknown command
    (episode,) = result.episodes
    assert episode.invalid_steps == (1 if validity == "format" else 2)
    assert episode.inadmissible_steps == 2
