"""Product search: BM25 (bm25s) over the text WebShop indexes, top 50 results as in the original.

The original indexes, per product, `title + description + first bullet point + option text` (lower case)
with Lucene's English analyser (Porter stemming). We tokenise the same text into lower-case words of two
or more characters, drop English stopwords and strip plurals with Porter's plural steps, then rank with
BM25 (k1 = 1.5, b = 0.75). Ties break by catalogue order, so results are deterministic.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import numpy as np

SEARCH_RETURN_N = 50

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
# Lucene's English stopwords.
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
        "they this to was will with",
    )
)


def light_stem(word: str) -> str:
    """Porter's plural steps (1a and 1c): -sses -> -ss, -ies -> -i, -s dropped (not -ss), then a final -y
    after a vowel-bearing stem -> -i. "shoes" and "shoe" meet, as do "dresses"/"dress", "batteries"/"battery"."""
    if word.endswith(("sses", "ies")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        word = word[:-1]
    if word.endswith("y") and len(word) > 2 and any(c in "aeiou" for c in word[:-1]):
        word = word[:-1] + "i"
    return word


_STEMS: dict[str, str] = {}  # word -> stem (or "" for a stopword); words repeat a lot across products


def tokenize(text: str) -> list[str]:
    """Search tokens of a text: lower-case words, stopwords removed, plurals stemmed."""
    out = []
    stems = _STEMS
    for word in _TOKEN.findall(text.lower()):
        stem = stems.get(word)
        if stem is None:
            stem = "" if word in _STOPWORDS else light_stem(word)
            if len(stems) < 1_000_000:
                stems[word] = stem
        if stem:
            out.append(stem)
    return out


def product_search_text(product: dict[str, Any]) -> str:
    """The text WebShop indexes for a product: title, description, first bullet, options."""
    option_text = ", and ".join(
        f"{name}: {', '.join(values)}" for name, values in (product.get("options") or {}).items()
    )
    bullets = product.get("BulletPoints") or [""]
    return " ".join(
        [str(product.get("Title", "")), str(product.get("Description", "")), str(bullets[0] or ""), option_text]
    ).lower()


class SearchEngine:
    """BM25 over a list of products. `search(query)` returns product indices, best first, at most 50.

    Only products sharing a term with the query are returned (as Lucene does); an empty query or one made
    of unknown words returns nothing. Results of recent queries are memoised (groups repeat queries).
    """

    def __init__(self, products: list[dict[str, Any]], *, cache_size: int = 4096) -> None:
        import bm25s

        self._num_docs = len(products)
        corpus = [tokenize(product_search_text(p)) or [""] for p in products]
        self._bm25 = bm25s.BM25(k1=1.5, b=0.75)
        self._bm25.index(corpus, show_progress=False)
        self._vocab: dict[str, int] = self._bm25.vocab_dict
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:
        return self._num_docs

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> tuple[int, ...]:
        key = f"{k}\x00{query.lower().strip()}"
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        result = self._search(query, k)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _search(self, query: str, k: int) -> tuple[int, ...]:
        ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        if not ids or self._num_docs == 0:
            return ()
        scores = self._bm25.get_scores(ids)
        matching = np.flatnonzero(scores > 0)
        if matching.size > k:
            # The k-th best score, then every document at or above it; sort those by (-score, index).
            kth = np.partition(scores[matching], matching.size - k)[matching.size - k]
            matching = matching[scores[matching] >= kth]
        order = np.lexsort((matching, -scores[matching]))
        return tuple(int(i) for i in matching[order][:k])
