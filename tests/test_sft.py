"""`hgpo sft`: walkthrough replies built like rollout prompts, and fitting them lowers their NLL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("alfworld")

from hgpo_cli.errors import UserError  # noqa: E402
from tests.test_alfworld_generated import generated_games  # noqa: E402


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, tiny_model_dir):
    from hgpo_cli.config import load_config

    root = generated_games(tmp_path_factory)
    return load_config(
        "smollm2",
        [
            f"model.path={tiny_model_dir}",
            f"env.alfworld.data_dir={root}",
            "env.max_steps=3",
            "agent.answer_format=action",
            "rollout.max_prompt_tokens=400",
            "trainer.micro_batch_size=4",
            "trainer.torch_threads=1",
        ],
    )


@pytest.fixture(scope="module")
def samples_and_tokenizer(cfg):
    from hgpo_cli.envs.alfworld import suite
    from hgpo_cli.models.loading import load_tokenizer
    from hgpo_cli.train.sft import walkthrough_samples

    tokenizer = load_tokenizer(str(cfg.model.path))
    tasks = suite.list_tasks(cfg, "train")
    return walkthrough_samples(cfg, tokenizer, suite, tasks), tokenizer, tasks


def test_walkthrough_replies_are_admissible_commands_after_the_reply_prefix(samples_and_tokenizer):
    samples, tokenizer, tasks = samples_and_tokenizer
    assert len(tasks) == 6
    # every generated plan has at least 3 steps and env.max_steps=3 keeps the first 3 of each
    assert len(samples) == 3 * len(tasks)
    for sample in samples:
        prompt = tokenizer.decode(sample.prompt_ids)
        reply = tokenizer.decode(sample.response_ids[:-1])
        assert prompt.endswith("<action>") and "Commands you may use now" in prompt
        assert sample.response_ids[-1] == tokenizer.eos_token_id
        assert reply.endswith("</action>")
        command = reply[: -len("</action>")]
        admissible = prompt.split("exactly as written):\n")[1].split("\n\n")[0].splitlines()
        assert f"- {command}" in admissible, (command, admissible)
    # the memory: the second step of a game shows the first step's command
    first, second = samples[0], samples[1]
    first_command = tokenizer.decode(first.response_ids[:-1])[: -len("</action>")]
    assert f"Command: {first_command}" in tokenizer.decode(second.prompt_ids)


def test_fitting_the_replies_lowers_their_nll(cfg, samples_and_tokenizer):
    from hgpo_cli.models.loading import load_causal_lm
    from hgpo_cli.train.sft import fit_replies, reply_nll

    samples, tokenizer, _ = samples_and_tokenizer
    torch.manual_seed(0)
    model = load_causal_lm(str(cfg.model.path))
    with torch.no_grad():
        before = float(reply_nll(model, samples, tokenizer.pad_token_id))
    per_epoch = fit_replies(
        model, samples, pad_id=tokenizer.pad_token_id, epochs=4, lr=3e-3, micro_batch_size=6, grad_clip=1.0, seed=0
    )
    with torch.no_grad():
        after = float(reply_nll(model, samples, tokenizer.pad_token_id))
    assert len(per_epoch) == 4 and per_epoch[-1] < per_epoch[0]
    assert after < 0.6 * before, (before, after)


def test_the_think_format_is_refused(cfg):
    from hgpo_cli.train.sft import run_sft

    think = cfg.copy()
    think.agent.answer_format = "think"
    with pytest.raises(UserError, match="agent.answer_format=action"):
        run_sft(think, "/nonexistent", epochs=1, lr=1e-4)


def test_webshop_warm_starts_without_detours_only():
    """The warm start is allowed on WebShop (its scripted player gives walkthroughs) but not with detours
    (the player plans from the start of an episode only)."""
    from hgpo_cli.config import load_config
    from hgpo_cli.errors import ConfigError

    webshop = load_config("default", ["env.name=webshop", "model.sft_detours=0"])
    assert webshop.model.sft_epochs > 0
    with pytest.raises(ConfigError, match="set model.sft_detours=0"):
        load_config("default", ["env.name=webshop"])  # the default preset's one detour per game


def test_cli_writes_a_loadable_model_and_its_record(cfg, tmp_path):
    out = tmp_path / "sft"
    args = [f"model.path={cfg.model.path}", f"env.alfworld.data_dir={cfg.env.alfworld.data_dir}", "env.max_steps=2"]
    args += ["agent.answer_format=action", "rollout.max_prompt_tokens=400", "trainer.torch_threads=1"]
    done = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "sft", "smollm2", *args, "--out", str(out), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "sft.json").read_text())
    assert record["games"] == 6 and record["samples"] == 12 and len(record["nll_per_epoch"]) == 1
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)
    bad = subprocess.run(
        [sys.executable, "-m", "hgpo_cli", "sft", "webshop-qwen2.5-1.5b", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().startswith("hgpo: error:")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_prompt_loss_adds_the_weighted_prompt_nll_of_each_unpadded_sample(cfg, samples_and_tokenizer):
    """The padded, masked batch loss equals reply NLL + w x prompt NLL computed sample by sample without
    padding (token means over the whole batch: sums over samples / token counts)."""
    from hgpo_cli.models.loading import load_causal_lm
    from hgpo_cli.train.sft import reply_nll

    samples, tokenizer, _ = samples_and_tokenizer
    batch = [samples[0], samples[4], samples[8]]  # prompts of different lengths: left padding
    assert len({len(s.prompt_ids) for s in batch}) > 1
    model = load_causal_lm(str(cfg.model.path)).eval()
    reply_sum = prompt_sum = 0.0
    reply_count = prompt_count = 0
    with torch.no_grad():
        for s in batch:
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            target = logp.gather(-1, ids[0, 1:, None])[:, 0]
            n_reply = len(s.response_ids)
            reply_sum -= float(target[-n_reply:].sum())
            prompt_sum -= float(target[:-n_reply].sum())
            reply_count += n_reply
            prompt_count += len(s.prompt_ids) - 1
        plain = float(reply_nll(model, batch, tokenizer.pad_token_id))
        weighted = float(reply_nll(model, batch, tokenizer.pad_token_id, prompt_weight=0.5))
    assert plain == pytest.approx(reply_sum / reply_count, rel=1e-4)
    assert weighted == pytest.approx(reply_sum / reply_count + 0.5 * prompt_sum / prompt_count, rel=1e-4)


def test_detours_add_planner_steps_from_a_wrong_first_place(cfg, samples_and_tokenizer):
    """Detour d visits d receptacles other than the plan's first (not trained on), then the planner's
    replies from there: each detour episode's first prompt shows the detour's command in the memory."""
    from omegaconf import OmegaConf

    from hgpo_cli.envs.alfworld import suite
    from hgpo_cli.models.loading import load_tokenizer
    from hgpo_cli.train.sft import walkthrough_samples

    plain, tokenizer, tasks = samples_and_tokenizer
    detoured_cfg = OmegaConf.merge(cfg, {"model": {"sft_detours": 2}, "env": {"max_steps": 6}})
    task = tasks[0]
    samples = walkthrough_samples(detoured_cfg, load_tokenizer(str(cfg.model.path)), suite, [task])
    env = suite.make_env(task, detoured_cfg)
    plan = env.walkthrough()
    env.close()
    texts = [tokenizer.decode(s.prompt_ids) for s in samples]
    straight = min(len(plan), 6)
    assert [tokenizer.decode(s.response_ids[:-1]) for s in samples[:straight]] == [f"{c}</action>" for c in plan][
        :straight
    ]
    first_of_detours = [i for i, text in enumerate(texts) if i >= straight and "What you see now" in text]
    # after the straight episode: detour 1 starts at step 2, detour 2 at step 3 (its visits are not samples)
    steps = [int(text.split("What you see now")[0].rsplit("Step ", 1)[1].split(".")[0]) for text in texts[straight:]]
    assert steps[0] == 2 and 3 in steps and 1 not in steps
    detour_first = texts[straight]
    visited = detour_first.split("Command: ")[1].split("\n")[0]
    assert visited.startswith("go to ") and visited != plan[0]
    assert first_of_detours and all(
        tokenizer.decode(s.response_ids[:-1]) != f"{visited}</action>" for s in samples[straight : straight + 1]
    )
    # the same samples from two worker processes as from one
    from hgpo_cli.train.sft import collect_samples

    many = tasks[:2] * 8  # 16 tasks: two chunks
    one = walkthrough_samples(detoured_cfg, tokenizer, suite, many)
    two = collect_samples(detoured_cfg, tokenizer, str(cfg.model.path), suite, many, workers=2)
    assert [(s.prompt_ids, s.response_ids) for s in two] == [(s.prompt_ids, s.response_ids) for s in one]
