"""Multi-turn stepwise rollouts: N environments per task, one LLM call per step, a K-step memory.

Orchestration only: the environments (a Ray EnvPool), the engine (any `generate` callable) and the agent
helpers (prompt, projection) come in from outside; the output is a list of StepRecords and one summary
per trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hgpo_cli.agent.memory import MemoryBank
from hgpo_cli.agent.projection import DEFAULT_TAIL_CHARS, TAIL_CHARS, is_admissible, project_action
from hgpo_cli.agent.prompts import REPLY_PREFIX, build_prompt
from hgpo_cli.agent.records import StepRecord
from hgpo_cli.engines.base import Generation, SamplingSettings
from hgpo_cli.envs.base import StepResult, TaskSpec

GenerateFn = Callable[[list[list[int]], SamplingSettings], list[Generation]]


@dataclass
class Episode:
    """Summary of one trajectory."""

    group_id: str
    traj_id: str
    task_id: str
    task_type: str
    won: bool = False
    length: int = 0
    invalid_steps: int = 0
    inadmissible_steps: int = 0  # steps whose sent action is not a listed command, under either validity rule
    total_reward: float = 0.0
    worker_failed: bool = False


@dataclass
class RolloutResult:
    records: list[StepRecord] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    prompt_tokens: int = 0
    response_tokens: int = 0
    truncated_prompts: int = 0


def encode_prompt(tokenizer: Any, text: str, max_tokens: int, reply_prefix: str = "") -> tuple[list[int], bool]:
    """Chat-template token ids of a user message and the opening `reply_prefix` of the assistant's turn,
    truncated from the left to `max_tokens`."""
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    ids = list(ids)
    if reply_prefix:
        ids += list(tokenizer.encode(reply_prefix, add_special_tokens=False))
    if len(ids) > max_tokens:
        return ids[-max_tokens:], True
    return ids, False


def step_prompt(
    template: Any,
    state: StepResult,
    *,
    step_index: int,
    history: list[tuple[str, str]],
    answer_format: str,
    tokenizer: Any,
    max_prompt_tokens: int,
) -> tuple[str, list[int], bool]:
    """The prompt of one step from the environment's state and the memory window: (text, token ids with
    the answer format's reply prefix, truncated). Rollouts and `hgpo sft` both build prompts here."""
    text = build_prompt(
        template,
        instruction=state.instruction,
        step_index=step_index,
        history=history,
        observation=state.observation,
        admissible_actions=state.admissible_actions,
        answer_format=answer_format,
    )
    ids, truncated = encode_prompt(tokenizer, text, max_prompt_tokens, REPLY_PREFIX[answer_format])
    return text, ids, truncated


def prompt_template(cfg: Any, builtin: Any) -> Any:
    """The prompt template of a run: the file `agent.prompt_template` when set, else the suite's `builtin`."""
    path = cfg.agent.get("prompt_template")
    if not path:
        return builtin
    from hgpo_cli.agent.prompt_file import load_prompt_file

    return load_prompt_file(str(path))


def rollout_options(cfg: Any, template: Any) -> dict[str, Any]:
    """The keywords of `play_episodes` that come from the config (shared by training and evaluation).

    template: the suite's built-in prompt, replaced by the `agent.prompt_template` file when one is set."""
    return {
        "template": prompt_template(cfg, template),
        "max_steps": int(cfg.env.max_steps),
        "history_length": int(cfg.agent.history_length),
        "max_prompt_tokens": int(cfg.rollout.max_prompt_tokens),
        "answer_format": str(cfg.agent.answer_format),
        "validity": str(cfg.agent.get("validity", "format")),
        "tail_chars": TAIL_CHARS.get(str(cfg.env.name), DEFAULT_TAIL_CHARS),
    }


def play_episodes(
    tasks: list[TaskSpec],
    group_ids: list[str],
    *,
    group_size: int,
    pool: Any,
    generate: GenerateFn,
    tokenizer: Any,
    template: Any,
    max_steps: int,
    history_length: int,
    max_prompt_tokens: int,
    sampling: SamplingSettings,
    on_step: Callable[[int, int], None] | None = None,
    answer_format: str = "think",
    validity: str = "format",
    tail_chars: int = DEFAULT_TAIL_CHARS,
) -> RolloutResult:
    """Roll out `group_size` copies of every task until all are done or `max_steps` turns have passed.

    answer_format: "think" or "action" (see `hgpo_cli.agent.prompts`); with "action" the reply prefix is
    part of the prompt ids, and the recorded response text is prefix + generated text.
    validity, tail_chars: the projection's rule (`hgpo_cli.agent.projection.project_action`). The action
    it returns is what the environment receives, what the record and the memory of the next prompts hold.
    """
    reply_prefix = REPLY_PREFIX[answer_format]
    env_tasks = [task for task in tasks for _ in range(group_size)]
    env_groups = [gid for gid in group_ids for _ in range(group_size)]
    episodes = [
        Episode(group_id=g, traj_id=f"{g}/{i % group_size}", task_id=t.task_id, task_type=t.task_type)
        for i, (g, t) in enumerate(zip(env_groups, env_tasks, strict=True))
    ]
    current: dict[int, StepResult] = dict(enumerate(pool.reset(env_tasks)))
    memory = MemoryBank(len(env_tasks), history_length)
    result = RolloutResult(episodes=episodes)
    for i, start in current.items():
        if start.info.get("worker_failed"):
            episodes[i].worker_failed = True
    active = [i for i, r in current.items() if not r.done]
    records_of: dict[int, list[StepRecord]] = {i: [] for i in current}
    for step in range(max_steps):
        if not active:
            break
        prompts, texts = [], []
        for i in active:
            text, ids, truncated = step_prompt(
                template,
                current[i],
                step_index=step,
                history=memory.window(i),
                answer_format=answer_format,
                tokenizer=tokenizer,
                max_prompt_tokens=max_prompt_tokens,
            )
            result.truncated_prompts += int(truncated)
            prompts.append(ids)
            texts.append(text)
        step_sampling = SamplingSettings(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens,
            seed=sampling.seed * 10_007 + step,
        )
        generations = generate(prompts, step_sampling)
        actions: dict[int, str] = {}
        valid_of: dict[int, bool] = {}
        for i, gen in zip(active, generations, strict=True):
            action, valid = project_action(
                reply_prefix + gen.text,
                current[i].admissible_actions,
                answer_format,
                validity,
                tail_chars=tail_chars,
            )
            actions[i], valid_of[i] = action, valid
        outcomes = pool.step(actions)
        still_active = []
        for i, ids, text, gen in zip(active, prompts, texts, generations, strict=True):
            before, after = current[i], outcomes[i]
            failed = bool(after.info.get("worker_failed"))
            last = after.done or step == max_steps - 1
            record = StepRecord(
                group_id=env_groups[i],
                traj_id=episodes[i].traj_id,
                step_index=step,
                prompt=text,
                response=reply_prefix + gen.text,
                action=actions[i],
                reward=float(after.reward),
                done=last,
                valid=valid_of[i],
                anchor=before.observation,
                task_type=env_tasks[i].task_type,
                extra={
                    "prompt_ids": ids,
                    "response_ids": gen.token_ids,
                    "rollout_log_probs": gen.log_probs,
                    "worker_failed": failed,
                },
            )
            records_of[i].append(record)
            episode = episodes[i]
            episode.length += 1
            episode.invalid_steps += int(not valid_of[i])
            episode.inadmissible_steps += int(not is_admissible(actions[i], before.admissible_actions))
            episode.total_reward += float(after.reward)
            episode.won = episode.won or bool(after.won)
            episode.worker_failed = episode.worker_failed or failed
            result.prompt_tokens += len(ids)
            result.response_tokens += len(gen.token_ids)
            memory.add(i, before.observation, actions[i])
            current[i] = after
            if not last:
                still_active.append(i)
        active = still_active
        if on_step is not None:
            on_step(step + 1, len(active))
    for i, episode in enumerate(episodes):
        if episode.worker_failed:
            episode.won = False
        for record in records_of[i]:
            record.won = episode.won
            result.records.append(record)
    return result
