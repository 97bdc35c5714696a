"""Text for the CPU models' tokenizer: what ALFWorld and WebShop prompts are made of, with no game played.

Built only from what the installed packages and the project ship, so the tokenizer (and the model built
on it) is the same on every machine:

- the ALFWorld engine's feedback grammar (`alfworld/data/alfred.twl2`: "You arrive at ...", "You pick up
  the ... from the ...", "Nothing happens.") with its placeholders filled by object and receptacle names;
- every object and receptacle type of ALFRED (`alfworld.gen.constants`), lower-cased as the demangler
  writes them, with instance numbers, in the command forms the engine admits;
- the goal sentences of alfworld's goal library, filled with the same names;
- the prompt templates: the suites' own and the YAML files in `hgpo_cli/agent/templates/`;
- the small word list of the test tokenizer (`corpus.py`), which also covers WebShop.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COMMANDS = (
    "go to {r}",
    "open {r}",
    "close {r}",
    "take {o} from {r}",
    "move {o} to {r}",
    "put {o} in/on {r}",
    "examine {r}",
    "examine {o}",
    "use {o}",
    "heat {o} with {r}",
    "cool {o} with {r}",
    "clean {o} with {r}",
    "slice {o} with {o2}",
    "inventory",
    "look",
)


def alfworld_names() -> tuple[list[str], list[str]]:
    """(object names, receptacle names), lower-cased as the game text writes them (`desklamp`)."""
    import alfworld.gen.constants as constants

    receptacles = sorted({r.lower() for r in constants.RECEPTACLES})
    objects = sorted({o.lower() for o in constants.OBJECTS} - set(receptacles))
    return objects, receptacles


def _grammar_lines() -> list[str]:
    """The right-hand sides of the engine's feedback grammar, placeholders and escapes left in."""
    import alfworld

    text = (Path(alfworld.__file__).parent / "data" / "alfred.twl2").read_text()
    return [m.encode().decode("unicode_escape") for m in re.findall(r'"rhs":\s*"((?:[^"\\]|\\.)*)"', text)]


def _goal_templates() -> list[str]:
    import alfworld.gen.goal_library as goal_library

    return [t for entry in goal_library.gdict.values() for t in entry.get("templates", [])]


def _template_texts() -> list[str]:
    """The prompt wording of both suites and of the shipped prompt-template files."""
    from hgpo_cli.envs.alfworld.suite import PROMPT as ALFWORLD_PROMPT

    texts = [str(v) for v in vars(ALFWORLD_PROMPT).values() if isinstance(v, str)]
    try:
        from hgpo_cli.envs.webshop.suite import PROMPT as WEBSHOP_PROMPT

        texts += [str(v) for v in vars(WEBSHOP_PROMPT).values() if isinstance(v, str)]
    except Exception:  # WebShop's suite is optional text here, never a reason to fail a build
        pass
    folder = Path(__file__).resolve().parent.parent / "agent" / "templates"
    texts += [p.read_text() for p in sorted(folder.glob("*.yaml"))]
    return texts


def _fill(text: str, rng: random.Random, objects: list[str], receptacles: list[str]) -> str:
    """Placeholders of the grammar and goal library ({r.name}, #x#, {obj}, ...) filled with names."""

    def name(pool: list[str]) -> str:
        return f"{rng.choice(pool)} {rng.randint(1, 12)}"

    text = re.sub(r"\{(r|o|t)\.name\}", lambda m: name(receptacles if m.group(1) == "r" else objects), text)
    text = re.sub(r"\{(obj|toggle)\}", lambda m: rng.choice(objects), text)
    text = re.sub(r"\{(recep|mrecep)\}", lambda m: rng.choice(receptacles), text)
    text = re.sub(r"#[^#]*#", lambda m: ", ".join(name(objects) for _ in range(rng.randint(1, 3))), text)
    return re.sub(r"\[[^\]]*\]|\{[^}]*\}", lambda m: name(objects), text)


def environment_corpus(repeats: int = 40, seed: int = 0) -> Iterator[str]:
    """Lines of environment and prompt text for BPE training (deterministic in `repeats` and `seed`)."""
    from hgpo_cli.models.corpus import tokenizer_corpus

    rng = random.Random(seed)
    objects, receptacles = alfworld_names()
    grammar, goals, templates = _grammar_lines(), _goal_templates(), _template_texts()
    yield from templates
    for _ in range(repeats):
        for line in grammar:
            yield _fill(line, rng, objects, receptacles)
        for goal in goals:
            yield "Your task is to: " + _fill(goal, rng, objects, receptacles)
        seen = ", ".join(f"a {r} {rng.randint(1, 12)}" for r in rng.sample(receptacles, 12))
        yield f"You are in the middle of a room. Looking quickly around you, you see {seen}."
        yield "\n".join(
            "- "
            + c.format(
                r=f"{rng.choice(receptacles)} {rng.randint(1, 12)}",
                o=f"{rng.choice(objects)} {rng.randint(1, 12)}",
                o2=f"{rng.choice(objects)} {rng.randint(1, 12)}",
            )
            for c in COMMANDS
        )
        yield f"<action>go to {rng.choice(receptacles)} {rng.randint(1, 12)}</action>"
    for name in objects + receptacles:
        yield " ".join(f"{name} {i}" for i in range(1, 21))
    yield from tokenizer_corpus()


def corpus_stats(tokenizer: Any, texts: list[str]) -> dict[str, float]:
    """Tokens per whitespace word over `texts` (lower is better coverage) and the word count."""
    words = [w for t in texts for w in t.split()]
    tokens = sum(len(tokenizer.encode(t, add_special_tokens=False)) for t in texts)
    return {"tokens_per_word": tokens / max(len(words), 1), "words": float(len(words))}
