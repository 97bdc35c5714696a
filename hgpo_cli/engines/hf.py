"""Rollouts with HF transformers `generate`: needs nothing beyond the default install."""

from __future__ import annotations

from typing import Any

from hgpo_cli.engines.base import Generation, SamplingSettings


def _stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _log_prob_recorder(temperature: float) -> Any:
    """A logits processor that keeps, on the device, the log-probability of each sampled token under
    softmax(logits / temperature) (temperature 1 when sampling greedily).

    `generate` runs custom processors before its temperature / top-k / top-p warpers, so the scores it sees
    are the model's logits. At step t it holds one (B, V) float32 row of log-probs; at step t + 1 the last
    column of `input_ids` is the token sampled at t and only its (B,) entries are kept. `finish` takes the
    last step's tokens and returns the (B, R) log-probs: peak extra memory one (B, V) row, never (B, R, V).
    """
    import torch
    from transformers import LogitsProcessor

    scale = 1.0 / temperature if temperature > 0 else 1.0

    class SampledTokenLogProbs(LogitsProcessor):
        def __init__(self) -> None:
            self.pending: torch.Tensor | None = None  # (B, V) log-probs of the step whose token is not known yet
            self.columns: list[torch.Tensor] = []  # (B,) per generated step

        def _take(self, tokens: torch.Tensor) -> None:
            assert self.pending is not None
            self.columns.append(self.pending.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1))
            self.pending = None

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if self.pending is not None:
                self._take(input_ids[:, -1])
            self.pending = torch.log_softmax(scores.float() * scale, dim=-1)
            return scores

        def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
            """new_tokens: (B, R) generated ids (on the device). Returns (B, R) float32 log-probs."""
            if self.pending is not None:
                self._take(new_tokens[:, len(self.columns)])
            if not self.columns:
                return torch.zeros((new_tokens.shape[0], 0), dtype=torch.float32, device=new_tokens.device)
            return torch.stack(self.columns, dim=1)

    return SampledTokenLogProbs()


def _cache_keyword(model: Any) -> str:
    """The name `forward` and `generate` take a KV cache under: `cache` (transformers 5) or `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _plain_layers(model: Any) -> bool:
    """True when every layer of the model's dynamic cache is a plain `DynamicLayer` (no sliding window), so a
    cache can be assembled from the layers' key and value tensors."""
    from transformers import DynamicCache

    layers = DynamicCache(config=model.config).layers
    return all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def shared_prefill(
    model: Any, input_ids: Any, attention: Any, keys: list[tuple[int, ...]], chunk: int = 0, room: int = 0
) -> dict[str, Any] | None:
    """A KV cache of every row's prompt but its last token, computed once per distinct prompt and copied to
    the rows that repeat it; None when no prompt repeats and `chunk` would not split the batch (generate's
    own prefill is then the same work), or when the prompts are one token long.

    input_ids, attention: (B, W) left-padded; keys: (B,) the prompts' token ids. `chunk` > 0: the distinct
    prompts are prefilled `chunk` at a time, in order of length, each forward only as wide as its longest
    prompt (on 2 CPU cores 8 rows of about 230 tokens ran 25-30% faster per token than 32 at once, and
    sorting pads less); 0: all in one forward. Position ids are those `generate` derives from the attention
    mask, so `generate` with this cache processes the last prompt token and samples as it would have from
    the full prompt: the same distribution, computed in other batch shapes (log-probs equal to float
    rounding; measured 3e-6 on the main job's prompts). `room` > 0 (the tokens `generate` will add): the
    chunked cache keeps that many spare columns per layer, so decode steps write in place
    (`hgpo_cli.engines.kv_room`; bit-identical). Returns the keyword arguments to pass on to `generate`.
    """
    import torch

    from hgpo_cli.dedup import unique_rows

    first, row_of = unique_rows(keys)
    width = input_ids.shape[1] - 1  # the cache holds every prompt but its last token
    size = chunk if 0 < chunk < len(first) else len(first)
    if width < 1 or (len(first) == len(keys) and size == len(first)):
        return None
    if size < len(first) and not _plain_layers(model):
        size = len(first)  # sliding-window layers keep their own cache shape: one forward
    name = _cache_keyword(model)
    lengths = attention[:, :-1].sum(-1).tolist()

    def prefill(members: list[int], span: int) -> Any:
        """The KV cache of the distinct prompts `members` (each but its last token), `span` columns wide."""
        rows = torch.tensor([first[u] for u in members], device=input_ids.device)
        ids = input_ids.index_select(0, rows)[:, width - span : width]
        mask = attention.index_select(0, rows)[:, width - span : width]
        positions = mask.long().cumsum(-1) - 1
        positions.masked_fill_(mask == 0, 1)
        # logits of the last position only (as generate's own prefill): all of them would be (n, span, vocab)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = getattr(out, name, None)
        return out.past_key_values if cache is None else cache

    select = torch.tensor(row_of, device=input_ids.device)
    if size == len(first):  # one forward: its cache, copied to the repeats
        cache = prefill(list(range(len(first))), width)
        cache.reorder_cache(select)  # (U, ...) -> (B, ...) per layer
        return {name: cache}
    order = sorted(range(len(first)), key=lambda u: lengths[first[u]])
    keys_of: list[Any] = []  # per layer: (U, kv_heads, width + room, head_dim), zeros at the padding
    values_of: list[Any] = []
    for start in range(0, len(order), size):
        members = order[start : start + size]
        span = max(lengths[first[u]] for u in members)
        if span == 0:
            continue
        index = torch.tensor(members, device=input_ids.device)
        for layer, cached in enumerate(prefill(members, span).layers):
            k, v = cached.keys, cached.values
            if layer == len(keys_of):
                keys_of.append(k.new_zeros((len(first), k.shape[1], width + room, k.shape[3])))
                values_of.append(v.new_zeros((len(first), v.shape[1], width + room, v.shape[3])))
            keys_of[layer][index, :, width - span : width] = k
            values_of[layer][index, :, width - span : width] = v
    data = [(k.index_select(0, select), v.index_select(0, select)) for k, v in zip(keys_of, values_of, strict=True)]
    if room > 0:
        from hgpo_cli.engines.kv_room import cache_with_room

        return {name: cache_with_room(model.config, data, width)}
    from transformers import DynamicCache

    return {name: DynamicCache(ddp_cache_data=data, config=model.config)}


class HFEngine:
    """Batched sampling with left padding; returns token ids and their log-probs at the sampling
    temperature, computed on the device one generated step at a time (see `_log_prob_recorder`).

    The engine holds its own copy of the policy; `load_weights` copies the trainer's new weights in.
    `dedup_prefill` (rollout.dedup_prefill): a prompt that several rows of a batch repeat (a group's first
    turn, rollouts that met the same state with the same memory: a quarter of the main job's prompts) is
    prefilled once, and the distinct prompts `prefill_chunk` at a time (rollout.prefill_chunk; see
    `shared_prefill`), into a cache with room for the reply's tokens (`hgpo_cli.engines.kv_room`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        dedup_prefill: bool = False,
        prefill_chunk: int = 0,
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = device
        self.dedup_prefill = dedup_prefill
        self.prefill_chunk = prefill_chunk
        self.stop_ids = _stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        """Sample one response per prompt (lists of token ids), in batches of `batch_size`."""
        out: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            out.extend(self._generate_batch(prompts[start : start + self.batch_size], settings, start))
        return out

    def _generate_batch(self, prompts: list[list[int]], settings: SamplingSettings, offset: int) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        greedy = settings.temperature <= 0
        recorder = _log_prob_recorder(settings.temperature)
        torch.manual_seed(settings.seed * 1_000_003 + offset)
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        with torch.no_grad():
            cached = None
            if self.dedup_prefill:
                keys = [tuple(p) for p in prompts]
                cached = shared_prefill(
                    self.model, input_ids, attention, keys, self.prefill_chunk, room=settings.max_new_tokens
                )
            result = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                **(cached or {}),
                do_sample=not greedy,
                temperature=None if greedy else settings.temperature,
                top_p=None if greedy else settings.top_p,
                top_k=None,
                max_new_tokens=settings.max_new_tokens,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
                logits_processor=LogitsProcessorList([recorder]),
                return_dict_in_generate=True,
            )
            generated = result.sequences[:, width:]
            log_probs = recorder.finish(generated).cpu()  # (B, R), at the sampling temperature
        new_tokens = generated.cpu()
        generations = []
        for row in range(len(prompts)):
            tokens = new_tokens[row].tolist()
            length, finished = len(tokens), False
            for i, tok in enumerate(tokens):
                if tok in self.stop_ids:
                    length, finished = i + 1, True
                    break
            kept = tokens[:length]
            generations.append(
                Generation(
                    token_ids=kept,
                    log_probs=log_probs[row, :length].tolist(),
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    finished=finished,
                )
            )
        return generations

    def load_weights(self, state_dict: dict[str, Any], partial: bool = False) -> None:
        """Copy new policy weights in (names as in the HF model's own state_dict); `partial`: a bucket of
        them (the other weights stay as they are; unknown names are still an error)."""
        missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
        real_missing = [] if partial else [k for k in missing if not k.endswith("lm_head.weight")]
        if real_missing or unexpected:
            raise RuntimeError(f"weight update mismatch: missing={real_missing[:3]} unexpected={unexpected[:3]}")

    def close(self) -> None:
        self.model = None
