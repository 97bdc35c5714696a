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


class HFEngine:
    """Batched sampling with left padding; returns token ids and their log-probs.

    The engine holds its own copy of the policy; `load_weights` copies the trainer's new weights in.
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = device
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

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        greedy = settings.temperature <= 0
        torch.manual_seed(settings.seed * 1_000_003 + offset)
        with torch.no_grad():
            result = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                do_sample=not greedy,
                temperature=None if greedy else settings.temperature,
                top_p=None if greedy else settings.top_p,
                top_k=None,
                max_new_tokens=settings.max_new_tokens,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
        new_tokens = result.sequences[:, width:].cpu()
        # raw logits per generated position: (B, R, V) -> log-softmax at the sampled tokens
        logits = torch.stack(result.logits, dim=1).float().cpu()
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
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

    def load_weights(self, state_dict: dict[str, Any]) -> None:
        """Copy new policy weights in (names as in the HF model's own state_dict)."""
        missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
        real_missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if real_missing or unexpected:
            raise RuntimeError(f"weight update mismatch: missing={real_missing[:3]} unexpected={unexpected[:3]}")

    def close(self) -> None:
        self.model = None
