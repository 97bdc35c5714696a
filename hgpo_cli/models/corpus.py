"""Text for training the tiny test tokenizer: the words the prompts and environments use."""

from __future__ import annotations

from collections.abc import Iterator

_WORDS = (
    "you are in the middle of a room looking quickly around you see a cabinet countertop drawer fridge "
    "microwave sinkbasin stoveburner toaster shelf desk bed sofa armchair sidetable dresser garbagecan "
    "your task is to put some clean hot cool two look at examine in under the desklamp apple bowl mug "
    "pan pot plate cup knife fork spoon egg bread lettuce tomato potato book pencil pen cd cellphone "
    "creditcard keychain pillow laptop statue vase watch alarmclock candle cloth soapbar towel "
    "go to take from put in/on open close toggle heat with cool clean use inventory look nothing happens "
    "you arrive at on it is open closed you pick up put move the "
    "search click buy now back to search next prev description features reviews instruction price "
    "results page item size color small medium large black white blue red green pack count "
    "think action admissible actions current observation step history task before "
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 20 30 40 50 100 dollars $ . , : ; [ ] < > / - ' \" ( ) ? !"
)


def tokenizer_corpus(repeats: int = 50) -> Iterator[str]:
    """Lines of prompt-like text, including the answer tags, for BPE training."""
    words = _WORDS.split()
    for i in range(repeats):
        shifted = words[i % len(words) :] + words[: i % len(words)]
        yield " ".join(shifted)
        yield f"<think>{' '.join(shifted[:12])}</think><action>{' '.join(shifted[12:16])}</action>"
