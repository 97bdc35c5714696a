"""The warm start's micro-batches: grouped by length in windows, every reply once, a cache key of its own."""

from __future__ import annotations

import random

from hgpo_cli.train.sft import length_grouped


def _padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_without_a_window_the_micro_batches_are_consecutive_slices_of_the_order():
    order = [5, 2, 7, 0, 1, 3, 6, 4, 8]
    lengths = [10, 50, 20, 40, 30, 60, 70, 80, 90]
    rng = random.Random(0)
    assert length_grouped(order, lengths, 4, rng) == [[5, 2, 7, 0], [1, 3, 6, 4], [8]]
    # a window no larger than a micro-batch is the same as none
    assert length_grouped(order, lengths, 4, rng, length_window=4) == [[5, 2, 7, 0], [1, 3, 6, 4], [8]]


def test_a_window_sorts_its_replies_by_length_and_shuffles_the_micro_batches():
    rng = random.Random(1)
    lengths = [rng.randint(200, 380) for _ in range(1000)]
    order = list(range(1000))
    rng.shuffle(order)
    grouped = length_grouped(order, lengths, 8, random.Random(2), length_window=128)
    plain = length_grouped(order, lengths, 8, random.Random(2))
    # every reply exactly once
    assert sorted(i for batch in grouped for i in batch) == list(range(1000))
    assert len(grouped) == len(plain) == 125
    # each micro-batch is a run of its window in order of length: its members come from one window
    window_of = {i: pos // 128 for pos, i in enumerate(order)}
    for batch in grouped:
        assert len({window_of[i] for i in batch}) == 1
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)
    real = sum(lengths)
    assert real / _padded_tokens(plain, lengths) < 0.9
    assert real / _padded_tokens(grouped, lengths) > 0.97
    # the micro-batches are shuffled: the epoch does not run window by window, short to long
    assert [window_of[batch[0]] for batch in grouped] != sorted(window_of[batch[0]] for batch in grouped)


def test_the_window_enters_the_warm_starts_cache_key_only_when_set():
    from hgpo_cli.config import load_config
    from hgpo_cli.train.warm_start import warm_start_dir, warm_start_key

    plain = load_config("default", ["model.sft_length_window=0"])
    grouped = load_config("default", ["model.sft_length_window=128"])
    # warm starts built before the option existed keep their folders
    assert "length_window" not in warm_start_key(plain, "/no/model")
    assert warm_start_key(grouped, "/no/model")["length_window"] == 128
    assert warm_start_dir(plain, "/no/model") != warm_start_dir(grouped, "/no/model")
