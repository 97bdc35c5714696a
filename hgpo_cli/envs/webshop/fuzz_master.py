"""`token_set_ratio` as WebShop master scores text: `thefuzz==0.19.0` (the version its requirements pin),
which without the optional python-Levenshtein package compares strings with the standard library's
`difflib.SequenceMatcher`.

What that version does, step by step (our own code, following its documented behaviour):

1. Preprocess each input: anything that is not a `str` (WebShop passes `(name, value)` pairs for goals whose
   options are a dict) becomes `str(x)`, e.g. `"('size', 'small')"`; characters 128-255 are dropped (other
   non-ASCII characters stay); every non-word character (`\\W`, so `_` survives) becomes a space; lower case;
   strip. An input that is empty after this scores 0.
2. Split both on whitespace into token sets; build `sect` (the sorted shared tokens joined by spaces),
   `sect + diff_a` and `sect + diff_b` (each diff sorted), each stripped.
3. The score is the largest of `ratio(sect, sect+diff_a)`, `ratio(sect, sect+diff_b)`,
   `ratio(sect+diff_a, sect+diff_b)`, where `ratio(x, y)` is 100 when x == y, 0 when either is empty, else
   `round(100 * SequenceMatcher(None, x, y).ratio())`.

The difference from rapidfuzz's `token_set_ratio` (the `v2` rules in `reward.py`) is the similarity measure:
difflib's matching-blocks ratio can be lower than the Indel (LCS) ratio, and `_` is kept as a word character.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

_NON_WORD = re.compile(r"\W", re.UNICODE)
_LATIN1_HIGH = {code: None for code in range(128, 256)}


def preprocess(value: Any) -> str:
    """Step 1: the text thefuzz 0.19 compares (`str()` of a non-string, chars 128-255 removed, `\\W` to
    spaces, lower case, stripped)."""
    text = value if isinstance(value, str) else str(value)
    text = text.translate(_LATIN1_HIGH)
    return _NON_WORD.sub(" ", text).lower().strip()


def ratio(a: str, b: str) -> int:
    """thefuzz 0.19's `ratio` with difflib: 100 for equal texts, 0 when one is empty, else the rounded
    percentage of `SequenceMatcher(None, a, b).ratio()`."""
    if a == b:
        return 100
    if not a or not b:
        return 0
    return int(round(100 * SequenceMatcher(None, a, b).ratio()))


def token_set_ratio(a: Any, b: Any) -> int:
    """thefuzz 0.19's `fuzz.token_set_ratio(a, b)` (integer in 0..100)."""
    pa, pb = preprocess(a), preprocess(b)
    if not pa or not pb:
        return 0
    ta, tb = set(pa.split()), set(pb.split())
    sect = " ".join(sorted(ta & tb))
    with_a = (sect + " " + " ".join(sorted(ta - tb))).strip()
    with_b = (sect + " " + " ".join(sorted(tb - ta))).strip()
    sect = sect.strip()
    return max(ratio(sect, with_a), ratio(sect, with_b), ratio(with_a, with_b))
