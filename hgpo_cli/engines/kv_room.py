"""A KV cache with room for the tokens `generate` will add: each decode step writes in place.

transformers' `DynamicLayer` concatenates every new key and value onto the whole cache, so each of a
generate call's decode steps copies the full cache of every layer again (on the main job's calls, 11% of
generate's time went to those copies). `RoomyLayer` keeps its keys and values at the front of a buffer
with spare columns; a step writes its token there and hands the attention a view of the filled columns.
The attention reads the same numbers in the same order: sampled tokens and log-probs are bit-identical
(checked on the main job's captured generate calls, and in tests/test_fast_paths.py). When the buffer is
full, or the cache was cropped or re-indexed elsewhere, the layer concatenates as `DynamicLayer` does.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["RoomyLayer", "cache_with_room"]


class RoomyLayer(DynamicLayer):
    """A `DynamicLayer` whose `keys` / `values` (B, kv_heads, n, head_dim) are views of the first n
    columns of buffers (B, kv_heads, n + room, head_dim)."""

    def __init__(self, key_buffer: torch.Tensor, value_buffer: torch.Tensor, length: int) -> None:
        super().__init__()
        self.lazy_initialization(key_buffer, value_buffer)
        self.key_buffer, self.value_buffer = key_buffer, value_buffer
        self.keys, self.values = key_buffer[..., :length, :], value_buffer[..., :length, :]

    def _fits(self, new: int) -> bool:
        """True when `keys` is still the front of the buffer and `new` more columns fit after it."""
        keys = self.keys
        return (
            keys.data_ptr() == self.key_buffer.data_ptr()
            and keys.shape[:-2] == self.key_buffer.shape[:-2]
            and keys.shape[-2] + new <= self.key_buffer.shape[-2]
        )

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if not self._fits(new):
            return super().update(key_states, value_states, *args, **kwargs)
        n = self.keys.shape[-2]
        self.key_buffer[..., n : n + new, :] = key_states
        self.value_buffer[..., n : n + new, :] = value_states
        self.keys, self.values = self.key_buffer[..., : n + new, :], self.value_buffer[..., : n + new, :]
        return self.keys, self.values


def cache_with_room(config: Any, buffers: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> DynamicCache:
    """A DynamicCache of `config`'s model whose layer l holds the first `length` columns of buffers[l]
    (keys, values: (B, kv_heads, length + room, head_dim)); the columns after are its room."""
    cache = DynamicCache(config=config)
    if len(cache.layers) != len(buffers) or any(type(layer) is not DynamicLayer for layer in cache.layers):
        raise ValueError("cache_with_room needs one plain DynamicLayer per buffer")
    cache.layers = [RoomyLayer(keys, values, length) for keys, values in buffers]
    return cache
