"""Paper-scale training pieces on CPU (issue 12): FSDP2 over gloo ranks equals one rank, fp32 master
weights keep lr-1e-6 updates that bf16 compute alone would lose, sharded checkpoints resume exactly, the HF
export is the trainer's policy, weights reach the engine bucket by bucket, ranks are placed together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine
from hgpo_cli.models.loading import load_causal_lm
from hgpo_cli.train.batch import TrainSample, collate, response_logits, response_targets
from hgpo_cli.train.loss import token_log_probs
from hgpo_cli.train.placement import placement_strategy, release_actors
from hgpo_cli.train.policy_worker import PolicyWorker, make_policy_workers, model_settings, trainer_settings
from hgpo_cli.train.precision import LOW_PRECISION_MASTER_WARNING
from hgpo_cli.train.sharding import interleave_shares, lockstep_micro_batches
from tests.test_policy_worker import fixed_batch

# a true aggregate over each mini-batch, so that any split over ranks and micro-batches is the same sum
EXACT = {"loss_scale": "global", "shuffle": True, "pad_batch": "none"}


def trainer_cfg(**over) -> dict:
    base = {"device": "cpu", "lr": 1e-3, "weight_decay": 0.0, "ppo_mini_batch_size": 4, "micro_batch_size": 4}
    return trainer_settings(**{**base, **EXACT, **over})


def with_log_probs(worker: PolicyWorker, samples: list[TrainSample]) -> list[TrainSample]:
    for sample, lp in zip(samples, worker.log_probs(samples), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    return samples


def decoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float().clone() for k, v in state.items() if ".layers." in k}


def changed_fraction(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    changed = sum(int((after[k] != before[k]).sum()) for k in before)
    return changed / sum(v.numel() for v in before.values())


# ---- pure pieces, by hand -------------------------------------------------------------------------------
def test_shares_interleave_back_and_ranks_run_in_lockstep():
    items = list("abcdefg")
    shares = [items[r::3] for r in range(3)]  # [a d g] [b e] [c f]
    assert interleave_shares(shares) == items
    per_rank = [[1, 2, 3], [4], []]
    assert lockstep_micro_batches(per_rank, 0) == [(1, True), (2, True), (3, True)]
    assert lockstep_micro_batches(per_rank, 1) == [(4, True), (1, False), (1, False)]
    assert lockstep_micro_batches(per_rank, 2) == [(1, False)] * 3


def test_placement_packs_when_one_node_holds_all_ranks():
    big, small = {"CPU": 16.0, "GPU": 4.0}, {"CPU": 16.0, "GPU": 2.0}
    assert placement_strategy([small, big], {"CPU": 1, "GPU": 1}, 4) == "PACK"
    assert placement_strategy([small, small], {"CPU": 1, "GPU": 1}, 4) == "SPREAD"  # 2 GPUs a node: spread
    assert placement_strategy([{"CPU": 2.0}], {"CPU": 1, "GPU": 0}, 2) == "PACK"  # a CPU-only run ignores GPUs


# ---- precision ------------------------------------------------------------------------------------------
def test_bf16_compute_update_at_lr_1e_6_moves_almost_every_decoder_weight(tiny_model_dir):
    worker = PolicyWorker(str(tiny_model_dir), model_settings(dtype="bfloat16"), trainer_cfg(lr=1e-6))
    assert {p.dtype for p in worker.params} == {torch.float32}  # fp32 master weights under bf16 compute
    samples = with_log_probs(worker, fixed_batch(worker.tokenizer, n=4))
    before = decoder_state(worker.policy_state_dict())
    worker.update(samples, seed=0)
    fraction = changed_fraction(before, decoder_state(worker.policy_state_dict()))
    assert fraction >= 0.99, fraction


def test_the_export_keeps_the_master_dtype_unless_save_dtype_says_otherwise(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    for save_dtype, expected in (("", torch.float32), ("bfloat16", torch.bfloat16)):
        worker = PolicyWorker(str(tiny_model_dir), model_settings(), trainer_cfg(save_dtype=save_dtype))
        worker.save(str(tmp_path / save_dtype))
        exported = load_file(str(tmp_path / save_dtype / "policy" / "model.safetensors"))
        assert {v.dtype for v in exported.values()} == {expected}
        assert "lm_head.weight" not in exported  # the tied head is saved once, as save_pretrained does


def test_bf16_master_weights_warn_once_and_lose_most_updates(tiny_model_dir, capsys):
    worker = PolicyWorker(
        str(tiny_model_dir), model_settings(dtype="bfloat16", master_dtype="bfloat16"), trainer_cfg(lr=1e-6)
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if "master_dtype" in line]
    assert lines == [LOW_PRECISION_MASTER_WARNING.format(dtype="bfloat16")]
    samples = with_log_probs(worker, fixed_batch(worker.tokenizer, n=4))
    before = decoder_state(worker.policy_state_dict())
    worker.update(samples, seed=0)
    assert changed_fraction(before, decoder_state(worker.policy_state_dict())) < 0.5  # the bug fp32 master fixes


# ---- FSDP2 over 2 gloo ranks ----------------------------------------------------------------------------
def test_two_fsdp_ranks_with_accumulation_equal_one_rank_over_two_updates(tiny_model_dir, ray_local):
    import ray

    path = str(tiny_model_dir)
    # the reference: untrimmed; the others run the last layer trimmed (model.trim_last_*, on by default),
    # under FSDP2 too
    untrimmed = model_settings(trim_last_mlp=False, trim_last_attention=False)
    single = PolicyWorker(path, untrimmed, trainer_cfg(micro_batch_size=4))
    samples = with_log_probs(single, fixed_batch(single.tokenizer, n=8))
    accumulating = PolicyWorker(path, model_settings(), trainer_cfg(micro_batch_size=1))
    for seed in (7, 8):
        single.update(samples, seed=seed)
        accumulating.update(samples, seed=seed)
    # one rank: 4 micro-batches of 1 accumulate to the one pass over 4. Tolerance: 4 AdamW steps of 1e-3;
    # Adam's normalisation turns the float-rounding of near-zero gradients into up to ~1 % of a step
    tol = {"rtol": 1e-3, "atol": 5e-5}
    torch.testing.assert_close(accumulating.parameter_vector(), single.parameter_vector(), **tol)

    workers = make_policy_workers(
        path, model_settings(), trainer_cfg(micro_batch_size=1), num_workers=2, num_cpus=1, num_gpus=0, torch_threads=1
    )
    try:
        shares = ray.get([w.log_probs.remote(samples) for w in workers])  # each rank its half
        assert [len(s) for s in shares] == [4, 4]
        for got, sample in zip(interleave_shares(shares), samples, strict=True):
            np.testing.assert_allclose(got["old"], sample.old_log_probs, atol=1e-5)
        for seed in (7, 8):
            ray.get([w.update.remote(samples, seed) for w in workers])
        vectors = ray.get([w.parameter_vector.remote() for w in workers])
    finally:
        release_actors(workers)
    torch.testing.assert_close(vectors[0], vectors[1], rtol=0, atol=0)
    torch.testing.assert_close(vectors[0], single.parameter_vector(), **tol)


def test_sharded_checkpoint_resumes_exactly_and_the_hf_export_is_the_policy(tiny_model_dir, ray_local, tmp_path):
    import ray
    from transformers import AutoModelForCausalLM

    path, ckpt = str(tiny_model_dir), tmp_path / "iter_000001"
    cfg = trainer_cfg(micro_batch_size=2)

    def start() -> list:
        return make_policy_workers(path, model_settings(), cfg, num_workers=2, num_cpus=1, num_gpus=0, torch_threads=1)

    workers = start()
    try:
        samples = fixed_batch(_tokenizer(path), n=8)
        lps = interleave_shares(ray.get([w.log_probs.remote(samples) for w in workers]))
        for sample, lp in zip(samples, lps, strict=True):
            sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
        ray.get([w.update.remote(samples, 0) for w in workers])
        ray.get([w.save.remote(str(ckpt)) for w in workers])
        saved_lps = interleave_shares(ray.get([w.log_probs.remote(samples) for w in workers]))
        ray.get([w.update.remote(samples, 1) for w in workers])
        straight = ray.get([w.parameter_vector.remote() for w in workers])[0]  # a collective
    finally:
        release_actors(workers)  # the "kill" after iteration 1
    assert (ckpt / "sharded" / ".metadata").is_file()
    assert sorted(p.name for p in ckpt.glob("rng_rank*.pt")) == ["rng_rank0.pt", "rng_rank1.pt"]

    workers = start()
    try:
        ray.get([w.load.remote(str(ckpt)) for w in workers])
        ray.get([w.update.remote(samples, 1) for w in workers])
        resumed = ray.get([w.parameter_vector.remote() for w in workers])[0]
    finally:
        release_actors(workers)
    torch.testing.assert_close(resumed, straight, rtol=0, atol=1e-7)

    # the export is an ordinary HF folder whose log-probs are the trainer's at save time
    exported = AutoModelForCausalLM.from_pretrained(ckpt / "policy").eval()
    batch = collate(samples, _tokenizer(path).pad_token_id)
    with torch.no_grad():
        mine = token_log_probs(response_logits(exported, batch), response_targets(batch))
    for i, (sample, lp) in enumerate(zip(samples, saved_lps, strict=True)):
        n = len(sample.response_ids)
        np.testing.assert_allclose(mine[i, batch.response_width - n :].numpy(), lp["old"], atol=1e-5)


def _tokenizer(path: str):
    from hgpo_cli.models.loading import load_tokenizer

    return load_tokenizer(path)


# ---- weight sync and LoRA -------------------------------------------------------------------------------
def test_weights_reach_the_engine_bucket_by_bucket(tiny_model_dir):
    path = str(tiny_model_dir)
    worker = PolicyWorker(path, model_settings(), trainer_cfg(lr=1e-2, use_kl_loss=False))
    samples = with_log_probs(worker, fixed_batch(worker.tokenizer, n=4))
    worker.update(samples, seed=0)
    engine = HFEngine(load_causal_lm(path), worker.tokenizer, batch_size=4)
    worker.start_weight_sync(bucket_mb=1)  # the tiny model is ~1.6 MB in fp32: several buckets
    sizes = []
    while bucket := worker.next_weight_bucket():
        assert sum(v.numel() * v.element_size() for v in bucket.values()) <= 2**20 or len(bucket) == 1
        engine.load_weights(bucket, partial=True)
        sizes.append(len(bucket))
    assert len(sizes) > 1
    prompts = [s.prompt_ids for s in samples]
    gens = engine.generate(prompts, SamplingSettings(temperature=1.0, max_new_tokens=5, seed=1))
    again = worker.log_probs([TrainSample(p, g.token_ids) for p, g in zip(prompts, gens, strict=True)])
    for gen, lp in zip(gens, again, strict=True):
        np.testing.assert_allclose(gen.log_probs, lp["old"], atol=2e-4)


def test_lora_merge_in_the_gathered_weights_is_peft_s(tiny_model_dir):
    worker = PolicyWorker(str(tiny_model_dir), model_settings(lora_rank=4, lora_alpha=8), trainer_cfg(lr=1e-2))
    samples = with_log_probs(worker, fixed_batch(worker.tokenizer, n=4))
    worker.update(samples, seed=0)
    ours = worker.policy_state_dict()
    worker.model.merge_adapter()
    try:
        peft = {
            k.replace(".base_layer.", "."): v.detach().clone()
            for k, v in worker.model.get_base_model().state_dict().items()
            if "lora_" not in k
        }
    finally:
        worker.model.unmerge_adapter()
    assert set(ours) == set(peft)
    for key, value in peft.items():
        torch.testing.assert_close(ours[key], value, rtol=1e-5, atol=1e-6)
    base = worker.model.get_base_model().model.layers[0].mlp.up_proj.base_layer.weight
    assert not torch.equal(ours["model.layers.0.mlp.up_proj.weight"], base)  # the adapters were merged in


def test_lora_trains_under_fsdp_mixed_precision_and_resumes(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    path, lora = str(tiny_model_dir), model_settings(dtype="bfloat16", lora_rank=4, lora_alpha=8)
    worker = PolicyWorker(path, lora, trainer_cfg(lr=1e-2))
    assert worker.sharded and {p.dtype for p in worker.params} == {torch.float32}
    samples = with_log_probs(worker, fixed_batch(worker.tokenizer, n=4))
    before = worker.policy_state_dict()
    worker.update(samples, seed=0)
    after = worker.policy_state_dict()
    moved = [k for k in after if not torch.equal(after[k], before[k])]
    assert moved and all("proj" in k for k in moved)  # only the adapted projections, merged in
    worker.save(str(tmp_path / "ckpt"))
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt" / "policy").state_dict()
    for key, value in after.items():
        torch.testing.assert_close(exported[key], value, rtol=0, atol=0)
    fresh = PolicyWorker(path, lora, trainer_cfg(lr=1e-2))
    fresh.load(str(tmp_path / "ckpt"))
    torch.testing.assert_close(fresh.parameter_vector(), worker.parameter_vector(), rtol=0, atol=0)


@pytest.mark.slow
def test_offloaded_policy_and_reference_train_as_the_plain_ones(tiny_model_dir):
    path = str(tiny_model_dir)
    fsdp = {"offload_params": True, "offload_reference": True, "offload_optimizer": True}
    plain = PolicyWorker(path, model_settings(dtype="bfloat16"), trainer_cfg())
    offload_cfg = trainer_cfg(fsdp={**trainer_cfg()["fsdp"], **fsdp})
    offloaded = PolicyWorker(path, model_settings(dtype="bfloat16"), offload_cfg)
    samples = with_log_probs(plain, fixed_batch(plain.tokenizer, n=4))
    plain.update(samples, seed=0)
    offloaded.update(samples, seed=0)
    torch.testing.assert_close(offloaded.parameter_vector(), plain.parameter_vector(), rtol=1e-5, atol=1e-7)
