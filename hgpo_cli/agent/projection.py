"""Action projection: from the model's reply to the text sent to the environment.

The reply should end with `<action>...</action>`. The action is the text inside the last `<action>`
tag (up to the next `</action>`). It is valid when that text, trimmed, with runs of whitespace collapsed
and compared case-insensitively, equals one of the admissible actions; the admissible spelling is then
what goes to the environment. Otherwise the step is invalid (the trainer applies the invalid-action
penalty) and the raw text (or "" when there is no usable tag) goes to the environment, which answers
"Nothing happens." to anything it does not know.

Answer format `action` (`agent.answer_format=action`, for small models): the reply was opened with
`<action>` and is read up to `</action>` or the end of its first non-empty line, a leading list marker
(`-`, `*`) dropped, because a small model tends to copy the prompt's list ("- go to drawer 1") and not to
close the tag. The match against the admissible actions is the same.

An admissible entry written as a template, `name[<placeholder>]` (WebShop's `search[<your query>]`),
admits any `name[text]` with non-empty text: the query is the agent's own, whitespace collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence

OPEN, CLOSE = "<action>", "</action>"
LIST_MARKERS = "-*"
MAX_ACTION_CHARS = 500  # an invalid action longer than this is cut before it is sent to the environment


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _tag_body(response: str, *, last: bool, closed: bool) -> str | None:
    """The text after the last (or first) `<action>`, up to `</action>`; None without the tag, or when
    `closed` and the tag is never closed (else the text runs to the end). Tags match case-insensitively."""
    lower = response.lower()
    start = lower.rfind(OPEN) if last else lower.find(OPEN)
    if start < 0:
        return None
    begin = start + len(OPEN)
    end = lower.find(CLOSE, begin)
    if end < 0:
        return None if closed else response[begin:]
    return response[begin:end]


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


def project_action(response: str, admissible: Sequence[str], answer_format: str = "think") -> tuple[str, bool]:
    """(action text for the environment, valid). Never raises.

    answer_format: "think" (the strict tag rule) or "action" (`extract_action_line`)."""
    reader = extract_action_line if answer_format == "action" else extract_action
    text = reader(response or "")
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
