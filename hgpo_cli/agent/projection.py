"""Action projection: from the model's reply to (the text sent to the environment, valid).

Two validity rules (`agent.validity`), two answer formats (`agent.answer_format`).

`format` (the default, verl-agent's rule: `agent_system/environments/env_package/alfworld/projection.py`
and `.../webshop/projection.py`), answer format `think`:

- The reply is lower-cased. The action is the text between the first `<action>` and the first
  `</action>` of the reply, trimmed (Python's `str.strip`); it is empty when the first `</action>` comes
  before the first `<action>`. Nothing else is done to it: no whitespace collapsing, no length cut.
- With either action tag missing, the action is the last `tail_chars` characters of the lower-cased
  reply (30 for ALFWorld, 20 for WebShop: `TAIL_CHARS`), and the reply is invalid.
- The reply is also invalid when `<think>` or `</think>` is missing (looked up in the reply as written,
  case-sensitively, in any order), or when it holds a CJK character (U+4E00..U+9FFF).
- Otherwise it is valid, whatever the action says: an empty tag (`<action></action>`) is valid, and a
  command the environment does not list is valid too. The environment answers it ("Nothing happens.")
  and it is not penalised.

`format`, answer format `action` (the reply was opened with `<action>` by the prompt,
`hgpo_cli.agent.prompts.REPLY_PREFIX`): there is no `<think>` to require and the model often does not close
the tag, so the rule that corresponds reads the first non-empty line after the first `<action>`, up to
`</action>` or the end of that line, a leading list marker (`-`, `*`) dropped (`extract_action_line`). The
action is that line lower-cased; the reply is valid when the line is non-empty and the reply holds no CJK
character. An empty body (nothing but whitespace or list markers) is invalid and sends "". A reply
without `<action>` at all (not possible in a rollout, where the prefix is part of the reply) sends its
lower-cased tail and is invalid, as under `think`.

`admissible` (our earlier rule, kept as an option): the action is the text inside the *last* `<action>`
tag (`think`; it must be closed) or the `extract_action_line` text (`action`). It is valid when that
text, trimmed, whitespace collapsed and compared case-insensitively, equals one of the admissible
actions, and the admissible spelling is sent. An admissible entry written as a template,
`name[<placeholder>]` (WebShop's `search[<your query>]`), admits any `name[text]` with non-empty text (the
query is the agent's own, whitespace collapsed). Anything else is invalid and the collapsed text, cut to
`MAX_ACTION_CHARS`, is sent ("" when there is no usable tag). `<think>` is not checked.

Under every rule the function is pure and never raises; the memory of the next prompt shows the action
exactly as it was sent (`hgpo_cli.train.rollout`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OPEN, CLOSE = "<action>", "</action>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
LIST_MARKERS = "-*"
MAX_ACTION_CHARS = 500  # `admissible` rule: an invalid action longer than this is cut before it is sent
VALIDITY_RULES = ("format", "admissible")
# `format` rule: characters of the lower-cased reply sent when it has no action tag pair (verl-agent's
# ALFWorld and WebShop projections).
TAIL_CHARS = {"alfworld": 30, "webshop": 20}
DEFAULT_TAIL_CHARS = 30
CJK = re.compile("[\u4e00-\u9fff]")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


_OPEN_RE, _CLOSE_RE = re.compile(re.escape(OPEN), re.IGNORECASE), re.compile(re.escape(CLOSE), re.IGNORECASE)


def _tag_body(response: str, *, last: bool, closed: bool) -> str | None:
    """The text after the last (or first) `<action>`, up to `</action>`; None without the tag, or when
    `closed` and the tag is never closed (else the text runs to the end). Tags match case-insensitively."""
    if last:
        found = None
        for match in _OPEN_RE.finditer(response):
            found = match
    else:
        found = _OPEN_RE.search(response)
    if found is None:
        return None
    begin = found.end()
    end = _CLOSE_RE.search(response, begin)
    if end is None:
        return None if closed else response[begin:]
    return response[begin : end.start()]


def extract_action(response: str) -> str | None:
    """The text inside the last `<action>` tag, or None when there is none or it is never closed."""
    return _tag_body(response, last=True, closed=True)


def extract_action_line(response: str) -> str | None:
    """Answer format `action`: the first non-empty line after the first `<action>`, up to `</action>`,
    without a leading list marker; None when there is no tag or nothing after it."""
    body = _tag_body(response, last=False, closed=False)
    for line in (body or "").splitlines():
        line = line.lstrip(LIST_MARKERS + " \t").strip()
        if line:
            return line
    return None


def _tail(reply: str, tail_chars: int) -> str:
    return reply[-tail_chars:] if tail_chars > 0 else ""


def _project_format_think(reply: str, tail_chars: int) -> tuple[str, bool]:
    """verl-agent's rule (see the module docstring)."""
    lower = reply.lower()
    start, end = lower.find(OPEN), lower.find(CLOSE)
    if start < 0 or end < 0:
        return _tail(lower, tail_chars), False
    action = lower[start + len(OPEN) : end].strip()
    valid = THINK_OPEN in reply and THINK_CLOSE in reply and CJK.search(reply) is None
    return action, valid


def _project_format_action(reply: str, tail_chars: int) -> tuple[str, bool]:
    """The `format` rule of answer format `action` (see the module docstring)."""
    if OPEN not in reply.lower():
        return _tail(reply.lower(), tail_chars), False
    line = extract_action_line(reply)
    if line is None:
        return "", False
    return line.lower(), CJK.search(reply) is None


def _project_admissible(reply: str, admissible: Sequence[str], answer_format: str) -> tuple[str, bool]:
    """Our earlier rule: valid only when the action is one of `admissible` (templates filled)."""
    reader = extract_action_line if answer_format == "action" else extract_action
    text = reader(reply)
    if text is None:
        return "", False
    wanted = _norm(text)
    if not wanted:
        return "", False
    for action in admissible:
        if _norm(action) == wanted:
            return action, True
    cleaned = " ".join(text.split())
    for action in admissible:
        filled = _fill_template(action, cleaned)
        if filled is not None:
            return filled, True
    return cleaned[:MAX_ACTION_CHARS], False


def project_action(
    reply: str,
    admissible_actions: Sequence[str],
    answer_format: str = "think",
    validity: str = "format",
    *,
    tail_chars: int = DEFAULT_TAIL_CHARS,
) -> tuple[str, bool]:
    """(action text for the environment, valid). Pure; never raises.

    answer_format: "think" or "action" (anything else reads as "think").
    validity: "format" (verl-agent's rule) or "admissible" (anything else reads as "format").
    tail_chars: `format` rule, characters of the reply's end sent when it has no action tags
    (`TAIL_CHARS[env]`). admissible_actions is only read by the `admissible` rule.
    """
    try:
        text = reply if isinstance(reply, str) else ("" if reply is None else str(reply))
        if validity == "admissible":
            return _project_admissible(text, list(admissible_actions or []), answer_format)
        if answer_format == "action":
            return _project_format_action(text, int(tail_chars))
        return _project_format_think(text, int(tail_chars))
    except Exception:  # noqa: BLE001 - the contract: a reply never stops a rollout
        return "", False


def is_admissible(action: str, admissible_actions: Sequence[str]) -> bool:
    """Whether `action` (as sent) is one of the listed actions, or fills a listed template; for the
    inadmissible-command count that rollouts log under either validity rule."""
    wanted = _norm(action)
    if not wanted:
        return False
    if any(_norm(a) == wanted for a in admissible_actions):
        return True
    cleaned = " ".join(action.split())
    return any(_fill_template(a, cleaned) is not None for a in admissible_actions)


def _fill_template(template: str, action: str) -> str | None:
    """`action` when it fills the template `name[<placeholder>]` with non-empty text, else None."""
    if not (template.endswith(">]") and "[<" in template):
        return None
    name = template[: template.index("[<")]
    if not (action.endswith("]") and _norm(action[: len(name) + 1]) == _norm(name + "[")):
        return None
    argument = action[len(name) + 1 : -1].strip()
    if not argument or len(argument) > MAX_ACTION_CHARS or "[" in argument or "]" in argument:
        return None
    return f"{name}[{argument}]"
