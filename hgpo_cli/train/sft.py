"""`hgpo sft`: behaviour cloning on the planner's walkthroughs, a format warm start for small models.

A model too small to answer in format (the embedded 135M names an admissible command in well under half
of its replies at the start) gives RL little signal: when every step of a group is invalid, every step
gets the same penalty and all advantages are zero. This trains it on the planner's solutions of the
*training* games first. Each step's prompt is built exactly as the trainer builds it (the suite's prompt,
the K-step memory, the answer format and its reply prefix); the target reply is the planner's command
(`go to desk 1</action>` and the end-of-turn token); the loss is the token-mean negative log-likelihood
of the reply. Evaluation games are never read. The result is an HF folder for `model.path=`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from hgpo_cli.agent.memory import StepMemory
from hgpo_cli.errors import UserError
from hgpo_cli.train.batch import TrainSample, chunks, collate, response_logits, response_targets
from hgpo_cli.train.loss import nll_loss, token_log_probs
from hgpo_cli.train.rollout import prompt_template, step_prompt


@dataclass
class SFTReport:
    """What `run_sft` did: data, losses per epoch (mean NLL per reply token), time, provenance."""

    source_model: str
    out_dir: str
    games: int
    samples: int
    epochs: int
    lr: float
    nll_per_epoch: list[float] = field(default_factory=list)
    seconds: float = 0.0


def target_reply(command: str) -> str:
    """The reply the model is trained to write after the action format's reply prefix `<action>`."""
    return f"{command}</action>"


def detour_plan(admissible: list[str], first_command: str, visits: int, rng: random.Random) -> list[str]:
    """`visits` distinct `go to X` commands of the first step's list, none of them the plan's first command."""
    places = [c for c in admissible if c.startswith("go to ") and c != first_command]
    return rng.sample(places, min(visits, len(places)))


def _episode_samples(
    cfg: Any, tokenizer: Any, template: Any, env: Any, task_id: str, detour: list[str]
) -> list[TrainSample]:
    """The samples of one planner episode: after a reset, play `detour` (not trained on), then the planner's
    solution from the state it leads to, one sample per planner step within env.max_steps."""
    end_of_turn = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    max_steps = int(cfg.env.max_steps)
    samples: list[TrainSample] = []
    result = env.reset()
    memory = StepMemory(int(cfg.agent.history_length))
    for command in detour:
        memory.add(result.observation, command)
        result = env.step(command)
        if result.done:
            return samples
    step = len(detour)
    for command in env.walkthrough():
        if result.done or step >= max_steps:
            break
        _, prompt_ids, _ = step_prompt(
            template,
            result,
            step_index=step,
            history=memory.window(),
            answer_format="action",
            tokenizer=tokenizer,
            max_prompt_tokens=int(cfg.rollout.max_prompt_tokens),
        )
        reply = tokenizer.encode(target_reply(command), add_special_tokens=False)
        samples.append(TrainSample(prompt_ids, list(reply) + end_of_turn, meta={"task_id": task_id}))
        memory.add(result.observation, command)
        result = env.step(command)
        step += 1
    return samples


def walkthrough_samples(cfg: Any, tokenizer: Any, suite: Any, tasks: list[Any]) -> list[TrainSample]:
    """One TrainSample per planner step of every task (at most env.max_steps steps of each), in the
    action answer format; with `model.sft_detours` = D also D detoured episodes per task (detour d goes
    to d receptacles other than the plan's first one, chosen by trainer.seed and the task, then the
    planner replans from there).

    prompt_ids: the chat-templated prompt and reply prefix, as in a rollout; response_ids: the command,
    `</action>` and the end-of-turn token.
    """
    samples: list[TrainSample] = []
    template = prompt_template(cfg, suite.PROMPT)  # agent.prompt_template when set, as in the rollouts
    detours = int(cfg.model.get("sft_detours", 0))
    max_visits = max(int(cfg.env.max_steps) - 1, 0)
    for task in tasks:
        env = suite.make_env(task, cfg)
        try:
            samples += _episode_samples(cfg, tokenizer, template, env, task.task_id, [])
            if detours <= 0:
                continue
            start = env.reset()
            plan = env.walkthrough()
            rng = random.Random(f"hgpo-sft-detour:{int(cfg.trainer.seed)}:{task.task_id}")
            for visits in range(1, detours + 1):
                detour = detour_plan(start.admissible_actions, plan[0] if plan else "", min(visits, max_visits), rng)
                if detour:
                    samples += _episode_samples(cfg, tokenizer, template, env, task.task_id, detour)
        finally:
            env.close()
    return samples


def _collect_chunk(args: tuple[dict[str, Any], str, list[Any]]) -> list[TrainSample]:
    """Worker process: `walkthrough_samples` of one chunk of tasks (config as a dict, tokenizer by path)."""
    from omegaconf import OmegaConf

    from hgpo_cli.envs.registry import get_suite
    from hgpo_cli.models.loading import load_tokenizer

    cfg_dict, tokenizer_path, tasks = args
    cfg = OmegaConf.create(cfg_dict)
    return walkthrough_samples(cfg, load_tokenizer(tokenizer_path), get_suite(cfg.env.name), tasks)


def collect_samples(
    cfg: Any, tokenizer: Any, tokenizer_path: str, suite: Any, tasks: list[Any], workers: int
) -> list[TrainSample]:
    """`walkthrough_samples` of all tasks, in `workers` processes over contiguous chunks (loading a game
    costs the engine's PDDL translation, about half a second); the same samples in the same order as one
    process gives."""
    workers = max(1, min(int(workers), len(tasks) // 8))
    if workers <= 1:
        return walkthrough_samples(cfg, tokenizer, suite, tasks)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from omegaconf import OmegaConf

    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    size = -(-len(tasks) // workers)
    parts = [(cfg_dict, tokenizer_path, tasks[i : i + size]) for i in range(0, len(tasks), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        chunks_out = list(pool.map(_collect_chunk, parts))
    return [sample for part in chunks_out for sample in part]


def reply_nll(
    model: torch.nn.Module, samples: list[TrainSample], pad_id: int, prompt_weight: float = 0.0
) -> torch.Tensor:
    """Token-mean negative log-likelihood of the samples' replies under `model` (a scalar tensor); with
    `prompt_weight` w > 0, plus w x the token-mean NLL of the prompt tokens (language modelling on the
    prompt: every token a target, which teaches a small random model to copy names from its prompt)."""
    batch = collate(samples, pad_id)
    if prompt_weight <= 0.0:
        log_probs = token_log_probs(response_logits(model, batch), response_targets(batch))
        return nll_loss(log_probs, batch.response_mask)
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    )
    log_probs = token_log_probs(out.logits[:, :-1, :].float(), batch.input_ids[:, 1:])  # (B, L-1)
    width = batch.response_width
    reply = nll_loss(log_probs[:, -width:], batch.response_mask)
    # prompt targets: real tokens (attention 1) predicted from a real token, before the reply
    prompt_mask = (batch.attention_mask[:, 1:] * batch.attention_mask[:, :-1]).float()
    prompt_mask[:, -width:] = prompt_mask[:, -width:] * (1.0 - batch.response_mask)
    return reply + prompt_weight * nll_loss(log_probs, prompt_mask)


def length_grouped(
    order: list[int], lengths: list[int], size: int, rng: random.Random, *, length_window: int = 0
) -> list[list[int]]:
    """`order` (a shuffled list of sample indices) cut into micro-batches of at most `size` indices.

    lengths: (N,) tokens per sample. With `length_window` > `size`, each run of `length_window`
    consecutive indices is first sorted by length, so a micro-batch pads little, and the micro-batches
    are then shuffled with `rng`, so an epoch does not go from short to long (HF's group_by_length, in
    windows). Without it: consecutive slices, `rng` unused. Every index is in exactly one micro-batch.
    """
    if length_window <= size:
        return chunks(order, size)
    batches: list[list[int]] = []
    for start in range(0, len(order), length_window):
        window = sorted(order[start : start + length_window], key=lambda i: (lengths[i], i))
        batches.extend(chunks(window, size))
    rng.shuffle(batches)
    return batches


def fit_replies(
    model: torch.nn.Module,
    samples: list[TrainSample],
    *,
    pad_id: int,
    epochs: int,
    lr: float,
    micro_batch_size: int,
    grad_clip: float,
    seed: int,
    on_step: Callable[[int], None] | None = None,
    prompt_weight: float = 0.0,
    length_window: int = 0,
) -> list[float]:
    """AdamW on the reply NLL, one step per micro-batch (shuffled each epoch; with `length_window`
    grouped by length: `length_grouped`); the mean NLL per epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    lengths = [len(s.prompt_ids) + len(s.response_ids) for s in samples]
    order = list(range(len(samples)))
    rng = random.Random(seed)
    model.train()
    per_epoch = []
    for _ in range(epochs):
        rng.shuffle(order)  # each epoch reshuffles the last one's order
        losses = []
        for indices in length_grouped(order, lengths, micro_batch_size, rng, length_window=length_window):
            micro = [samples[i] for i in indices]
            loss = reply_nll(model, micro, pad_id, prompt_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(len(micro))
        per_epoch.append(sum(losses) / max(len(losses), 1))
    return per_epoch


def check_sft_config(cfg: Any) -> None:
    """UserError unless the config names an environment with walkthroughs and the action answer format."""
    from hgpo_cli.config.validate import sft_config_problem

    if problem := sft_config_problem(cfg):
        raise UserError(f"hgpo sft {problem}")


def run_sft(
    cfg: Any,
    out_dir: str | Path,
    *,
    epochs: int,
    lr: float,
    say: Callable[[str], None] = lambda text: None,
    on_start: Callable[[int], None] = lambda total: None,
    on_step: Callable[[int], None] | None = None,
) -> SFTReport:
    """Collect the walkthrough samples of the config's training split, fit them, save an HF folder.

    say: progress messages; on_start(total replies to fit); on_step(replies just fitted)."""
    from hgpo_cli.distributed import set_torch_threads
    from hgpo_cli.envs.registry import get_suite
    from hgpo_cli.models.loading import load_causal_lm, load_tokenizer, resolve_model_path

    started = time.perf_counter()
    check_sft_config(cfg)
    env_name = cfg.env.name
    suite = get_suite(env_name)
    set_torch_threads(int(cfg.trainer.torch_threads))
    torch.manual_seed(int(cfg.trainer.seed))
    model_path = resolve_model_path(str(cfg.model.path))
    tokenizer = load_tokenizer(model_path)
    tasks = suite.list_tasks(cfg, cfg.env[env_name].train_split)
    say(f"playing the planner's solution of {len(tasks)} training games")
    samples = collect_samples(cfg, tokenizer, model_path, suite, tasks, workers=int(cfg.env.num_workers))
    if not samples:
        raise UserError("no walkthrough steps to train on (no training games, or env.max_steps=0)")
    model = load_causal_lm(model_path, dtype=str(cfg.model.dtype))
    say(f"fitting {len(samples)} replies x {epochs} epochs")
    on_start(epochs * len(samples))
    nll = fit_replies(
        model,
        samples,
        pad_id=tokenizer.pad_token_id,
        epochs=epochs,
        lr=lr,
        micro_batch_size=int(cfg.trainer.micro_batch_size),
        grad_clip=float(cfg.trainer.grad_clip),
        seed=int(cfg.trainer.seed),
        on_step=on_step,
        prompt_weight=float(cfg.model.get("sft_prompt_loss", 0.0)),
        length_window=int(cfg.model.get("sft_length_window", 0)),
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = SFTReport(
        source_model=str(cfg.model.path),
        out_dir=str(out),
        games=len(tasks),
        samples=len(samples),
        epochs=epochs,
        lr=lr,
        nll_per_epoch=nll,
        seconds=time.perf_counter() - started,
    )
    (out / "sft.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report
