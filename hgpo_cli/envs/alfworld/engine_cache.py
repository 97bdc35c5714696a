"""Memoise the pure parsing work of the TextWorld PDDL engine; the engine itself stays unmodified.

TextWorld's PDDL environment re-parses the same text again and again: every step derives each admissible
command and the feedback through a TatSu parse of the template (`textgen._parse_and_convert`) and of
each rule condition (`Rule.parse_conjunctive_query`); every `load` parses the grammar, and every `load`
and `reset` translates the PDDL domain + problem to SAS twice (`fast_downward.pddl2sas`). All four are
pure functions of their text arguments, so this module swaps the module-level names the engine looks up
for memoised versions:

- template parses are cached and deep-copied on every use (the engine sets `.context` on the symbols);
- conjunctive queries and grammar parses are cached (the engine never mutates them);
- `textgen.copy_context`, called for every symbol of every derivation, deep-copies the context's
  `variables` (placeholder -> EntityInfo) and `mapping` (placeholder -> Variable) dicts: 85% of an env
  step on the generated games (cProfile of `hgpo sft`'s walkthrough play). The copy is needed because
  a derivation adds entries to its context's dicts; the values are never changed (the derivation reads
  them, and the context a query builds already holds the game's own EntityInfo objects), so new dicts
  of the same values do the same;
- `pddl2sas` is cached per (domain, problem, optimize) in a small LRU (32 entries, about 5 MB each for
  a real game) and restores `sys.argv`, which the original overwrites; behind the LRU, on disk
  (`sas_cache.py`): a game's first load in any later process reads its translation instead of redoing it.

Measured on the shared valid_seen games (2 shared cores): 6-7 env steps/s without, 22-24 with; reset
after the first load of a game drops from about 1.7 s to 0.1 s. The shallow `copy_context` alone: the
planner's play of 20 loaded generated games (149 steps and their resets) 3.1 s -> 1.1 s. Transcripts
(observations, admissible commands, won) are byte-identical with and without the cache:
`tests/test_alfworld_real.py` checks the whole cache on a real game, `tests/test_alfworld_generated.py`
the shallow context copies on a generated game of each task type.
"""

from __future__ import annotations

import copy
import functools
import sys
import types
from typing import Any

_state: dict[str, Any] = {"installed": False, "originals": None}


def _build() -> dict[str, Any]:
    import fast_downward
    import textworld.envs.pddl.logic as pddl_logic
    import textworld.envs.pddl.textgen as textgen
    from textworld.logic import Rule

    orig_textgen_parse = textgen._parse_and_convert
    orig_logic_parse = pddl_logic._parse_and_convert

    @functools.lru_cache(maxsize=8192)
    def _template(text: str, rule_name: str | None) -> Any:
        return orig_textgen_parse(text, rule_name=rule_name)

    def textgen_parse(text: str, rule_name: str | None = None, trace: bool = False, **kwargs: Any) -> Any:
        if trace or kwargs:
            return orig_textgen_parse(text, rule_name=rule_name, trace=trace, **kwargs)
        return copy.deepcopy(_template(text, rule_name))

    class CachedRule(Rule):
        """`Rule` whose conjunctive-query parser is memoised (queries are immutable once parsed)."""

        @classmethod
        def parse_conjunctive_query(cls, expr: str) -> Rule:
            return _query(expr)

    @functools.lru_cache(maxsize=8192)
    def _query(expr: str) -> Rule:
        return Rule.parse_conjunctive_query(expr)

    @functools.lru_cache(maxsize=32)
    def _grammar(text: str, rule_name: str | None) -> Any:
        return orig_logic_parse(text, rule_name=rule_name)

    def logic_parse(text: str, rule_name: str | None = None, **kwargs: Any) -> Any:
        if kwargs:
            return orig_logic_parse(text, rule_name=rule_name, **kwargs)
        return _grammar(text, rule_name)

    from hgpo_cli.envs.alfworld import sas_cache

    def _translate(domain: str, problem: str, verbose: bool, optimize: bool) -> Any:
        argv = list(sys.argv)
        try:
            return fast_downward.pddl2sas(domain, problem, verbose=verbose, optimize=optimize)
        finally:
            sys.argv[:] = argv

    @functools.lru_cache(maxsize=32)  # about 5 MB per real game and variant
    def _sas(domain: str, problem: str, verbose: bool, optimize: bool) -> Any:
        if verbose:
            return _translate(domain, problem, verbose, optimize)
        return sas_cache.cached(domain, problem, optimize, lambda: _translate(domain, problem, verbose, optimize))

    def pddl2sas(domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
        return _sas(domain, problem, bool(verbose), bool(optimize))

    class _FastDownward(types.ModuleType):
        """Stands in for the `fast_downward` module inside `textworld.envs.pddl.logic` only."""

        def __getattr__(self, name: str) -> Any:
            return getattr(fast_downward, name)

    fd = _FastDownward("fast_downward")
    fd.pddl2sas = pddl2sas  # type: ignore[attr-defined]

    def copy_context(context: dict[str, Any]) -> dict[str, Any]:
        return {
            "state": context["state"],
            "facts": context["facts"],
            "variables": dict(context["variables"]),
            "mapping": dict(context["mapping"]),
            "entity_infos": context["entity_infos"],
        }

    originals = {
        (textgen, "copy_context"): textgen.copy_context,
        (textgen, "_parse_and_convert"): orig_textgen_parse,
        (textgen, "Rule"): textgen.Rule,
        (pddl_logic, "_parse_and_convert"): orig_logic_parse,
        (pddl_logic, "fast_downward"): pddl_logic.fast_downward,
    }
    replacements = {
        (textgen, "copy_context"): copy_context,
        (textgen, "_parse_and_convert"): textgen_parse,
        (textgen, "Rule"): CachedRule,
        (pddl_logic, "_parse_and_convert"): logic_parse,
        (pddl_logic, "fast_downward"): fd,
    }
    return {"originals": originals, "replacements": replacements}


def install() -> None:
    """Swap in the memoised parsers (idempotent; process-wide)."""
    if _state["installed"]:
        return
    if _state["originals"] is None:
        built = _build()
        _state["originals"] = built["originals"]
        _state["replacements"] = built["replacements"]
    for (module, name), value in _state["replacements"].items():
        setattr(module, name, value)
    _state["installed"] = True


def uninstall() -> None:
    """Restore the engine's own parsers (used to compare transcripts with and without the cache)."""
    if not _state["installed"]:
        return
    for (module, name), value in _state["originals"].items():
        setattr(module, name, value)
    _state["installed"] = False


def installed() -> bool:
    return bool(_state["installed"])
