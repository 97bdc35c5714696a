"""The memory plan of the PPO critic (`algorithm.name=ppo`): the value model's parameters, its state and
activations worked out by hand, checked against the tensors autograd saves, where Ray places it, and the
verdict when it is larger than one GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from hgpo_cli.config import load_config
from hgpo_cli.errors import UserError
from hgpo_cli.plan import plan_config
from hgpo_cli.plan.memory import GIB, compute_plan, critic_activation_bytes
from hgpo_cli.plan.params import count_params, count_value_params, linear_params_per_layer
from hgpo_cli.plan.settings import PlanSettings
from hgpo_cli.plan.shapes import QWEN25_7B, QWEN25_15B, SMOLLM2_135M, ModelShape
from hgpo_cli.plan.startup import check_training

# test_plan.py's small shape: H=8, I=16, 2 heads x 4 (q=8), 1 KV head x 4 (kv=4), V=12, L=4, untied.
SMALL = ModelShape(
    layers=4, hidden=8, intermediate=16, heads=2, kv_heads=1, vocab=12, tied=False, head_dim=4, qkv_bias=True
)
PPO = PlanSettings(
    gpus=1,
    master_dtype="float32",  # m = 4
    compute_dtype="bfloat16",  # the critic autocasts to bf16 on a GPU: c' = 2
    gradient_checkpointing=True,
    micro_batch_size=2,  # b' = 2 (critic.micro_batch_size unset)
    prompt_tokens=6,
    response_tokens=2,  # S = 8
    engine="hf",
    engine_batch_size=3,
    critic=True,
)
# P' = 2632 - 96 (lm_head) + 8 + 1 (score head) = 2545; weights and gradients 4 P', AdamW 8 P'
CRITIC_STATE = 2545 * 4 + 2545 * 4 + 2 * 2545 * 4  # 40720
# checkpointing under autocast: b' S (L H m + F') + max(L W c', b' S A' + W c') with A' = (2m + 8) H +
# c' (5H + 3q + 2kv + 4I) = 128 + 2 * 136 = 400, F' = (m + 4) H + c' H = 80, W = 576 (W c' = 1152):
# 16 * (128 + 80) + max(4608, 16 * 400 + 1152) = 3328 + 7552
CRITIC_ACTIVATIONS = 10880


def hgpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hgpo_cli", *args], capture_output=True, text=True, timeout=120)


# ---- the value model --------------------------------------------------------------------------------
def test_value_model_parameters_by_hand_and_as_transformers_builds_them():
    # no lm_head (96), a score head of H + 1; tied or not, the same 2545
    assert count_value_params(SMALL) == 2632 - 96 + 8 + 1 == 2545
    assert count_value_params(replace(SMALL, tied=True)) == 2545
    assert count_value_params(QWEN25_7B) == 7_615_616_512 - 152064 * 3584 + 3584 + 1 == 7_070_622_721
    assert count_value_params(QWEN25_15B) == 1_543_714_304 + 1536 + 1
    # the seven projections' weights of one layer: 8*8 + 2*8*4 + 8*8 + 3*8*16
    assert linear_params_per_layer(SMALL) == 576

    torch = pytest.importorskip("torch")
    from transformers import AutoModelForTokenClassification, LlamaConfig, Qwen2Config

    for shape, config_cls in [(SMALL, Qwen2Config), (SMOLLM2_135M, LlamaConfig), (QWEN25_7B, Qwen2Config)]:
        config = config_cls(
            num_hidden_layers=shape.layers,
            hidden_size=shape.hidden,
            intermediate_size=shape.intermediate,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.kv_heads,
            vocab_size=shape.vocab,
            tie_word_embeddings=shape.tied,
            num_labels=1,  # as critic_worker.load_value_model builds it
            classifier_dropout=0.0,
        )
        with torch.device("meta"):
            model = AutoModelForTokenClassification.from_config(config)
        unique = {id(p): p.numel() for p in model.parameters()}
        assert sum(unique.values()) == count_value_params(shape), shape


# ---- the arithmetic ---------------------------------------------------------------------------------
def test_critic_bytes_by_hand_beside_rank_0():
    """One GPU: the critic's 0.5 beside rank 0's 0.5, on GPU 0 in every phase (its own process keeps its
    peak): each phase grows by exactly its state, its micro-batch and its process."""
    base = compute_plan(SMALL, replace(PPO, critic=False))
    plan = compute_plan(SMALL, PPO)
    assert PPO.critic_gpu == "gpu0" and PPO.critic_compute_dtype == "bfloat16"
    parts = plan.critic
    assert parts["critic_weights"] == parts["critic_gradients"] == 2545 * 4 == 10180
    assert parts["critic_optimizer"] == 2 * 2545 * 4 == 20360
    assert parts["critic_activations"] == CRITIC_ACTIVATIONS
    assert parts["critic_runtime"] == GIB
    for phase in base.phases:
        assert plan.phase_totals[phase] - base.phase_totals[phase] == CRITIC_STATE + CRITIC_ACTIVATIONS + GIB
        assert {k: v for k, v in plan.phases[phase].items() if k.startswith("critic_")} == parts
    assert plan.elsewhere == {} and plan.gpus_used == 1
    # without checkpointing: b' S (L A' + F') + L W c' = 16 * (4 * 400 + 80) + 4 * 1152
    no_ckpt = replace(PPO, gradient_checkpointing=False)
    assert critic_activation_bytes(SMALL, no_ckpt) == 16 * 1680 + 4608 == 31488
    # critic.micro_batch_size=1 halves the tokens: 8 * 208 + max(4608, 8 * 400 + 1152)
    assert critic_activation_bytes(SMALL, replace(PPO, critic_micro_batch_size=1)) == 1664 + 4608
    # no autocast (fp32 on a GPU, or bf16 planned for the CPU): the policy's formula in fp32, c' = m = 4:
    # A = 4 (32 + 24 + 8 + 64) + 64 = 576, F = 12 H = 96; checkpointing b' S (L H c' + A + F)
    for fp32 in (replace(PPO, compute_dtype="float32"), replace(PPO, on_gpu=False)):
        assert fp32.critic_compute_dtype == "float32"
        assert critic_activation_bytes(SMALL, fp32) == 16 * (4 * 8 * 4 + 576 + 96) == 12800
    assert replace(PPO, on_gpu=False, autocast_bf16=True).critic_compute_dtype == "bfloat16"


def test_where_ray_puts_the_critic_and_the_engine():
    """Ranks first (one per GPU here), then the critic, then the engine; Ray's best fit gives a fraction
    the fullest GPU that still holds it, the first of equals."""
    four = replace(PPO, gpus=4)  # 0.5 per rank, 0.5 for the critic, 0.5 for the engine (the defaults)
    assert (four.critic_gpu, four.engine_gpu) == ("gpu0", 1)  # GPU 0 is full once the critic is there
    assert replace(four, engine_gpu_share=0.1, critic_num_gpus=0.4).engine_gpu == 0
    assert replace(four, critic_num_gpus=1.0).critic_gpu == "own"
    assert replace(four, trainer_gpu_share=0.9, engine_gpu_share=0.1).critic_gpu == "own"
    assert (PPO.critic_gpu, PPO.engine_gpu) == ("gpu0", 0)  # one GPU: nowhere else to go
    assert replace(PPO, critic=False).critic_gpu == ""

    base = compute_plan(SMALL, replace(four, critic=False))
    engine = {k: v for k, v in base.phases["update"].items() if k.startswith(("rollout_", "runtime_engine"))}
    assert sum(engine.values()) == 5264 + 1536 + 3072 + GIB  # test_plan.py's HF engine of SMALL
    moved = compute_plan(SMALL, four)
    assert not any(k.startswith("rollout_") for k in moved.phases["update"])
    assert moved.total_bytes == base.total_bytes - sum(engine.values()) + CRITIC_STATE + CRITIC_ACTIVATIONS + GIB
    assert moved.elsewhere == {"GPU 1": base.total_bytes}  # rank 1 and the engine: what GPU 0 held before
    assert moved.other_gpu_bytes == base.other_gpu_bytes  # GPUs 2 and 3: a rank alone
    own = compute_plan(SMALL, replace(four, critic_num_gpus=1.0))
    assert own.phases == base.phases and own.gpus_used == 5
    assert own.elsewhere == {"the critic's GPU": CRITIC_STATE + CRITIC_ACTIVATIONS + GIB}


def test_critic_activations_match_what_autograd_saves():
    """critic_worker's forward (AutoModelForTokenClassification, one label) in fp32 and under bf16 autocast
    over fp32 weights, without checkpointing (every saved tensor, the autocast weight copies among them)
    and with it (the saved part: each layer's fp32 input and the final norm's; the recomputed layer and
    the forward's cache of weight copies are not seen by the hook)."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForTokenClassification, Qwen2Config

    shape = ModelShape(
        layers=3, hidden=128, intermediate=352, heads=4, kv_heads=2, vocab=256, tied=False, head_dim=32, qkv_bias=True
    )
    config = Qwen2Config(
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        vocab_size=shape.vocab,
        attn_implementation="sdpa",
        num_labels=1,
        classifier_dropout=0.0,
    )
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(config).float().train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    b, tokens = 2, 48
    settings = PlanSettings(master_dtype="float32", micro_batch_size=b, prompt_tokens=tokens, response_tokens=0)

    def measure(bf16: bool) -> int:
        saved: dict[int, int] = {}

        def pack(t):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(input_ids=torch.randint(0, shape.vocab, (b, tokens)), use_cache=False)
            out.logits[:, -9:-1, 0].float()
        return sum(n for ptr, n in saved.items() if ptr not in params)

    for compute, bf16 in (("float32", False), ("bfloat16", True)):
        s = replace(settings, compute_dtype=compute, autocast_bf16=bf16)
        assert measure(bf16) == pytest.approx(critic_activation_bytes(shape, s), rel=0.05), compute
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    h, n = shape.hidden, b * tokens
    # fp32: b S (L H 4 + F), F = 12 H; autocast: b S (L H m + F'), F' = (m + 4) H + 2 H
    assert measure(False) == pytest.approx(n * (3 * h * 4 + 12 * h), rel=0.05)
    assert measure(True) == pytest.approx(n * (3 * h * 4 + 10 * h), rel=0.05)


# ---- the verdicts -----------------------------------------------------------------------------------
def test_a_7b_critic_does_not_fit_one_80_gib_gpu_and_the_verdict_says_what_would_help():
    verdict, _ = plan_config(load_config("alfworld-qwen2.5-7b", ["algorithm.name=ppo"]), gpus=1, gpu_mem_gib=80)
    plan = verdict.plan
    assert not verdict.fits
    state = plan.critic["critic_weights"] + plan.critic["critic_gradients"] + plan.critic["critic_optimizer"]
    assert state == 16 * 7_070_622_721  # fp32 weights, gradients and two AdamW moments: 105.4 GiB
    line = verdict.line()
    assert "\n" not in line and line.startswith("does not fit on 1 x 80 GiB: the PPO critic needs ")
    assert "105.4 GiB of it the float32 weights, gradients and AdamW state" in line
    assert "what would help: a smaller critic.model_path, or GPUs of at least " in line
    assert "no single setting" not in line and verdict.suggestions == []
    # more trainer GPUs do not shard it: the same problem on the preset's 4
    four, _ = plan_config(load_config("alfworld-qwen2.5-7b", ["algorithm.name=ppo"]), gpus=4, gpu_mem_gib=80)
    assert not four.fits and "the PPO critic needs" in four.reason()
    with pytest.raises(UserError, match="memory plan: does not fit on 1 x 80 GiB: the PPO critic needs"):
        check_training(load_config("alfworld-qwen2.5-7b", ["algorithm.name=ppo", "trainer.num_workers=1"]), "cuda")


def test_cli_json_7b_ppo_on_one_gpu():
    result = hgpo("plan", "alfworld-qwen2.5-7b", "algorithm.name=ppo", "--gpus", "1", "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["fits"] is False and data["settings"]["critic"] is True
    assert data["settings"]["critic_gpu"] == "gpu0" and "critic_optimizer" in data["per_gpu_gib"]
    assert data["critic_gib"]["critic_optimizer"] == round(8 * 7_070_622_721 / GIB, 2)
    assert "the PPO critic needs" in data["reason"] and "critic.model_path" in data["verdict"]


def test_the_15b_critic_beside_rank_0_does_not_fit_its_own_gpu_does():
    """The 1.5B preset on 2 x 80 GiB with the default shares: the critic lands on GPU 0 (the engine then on
    GPU 1) and GPU 0 overflows; each suggestion re-checked through the config fits."""
    cfg = load_config("alfworld-qwen2.5-1.5b", ["algorithm.name=ppo"])
    verdict, _ = plan_config(cfg, gpu_mem_gib=80)
    plan = verdict.plan
    assert not verdict.fits and plan.settings.critic_gpu == "gpu0" and plan.settings.engine_gpu == 1
    assert "GiB needed on GPU 0" in verdict.reason() and "critic_" in verdict.reason()
    assert plan.critic["critic_weights"] == 4 * count_value_params(QWEN25_15B)
    labels = [s.label for s in verdict.suggestions]
    assert "critic.num_gpus=1 (its own GPU)" in labels, labels
    for suggestion in verdict.suggestions:
        again, _ = plan_config(load_config("alfworld-qwen2.5-1.5b", ["algorithm.name=ppo", *suggestion.overrides]))
        assert again.fits, suggestion.label
    # ranks of 0.9 GPU leave no room: the critic gets a GPU of its own (3 in all), GPU 0 as without a critic
    wide = ["algorithm.name=ppo", "trainer.gpus_per_worker=0.9", "rollout.num_gpus=0.1"]
    own, _ = plan_config(load_config("alfworld-qwen2.5-1.5b", wide))
    grpo, _ = plan_config(load_config("alfworld-qwen2.5-1.5b"))
    assert own.fits and own.plan.gpus_used == 3 and own.plan.total_bytes == grpo.plan.total_bytes
    assert own.plan.elsewhere == {"the critic's GPU": sum(own.plan.critic.values())}
    assert "of 3 GPU(s)" in own.line()


def test_a_critic_of_its_own_model_is_planned_with_that_models_shape():
    cfg = load_config(
        "alfworld-qwen2.5-1.5b", ["algorithm.name=ppo", "critic.model_path=HuggingFaceTB/SmolLM2-135M-Instruct"]
    )
    verdict, source = plan_config(cfg)
    assert verdict.plan.critic["critic_weights"] == 4 * (count_params(SMOLLM2_135M).total + 576 + 1)
    assert "critic: known shape" in source
    grpo, _ = plan_config(load_config("alfworld-qwen2.5-1.5b", ["critic.model_path=nobody/unknown-model"]))
    assert grpo.plan.critic == {}  # no critic without ppo: its model is not even looked up
