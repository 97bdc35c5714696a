"""The PPO update on a real (tiny) transformers model: loss goes down, engine and trainer agree on
log-probs, weights reach the engine, and two data-parallel workers equal one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from hgpo_cli.engines.base import SamplingSettings
from hgpo_cli.engines.hf import HFEngine
from hgpo_cli.models.loading import load_causal_lm, load_tokenizer
from hgpo_cli.train.batch import TrainSample, collate
from hgpo_cli.train.policy_worker import PolicyWorker, make_policy_workers, model_settings, trainer_settings

MODEL_CFG = model_settings()


def trainer_cfg(**over) -> dict:
    base = {"device": "cpu", "lr": 1e-3, "weight_decay": 0.0, "ppo_mini_batch_size": 8, "micro_batch_size": 3}
    return trainer_settings(**{**base, **over})


def fixed_batch(tokenizer, n: int = 8, seed: int = 0) -> list[TrainSample]:
    rng = np.random.default_rng(seed)
    words = ["go to the fridge 1", "open the drawer 2", "take the apple", "look", "heat the mug with microwave 1"]
    samples = []
    for i in range(n):
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": words[i % 5] * (1 + i % 3)}], add_generation_prompt=True, return_dict=False
        )
        response = tokenizer.encode(f"<action>{words[(i + 2) % 5]}</action>")[: 4 + i % 6]
        samples.append(TrainSample(list(prompt), list(response), advantage=float(rng.normal())))
    return samples


def test_collate_right_aligns_responses(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    samples = [TrainSample([5, 6, 7], [8, 9], 1.0, [0.1, 0.2]), TrainSample([5], [8, 9, 10], -1.0, [0.3, 0.4, 0.5])]
    batch = collate(samples, tok.pad_token_id)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [tok.pad_token_id, 5, 8, 9, 10]]
    assert batch.response_mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    assert batch.advantages.tolist() == [[0, 1, 1], [-1, -1, -1]]
    assert torch.allclose(batch.old_log_probs, torch.tensor([[0, 0.1, 0.2], [0.3, 0.4, 0.5]]))
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]]


def test_loss_goes_down_on_a_fixed_batch(tiny_model_dir):
    worker = PolicyWorker(str(tiny_model_dir), MODEL_CFG, trainer_cfg(ppo_mini_batch_size=8))
    samples = fixed_batch(worker.tokenizer)
    for sample, lp in zip(samples, worker.log_probs(samples), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    before = worker.loss_on(samples)
    for i in range(6):
        stats = worker.update(samples, seed=i)
    after = worker.loss_on(samples)
    assert after < before - 0.05, (before, after)
    assert stats["actor/grad_norm"] > 0
    assert 0 <= stats["actor/clip_frac"] <= 1


def test_engine_log_probs_match_trainer_and_follow_weight_updates(tiny_model_dir):
    path = str(tiny_model_dir)
    tok = load_tokenizer(path)
    engine = HFEngine(load_causal_lm(path), tok, batch_size=4)
    prompts = [s.prompt_ids for s in fixed_batch(tok, n=4)]
    gens = engine.generate(prompts, SamplingSettings(temperature=1.0, max_new_tokens=6, seed=3))
    worker = PolicyWorker(path, MODEL_CFG, trainer_cfg(use_kl_loss=False))
    samples = [TrainSample(p, g.token_ids) for p, g in zip(prompts, gens, strict=True)]
    recomputed = worker.log_probs(samples)
    for gen, lp in zip(gens, recomputed, strict=True):
        np.testing.assert_allclose(gen.log_probs, lp["old"], atol=2e-4)
    # new weights reach the engine: the log-probs of the same tokens change, and match the new policy
    state = copy.deepcopy(worker.policy_state_dict())
    for name in state:
        if "mlp" in name:
            state[name] += 0.05 * torch.randn_like(state[name])
    engine.load_weights(state)
    worker.model.load_state_dict(state, strict=False)
    again = engine.generate(prompts[:1], SamplingSettings(temperature=1.0, max_new_tokens=6, seed=3))
    moved = worker.log_probs([TrainSample(prompts[0], again[0].token_ids)])[0]["old"]
    np.testing.assert_allclose(again[0].log_probs, moved, atol=2e-4)
    old_under_new = worker.log_probs(samples[:1])[0]["old"]
    assert np.max(np.abs(np.array(old_under_new) - np.array(recomputed[0]["old"]))) > 1e-3


@pytest.mark.slow
def test_log_probs_are_those_of_the_sampling_temperature(tiny_model_dir):
    path = str(tiny_model_dir)
    tok = load_tokenizer(path)
    sample = fixed_batch(tok, n=1)[0]
    model = load_causal_lm(path).eval()
    with torch.no_grad():
        logits = model(torch.tensor([sample.prompt_ids + sample.response_ids])).logits[0].float()
    start = len(sample.prompt_ids) - 1  # the position that predicts the first response token
    picked = logits[start : start + len(sample.response_ids)]
    targets = torch.tensor(sample.response_ids).unsqueeze(-1)
    for temperature in (1.0, 0.5):
        worker = PolicyWorker(path, MODEL_CFG, trainer_cfg(), temperature=temperature)
        expected = torch.log_softmax(picked / temperature, dim=-1).gather(-1, targets).squeeze(-1)
        got = worker.log_probs([sample])[0]
        np.testing.assert_allclose(got["old"], expected.numpy(), atol=1e-4)
        np.testing.assert_allclose(got["ref"], expected.numpy(), atol=1e-4)  # the reference at the same temperature


def test_two_data_parallel_workers_equal_one(tiny_model_dir, ray_local):
    import ray

    # global scale: the sum over ranks is one big batch whatever the split (micro mode weighs micro-batches,
    # whose make-up depends on the ranks, as verl's does)
    cfg = trainer_cfg(ppo_mini_batch_size=4, micro_batch_size=2, loss_scale="global", shuffle=True, pad_batch="none")
    single = PolicyWorker(str(tiny_model_dir), MODEL_CFG, cfg)
    samples = fixed_batch(single.tokenizer, n=8)
    for sample, lp in zip(samples, single.log_probs(samples), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    expected = single.update(samples, seed=7)
    workers = make_policy_workers(
        str(tiny_model_dir), MODEL_CFG, cfg, num_workers=2, num_cpus=1, num_gpus=0, torch_threads=1
    )
    stats = ray.get([w.update.remote(samples, 7) for w in workers])
    vectors = ray.get([w.parameter_vector.remote() for w in workers])
    torch.testing.assert_close(vectors[0], vectors[1], rtol=0, atol=0)
    torch.testing.assert_close(vectors[0], single.parameter_vector(), rtol=1e-3, atol=1e-5)
    assert stats[0]["actor/loss"] == pytest.approx(expected["actor/loss"], rel=1e-4, abs=1e-6)
    from hgpo_cli.train.placement import release_actors

    release_actors(workers)


def test_lora_trains_adapters_and_saves_a_merged_hf_policy(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    lora_cfg = model_settings(lora_rank=4, lora_alpha=8)
    worker = PolicyWorker(str(tiny_model_dir), lora_cfg, trainer_cfg(lr=1e-2))
    base_before = worker.policy_state_dict()
    samples = fixed_batch(worker.tokenizer)
    for sample, lp in zip(samples, worker.log_probs(samples), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    for i in range(3):
        worker.update(samples, seed=i)
    merged = worker.policy_state_dict()
    assert set(merged) == set(base_before)
    assert not any("lora_" in k for k in merged)
    moved = [k for k in merged if not torch.equal(merged[k], base_before[k])]
    assert moved and all("proj" in k for k in moved)
    worker.save(str(tmp_path / "ckpt"))
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt" / "policy")
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, merged[key])
    fresh = PolicyWorker(str(tiny_model_dir), lora_cfg, trainer_cfg(lr=1e-2))
    fresh.load(str(tmp_path / "ckpt"))
    torch.testing.assert_close(fresh.parameter_vector(), worker.parameter_vector())


def test_log_prob_and_update_passes_report_their_micro_batch_progress(tiny_model_dir):
    """The log-prob and update phases count their micro-batch passes into a sink (the trainer's Ray queue,
    drained by the UI): 8 samples in micro-batches of at most 3 are at least 3 passes, counted 1..n in order."""
    import queue

    worker = PolicyWorker(str(tiny_model_dir), MODEL_CFG, trainer_cfg(ppo_mini_batch_size=8, loss_scale="global"))
    samples = fixed_batch(worker.tokenizer)
    sink: queue.Queue = queue.Queue()
    for sample, lp in zip(samples, worker.log_probs(samples, True, sink), strict=True):
        sample.old_log_probs, sample.ref_log_probs = lp["old"], lp["ref"]
    counts = [sink.get_nowait() for _ in range(sink.qsize())]
    assert len(counts) >= 3 and counts == [(k, len(counts)) for k in range(1, len(counts) + 1)]
    worker.update(samples, seed=0, progress=sink)
    counts = [sink.get_nowait() for _ in range(sink.qsize())]
    assert len(counts) >= 3 and counts == [(k, len(counts)) for k in range(1, len(counts) + 1)]
    worker.update(samples, seed=1)  # no sink: nothing reported, nothing fails
    assert sink.empty()
