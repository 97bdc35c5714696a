"""The memory planner (`hgpo plan`): parameter counts, the per-GPU arithmetic worked out by hand, the presets'
verdicts, the suggestions (each re-checked through the config loader), the CLI and the start-of-training check."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.errors import UserError
from hgpo_cli.plan import config_accepts, plan_config
from hgpo_cli.plan.advice import judge
from hgpo_cli.plan.memory import GIB, compute_plan
from hgpo_cli.plan.params import count_params, lora_params_per_layer
from hgpo_cli.plan.settings import PlanSettings
from hgpo_cli.plan.shapes import (
    KNOWN_SHAPES,
    QWEN25_7B,
    QWEN25_15B,
    SMOLLM2_135M,
    ModelShape,
    resolve_shape,
    shape_from_config,
)
from hgpo_cli.plan.startup import check_training, record_plan

# A small shape to check the arithmetic by hand: H=8, I=16, 2 heads x 4 (q=8), 1 KV head x 4 (kv=4), V=12.
SMALL = ModelShape(
    layers=4, hidden=8, intermediate=16, heads=2, kv_heads=1, vocab=12, tied=False, head_dim=4, qkv_bias=True
)
SMALL_SETTINGS = PlanSettings(
    gpus=4,
    gpu_mem_gib=80.0,
    master_dtype="float32",  # m = 4
    compute_dtype="bfloat16",  # c = 2
    gradient_checkpointing=True,
    use_reference=True,
    entropy=True,
    micro_batch_size=2,  # b = 2
    prompt_tokens=6,
    response_tokens=2,  # S = 8, R + 1 = 3
    engine="hf",
    engine_batch_size=3,  # B = 3
)


def hgpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hgpo_cli", *args], capture_output=True, text=True, timeout=120)


# ---- parameter counts -------------------------------------------------------------------------------
def test_parameter_count_of_a_small_shape_by_hand():
    # embeddings 12*8 = 96; a layer: q 8*8+8 = 72, k 8*4+4 = 36, v 36, o 8*8 = 64 (attention 208),
    # MLP 3*8*16 = 384, two norms 16: 608; final norm 8; lm_head (untied) 96.
    counts = count_params(SMALL)
    assert (counts.embedding, counts.layer, counts.final_norm, counts.lm_head) == (96, 608, 8, 96)
    assert counts.root == 200
    assert counts.total == 96 + 4 * 608 + 8 + 96 == 2632
    # tied: no lm_head
    assert count_params(replace(SMALL, tied=True)).total == 2632 - 96
    # LoRA r=2: 2 * [(8+8) + 2*(8+4) + (8+8) + 2*(8+16) + (16+8)] = 2 * 128 = 256 per layer
    assert lora_params_per_layer(SMALL, 2) == 256


def test_published_totals():
    assert count_params(QWEN25_15B).total == 1_543_714_304
    assert count_params(QWEN25_7B).total == 7_615_616_512
    assert count_params(SMOLLM2_135M).total == 134_515_008


def test_counts_equal_transformers_models_built_from_the_same_shapes():
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    def hf_config(shape: ModelShape, cls):
        return cls(
            num_hidden_layers=shape.layers,
            hidden_size=shape.hidden,
            intermediate_size=shape.intermediate,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.kv_heads,
            vocab_size=shape.vocab,
            tie_word_embeddings=shape.tied,
        )

    for shape, config_cls, model_cls in [
        (SMALL, Qwen2Config, Qwen2ForCausalLM),
        (replace(SMALL, tied=True), Qwen2Config, Qwen2ForCausalLM),
        (SMOLLM2_135M, LlamaConfig, LlamaForCausalLM),
        (QWEN25_15B, Qwen2Config, Qwen2ForCausalLM),
    ]:
        with torch.device("meta"):
            model = model_cls(hf_config(shape, config_cls))
        unique = {id(p): p.numel() for p in model.parameters()}  # tied weights once
        assert sum(unique.values()) == count_params(shape).total, shape


# ---- shapes -----------------------------------------------------------------------------------------
def test_shape_from_a_config_json(tmp_path):
    config = {
        "model_type": "qwen2",
        "num_hidden_layers": 28,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
    }
    assert shape_from_config(config) == QWEN25_7B
    (tmp_path / "config.json").write_text(json.dumps(config))
    shape, source = resolve_shape(str(tmp_path))
    assert shape == QWEN25_7B and source == str(tmp_path / "config.json")
    llama = shape_from_config({**config, "model_type": "llama", "head_dim": 64})
    assert (llama.qkv_bias, llama.head_dim) == (False, 64)
    with pytest.raises(UserError, match="no vocab_size"):
        shape_from_config({k: v for k, v in config.items() if k != "vocab_size"})


def test_known_shapes_stand_in_and_a_built_model_is_read_first(tmp_path, monkeypatch):
    monkeypatch.setenv("HGPO_CACHE", str(tmp_path))
    shape, source = resolve_shape("embedded:tiny-qwen2")
    assert shape == KNOWN_SHAPES["embedded:tiny-qwen2"] and source.startswith("known shape")
    built = tmp_path / "models" / "tiny-qwen2"
    built.mkdir(parents=True)
    config = {"model_type": "qwen2", "num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256}
    config.update({"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 800, "tie_word_embeddings": True})
    (built / "config.json").write_text(json.dumps(config))
    shape, source = resolve_shape("embedded:tiny-qwen2")
    assert shape.vocab == 800 and source.endswith("config.json")
    with pytest.raises(UserError, match="no config.json for model 'nobody/unknown-model'"):
        resolve_shape("nobody/unknown-model")


# ---- the arithmetic ---------------------------------------------------------------------------------
def test_memory_of_a_small_shape_by_hand():
    plan = compute_plan(SMALL, SMALL_SETTINGS)
    update = plan.phases["update"]
    # P = 2632, N = 4, m = 4, c = 2
    assert update["policy_weights"] == 2632 * 4 / 4 == 2632
    assert update["gradients"] == 2632
    assert update["optimizer_state"] == 2 * 2632 * 4 / 4 == 5264
    assert update["reference"] == 2632 * 2 / 4 == 1316
    # HF engine: weights P c = 5264; KV B S L 2 kv c = 3*8*4*2*4*2 = 1536; prefill B S (2H + 3I) c = 3*8*64*2
    assert (update["rollout_weights"], update["rollout_kv_cache"], update["rollout_activations"]) == (5264, 1536, 3072)
    # FSDP2: (2 layers + root) c = (1216 + 200) * 2; one layer's grad (c + 4) + the root's c = 608*6 + 200*2
    assert update["gathered_params"] == 2832
    assert update["unsharded_grads"] == 4048
    # A = c (4H + 3q + 2kv + 4I) + 8H = 2 (32 + 24 + 8 + 64) + 64 = 320; F = (4 + 2c) H = 64;
    # checkpointing: b S (L H c + A + F)
    assert update["activations"] == 2 * 8 * (4 * 8 * 2 + 320 + 64) == 7168
    # logits b (R+1) V (4 (2 + s + e) + c) = 2 * 3 * 12 * (4 * 3 + 2)
    assert update["logits"] == 1008
    assert update["runtime"] == update["runtime_engine"] == GIB  # the trainer rank and the HF engine's actor
    assert plan.peak_phase == "update"
    # 2632 + 2632 + 5264 + 1316 + 5264 + 1536 + 3072 + 2832 + 4048 + 7168 + 1008, and 2 GiB of runtime
    assert plan.total_bytes == 36772 + 2 * GIB
    # the log-prob phase: gathered 2832 + one layer's forward b S c (2H + q + 2kv + 3I) = 16*2*80 = 2560
    # + logits b (R+1) V (c + 4) + (R+1) V 4 = 432 + 144
    log_probs = plan.phases["log_probs"]
    assert (log_probs["activations"], log_probs["logits"]) == (2560, 576)
    assert plan.phase_totals["log_probs"] == 21716 + 2832 + 2560 + 576 + 2 * GIB
    assert plan.phase_totals["rollout"] == plan.phase_totals["step"] == 21716 + 2 * GIB
    # without checkpointing every layer keeps A per token: b S (L A + F) = 16 * (4 * 320 + 64)
    no_ckpt = compute_plan(SMALL, replace(SMALL_SETTINGS, gradient_checkpointing=False))
    assert no_ckpt.phases["update"]["activations"] == 21504


def test_activation_formula_matches_what_autograd_saves():
    """The plan's activations against the tensors autograd really saves in an HF Qwen2 forward, in fp32 and
    bf16, without and with gradient checkpointing (there the saved part: each layer's input and the final
    norm's; the one layer recomputed in full during the backward is not visible to a forward hook)."""
    torch = pytest.importorskip("torch")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from hgpo_cli.plan.memory import activation_bytes_per_token_layer

    shape = ModelShape(
        layers=3, hidden=128, intermediate=352, heads=4, kv_heads=2, vocab=256, tied=False, head_dim=32, qkv_bias=True
    )
    for dtype, c in ((torch.float32, 4), (torch.bfloat16, 2)):
        config = Qwen2Config(
            hidden_size=shape.hidden,
            intermediate_size=shape.intermediate,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.kv_heads,
            vocab_size=shape.vocab,
            attn_implementation="sdpa",
        )
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config).to(dtype).train()
        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        saved: dict[int, int] = {}

        def pack(t, saved=saved):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        b, tokens = 2, 64
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(input_ids=torch.randint(0, shape.vocab, (b, tokens)), logits_to_keep=1, use_cache=False)
        measured = sum(n for ptr, n in saved.items() if ptr not in params)
        settings = PlanSettings(
            compute_dtype=str(dtype).removeprefix("torch."), micro_batch_size=b, prompt_tokens=tokens, response_tokens=0
        )
        planned = compute_plan(shape, settings).phases["update"]["activations"]
        assert measured == pytest.approx(planned, rel=0.05), dtype

        model.gradient_checkpointing_enable()
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(input_ids=torch.randint(0, shape.vocab, (b, tokens)), logits_to_keep=1, use_cache=False)
        measured = sum(n for ptr, n in saved.items() if ptr not in params)
        recomputed_layer = b * tokens * activation_bytes_per_token_layer(shape, c)
        with_ckpt = replace(settings, gradient_checkpointing=True)
        planned = compute_plan(shape, with_ckpt).phases["update"]["activations"] - recomputed_layer
        assert measured == pytest.approx(planned, rel=0.05), (dtype, "checkpointing")


def test_logit_bytes_kept_for_the_backward_are_the_fp32_logits_and_the_entropy_softmax():
    """The logits term's saved part, 4 (1 + e) bytes per element, measured on the trainer's own loss code
    (the other 4 + c of the formula are the gradients made during the backward)."""
    torch = pytest.importorskip("torch")
    from hgpo_cli.train.loss import entropy_from_logits, token_log_probs

    batch, width, vocab = 2, 5, 1000
    model_logits = torch.randn(batch, width, vocab, dtype=torch.bfloat16, requires_grad=True)
    for with_entropy in (False, True):
        saved: dict[int, int] = {}

        def pack(t, saved=saved):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model_logits.float()
            token_log_probs(logits, torch.randint(0, vocab, (batch, width)))
            if with_entropy:
                entropy_from_logits(logits)
        per_element = sum(saved.values()) / (batch * width * vocab)
        assert per_element == pytest.approx(4 * (1 + int(with_entropy)), abs=0.1)


def test_offload_moves_state_to_the_host():
    offload = compute_plan(SMALL, replace(SMALL_SETTINGS, offload_params=True, offload_reference=True))
    update = offload.phases["update"]
    assert update["policy_weights"] == update["gradients"] == update["optimizer_state"] == update["reference"] == 0
    # host: P m (weights) + 3 T m (gradients, two AdamW moments) + P c (reference) = 10528 + 31584 + 5264
    assert offload.host_bytes == 2632 * 4 + 3 * 2632 * 4 + 2632 * 2 == 47376
    # offload_optimizer alone: on the host except for the optimizer step (after the backward)
    between = compute_plan(SMALL, replace(SMALL_SETTINGS, offload_optimizer=True))
    assert between.phases["rollout"]["optimizer_state"] == between.phases["update"]["optimizer_state"] == 0
    assert between.phases["step"]["optimizer_state"] == 5264
    assert "activations" not in between.phases["step"]
    assert between.total_bytes == 36772 - 5264 + 2 * GIB  # the backward stays the peak
    assert between.host_bytes == 2 * 2632 * 4
    # with the parameters offloaded the optimizer state is on the host anyway
    both = compute_plan(SMALL, replace(SMALL_SETTINGS, offload_params=True, offload_optimizer=True))
    assert both.phases == compute_plan(SMALL, replace(SMALL_SETTINGS, offload_params=True)).phases


def test_one_rank_in_fp32_has_no_fsdp_copies_and_lora_trains_few_parameters():
    plain = compute_plan(SMALL, replace(SMALL_SETTINGS, gpus=1, compute_dtype="float32"))
    assert plain.phases["update"]["gathered_params"] == plain.phases["update"]["unsharded_grads"] == 0
    lora = compute_plan(SMALL, replace(SMALL_SETTINGS, lora_rank=2))
    assert lora.trainable == 4 * 256
    assert lora.phases["update"]["optimizer_state"] == 2 * 1024 * 4 / 4
    assert lora.phases["update"]["unsharded_grads"] == 256 * 6  # the root is frozen


def test_vllm_reserves_its_share_and_a_share_below_its_weights_is_a_problem():
    settings = replace(SMALL_SETTINGS, engine="vllm", gpu_memory_utilization=0.5, gpu_mem_gib=1.0)
    plan = compute_plan(SMALL, settings)
    parts = plan.phases["update"]
    assert parts["rollout_weights"] == 5264
    assert parts["rollout_weights"] + parts["rollout_kv_cache"] == 0.5 * GIB
    assert "rollout_activations" not in parts and not plan.problems
    tiny = compute_plan(SMALL, replace(settings, gpu_mem_gib=1e-6))
    assert not tiny.fits and "less than its weights" in tiny.problems[0]


def test_a_shared_policy_counts_no_engine_copy():
    """rollout.share_policy resolved to sharing (one fp32 rank, HF engine): no engine weights and no engine
    process; the engine's KV cache and prefill are rank 0's, in the rollout phase only."""
    one = replace(SMALL_SETTINGS, gpus=1, compute_dtype="float32")  # c = m = 4
    separate = compute_plan(SMALL, replace(one, share_policy="false"))
    shared = compute_plan(SMALL, replace(one, share_policy="auto"))
    assert shared.settings.shares_policy and not separate.settings.shares_policy
    weights = 2632 * 4  # the engine's copy, P c
    kv, prefill = 3 * 8 * 4 * 2 * 4 * 4, 3 * 8 * (2 * 8 + 3 * 16) * 4  # B S L 2 kv c, B S (2H + 3I) c
    assert separate.phases["rollout"]["rollout_weights"] == weights
    assert shared.phases["rollout"]["rollout_weights"] == 0
    assert (shared.phases["rollout"]["rollout_kv_cache"], shared.phases["rollout"]["rollout_activations"]) == (
        kv,
        prefill,
    )
    totals, alone = separate.phase_totals, shared.phase_totals
    assert totals["rollout"] - alone["rollout"] == weights + GIB  # the copy and the engine's process
    for phase in ("log_probs", "update", "step"):
        assert totals[phase] - alone[phase] == weights + kv + prefill + GIB
        assert "rollout_kv_cache" not in shared.phases[phase] and "runtime_engine" not in shared.phases[phase]
    off_gpu = [compute_plan(SMALL, replace(one, share_policy=v, on_gpu=False)) for v in ("false", "true")]
    assert off_gpu[0].phase_totals["rollout"] - off_gpu[1].phase_totals["rollout"] == weights  # exactly
    # nothing changes where sharing is not possible: vLLM, several ranks, mixed precision, LoRA
    for blocked in (
        replace(one, engine="vllm"),
        replace(one, gpus=2),
        replace(one, compute_dtype="bfloat16"),
        replace(one, lora_rank=2),
    ):
        assert not blocked.shares_policy
        assert compute_plan(SMALL, blocked).phases == compute_plan(SMALL, replace(blocked, share_policy="false")).phases


def test_the_smollm2_preset_shares_its_policy_and_plans_no_engine_copy():
    shared, _ = plan_config(load_config("smollm2"), gpu_mem_gib=80)
    separate, _ = plan_config(load_config("smollm2", ["rollout.share_policy=false"]), gpu_mem_gib=80)
    assert shared.plan.settings.shares_policy and shared.plan.peak_phase == separate.plan.peak_phase == "update"
    # SmolLM2 in fp32, rollout.batch_size 16 at 1024 + 16 tokens: P c, B S L 2 kv c, B S (2H + 3I) c, the process
    engine = 134_515_008 * 4 + 16 * 1040 * 30 * 2 * 192 * 4 + 16 * 1040 * (2 * 576 + 3 * 1536) * 4 + GIB
    assert separate.plan.total_bytes - shared.plan.total_bytes == engine
    with pytest.raises(UserError, match="rollout.share_policy=true is not possible here: rollout.engine=vllm"):
        plan_config(load_config("smollm2", ["rollout.share_policy=true", "rollout.engine=vllm"]))


def test_the_plan_resolves_share_policy_as_the_trainer_does():
    from omegaconf import OmegaConf

    from hgpo_cli.train.fast_paths import shares_policy

    for mode in ("auto", "true", "false", "True"):
        for engine in ("hf", "vllm"):
            for workers in (1, 2):
                for lora in (0, 4):
                    for master in ("float32", "bfloat16"):
                        cfg = OmegaConf.create(
                            {
                                "rollout": {"engine": engine, "share_policy": mode},
                                "trainer": {"num_workers": workers},
                                "model": {"lora_rank": lora, "master_dtype": master, "dtype": "float32"},
                            }
                        )
                        try:
                            expected: object = shares_policy(cfg)
                        except UserError as err:
                            expected = str(err)
                        try:
                            got: object = PlanSettings.from_config(cfg).shares_policy
                        except UserError as err:
                            got = str(err)
                        assert got == expected, (mode, engine, workers, lora, master)


# ---- the presets and the suggestions ----------------------------------------------------------------
def test_the_webshop_15b_preset_fits_on_its_two_gpus():
    """The HGPO WebShop script's micro-batch of 4 per GPU keeps activations and logits small."""
    cfg = load_config("webshop-qwen2.5-1.5b")
    assert cfg.trainer.num_workers == 2 and cfg.trainer.micro_batch_size == 4
    verdict, _ = plan_config(cfg, gpu_mem_gib=80)
    assert verdict.fits and verdict.plan.settings.gpus == 2


@pytest.mark.parametrize(("preset", "gpus"), [("alfworld-qwen2.5-1.5b", 2)])
def test_the_15b_presets_fit_on_two_80_gib_gpus_but_not_one(preset, gpus):
    verdict, _ = plan_config(load_config(preset), gpus=gpus, gpu_mem_gib=80)
    assert verdict.fits and verdict.plan.total_gib < 80
    # the other GPU holds no engine: GPU 0 less vLLM's share (0.35 x 80 GiB)
    assert verdict.plan.other_gpu_bytes == pytest.approx(verdict.plan.total_bytes - 0.35 * 80 * GIB)
    one, _ = plan_config(load_config(preset), gpus=1, gpu_mem_gib=80)
    assert not one.fits
    more = [s for s in one.suggestions if s.overrides == ["trainer.num_workers=2"]]
    assert more and more[0].gpus == 2  # the smallest GPU count that fits


@pytest.mark.parametrize("preset", ["alfworld-qwen2.5-7b", "webshop-qwen2.5-7b"])
def test_the_7b_presets_fit_on_four_80_gib_gpus(preset):
    cfg = load_config(preset)
    assert cfg.trainer.fsdp.offload_params and cfg.trainer.fsdp.offload_reference
    verdict, _ = plan_config(cfg, gpus=4, gpu_mem_gib=80)
    assert verdict.fits and verdict.plan.total_gib < 80


NO_OFFLOAD = ["trainer.fsdp.offload_params=false", "trainer.num_workers=1"]  # the presets: 4 ranks


def test_7b_does_not_fit_one_gpu_without_offload_and_the_suggestions_do_fit():
    cfg = load_config("alfworld-qwen2.5-7b", NO_OFFLOAD)
    verdict, _ = plan_config(cfg, gpus=1, gpu_mem_gib=80)
    assert not verdict.fits
    # weights, gradients and AdamW alone: 16 bytes x 7.6B = 113.5 GiB
    parts = verdict.plan.components
    assert (parts["policy_weights"] + parts["gradients"] + parts["optimizer_state"]) / GIB == pytest.approx(
        7_615_616_512 * 16 / GIB
    )
    assert "GiB needed on GPU 0" in verdict.reason() and "optimizer_state" in verdict.reason()
    offload = [s for s in verdict.suggestions if "trainer.fsdp.offload_params=true" in s.overrides]
    assert offload, verdict.line()
    assert "trainer.fsdp.offload_params=true" in verdict.line()
    for suggestion in verdict.suggestions:  # every suggestion is a valid override that makes it fit
        again, _ = plan_config(load_config("alfworld-qwen2.5-7b", [*NO_OFFLOAD, *suggestion.overrides]), gpu_mem_gib=80)
        assert again.fits, suggestion.label
        assert again.plan.settings.gpus == suggestion.gpus


def test_with_full_offload_the_gpu_count_changes_only_the_sharding_on_the_host():
    cfg = load_config("alfworld-qwen2.5-7b")
    one, _ = plan_config(cfg, gpus=1, gpu_mem_gib=80)
    four, _ = plan_config(cfg, gpus=4, gpu_mem_gib=80)
    assert one.plan.total_bytes == four.plan.total_bytes
    assert one.plan.host_bytes == four.plan.host_bytes


def test_the_micro_batch_suggestion_is_the_largest_that_fits_and_the_config_accepts():
    cfg = load_config("alfworld-qwen2.5-1.5b")  # trainer.loss_scale=micro: 256 must divide by the micro-batch
    verdict, _ = plan_config(cfg, gpus=1, gpu_mem_gib=80)
    micro = [s for s in verdict.suggestions if s.overrides[0].startswith("trainer.micro_batch_size=")]
    assert micro
    size = int(micro[0].overrides[0].split("=")[1])
    settings, accepts = verdict.plan.settings, config_accepts(cfg)
    assert compute_plan(verdict.plan.shape, replace(settings, micro_batch_size=size)).fits
    for larger in range(size + 1, settings.micro_batch_size):
        fits = compute_plan(verdict.plan.shape, replace(settings, micro_batch_size=larger)).fits
        assert not (fits and accepts([f"trainer.micro_batch_size={larger}"])), larger
    assert size == 8  # 9..15 would fit the memory, but verl's loss scale needs a divisor of 256


def test_a_plan_that_fits_has_no_suggestions():
    verdict = judge(SMALL, SMALL_SETTINGS)
    assert verdict.fits and verdict.suggestions == [] and verdict.reason() == ""
    assert verdict.line().startswith("fits: ")


# ---- the CLI ----------------------------------------------------------------------------------------
def test_cli_json_7b_fits_on_four_gpus():
    result = hgpo("plan", "alfworld-qwen2.5-7b", "--gpus", "4", "--gpu-mem-gib", "80", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object
    assert data["fits"] is True and data["gpus"] == 4
    assert data["total_gib"] == pytest.approx(sum(data["per_gpu_gib"].values()), abs=0.1)
    assert {"policy_weights", "optimizer_state", "activations", "logits", "rollout_kv_cache"} <= set(
        data["per_gpu_gib"]
    )


def test_cli_json_7b_without_offload_on_one_gpu_does_not_fit_and_says_why():
    result = hgpo("plan", "alfworld-qwen2.5-7b", *NO_OFFLOAD, "--gpus", "1", "--gpu-mem-gib", "80", "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["fits"] is False and data["gpus"] == 1
    assert "GiB needed on GPU 0" in data["reason"]
    assert any("trainer.fsdp.offload_params=true" in s["overrides"] for s in data["suggestions"])


def test_cli_table_and_one_line_errors():
    result = hgpo("plan", "alfworld-qwen2.5-1.5b", "--gpus", "2")
    assert result.returncode == 0, result.stderr
    assert "policy_weights" in result.stdout and "total" in result.stdout and "fits: " in result.stdout
    unknown = hgpo("plan", "no-such-preset", "--json")
    assert unknown.returncode == 2
    assert unknown.stdout == "" and "Traceback" not in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and "unknown preset 'no-such-preset'" in unknown.stderr


# ---- the start of `hgpo train` ----------------------------------------------------------------------
def test_a_gpu_run_that_does_not_fit_stops_and_a_cpu_run_only_records(tmp_path):
    cfg = load_config("alfworld-qwen2.5-7b", NO_OFFLOAD)
    with pytest.raises(UserError, match="memory plan: does not fit on 1 x") as err:
        check_training(cfg, "cuda")
    assert "\n" not in str(err.value) and "trainer.fsdp.offload_params=true" in str(err.value)
    assert not check_training(cfg, "cpu").fits  # planned, not stopped
    skip = load_config("alfworld-qwen2.5-7b", [*NO_OFFLOAD, "trainer.memory_check=false"])
    assert not check_training(skip, "cuda").fits
    path = record_plan(load_config("smollm2", [f"trainer.output_dir={tmp_path}"]), "cpu", tmp_path)
    data = json.loads(path.read_text())
    assert data["device"] == "cpu" and data["per_gpu_gib"]["runtime"] == 0 and data["params"] > 0


def test_a_resumed_run_may_switch_the_memory_check():
    from hgpo_cli.train.run_folder import is_resumable

    assert is_resumable("trainer.memory_check")
