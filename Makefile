# Run `make help` for the targets. Everything runs inside .venv (created by `make install`).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FMNIST := /usr/share/datasets/fashion-mnist

.DEFAULT_GOAL := help
.PHONY: help install data demo demo-epochs demo-paper train-demo pretrained test test-fast lint format bench bench-full clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# pip resumes a broken download (--resume-retries) and the whole install is tried up to 3 times:
# torch's CUDA build pulls several GB, and one dropped connection should not fail a fresh machine.
PIP_INSTALL := $(VENV)/bin/pip install --retries 10 --resume-retries 20

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --retries 10 --upgrade 'pip>=25.1'  # 25.1: --resume-retries
	for try in 1 2 3; do \
	  $(PIP_INSTALL) -r requirements.txt -c constraints.txt && break; \
	  [ $$try = 3 ] && exit 1; echo "pip install failed (try $$try of 3); retrying in 30 s"; sleep 30; \
	done
	touch $@

install: $(VENV)/.installed data ## create .venv with the pinned requirements and get Fashion-MNIST

data: ## Fashion-MNIST from Debian's dataset-fashion-mnist (the CPU demo's data)
	@[ -f $(FMNIST)/train-images-idx3-ubyte.gz ] || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist)

# The preset the search-efficiency study v2 supports (benchmarks/README.md, section 1):
# Optuna's TPE on random hypervolume scalarisations over val/error and the analytic energy
# per image, behind a 1-epoch screen that validates on a tenth of the validation images
# (the top quarter by hypervolume contribution train the full 3 epochs here, schedule
# stepped per optimizer step); 30 trials, the reference point at the float network's
# 39.3 uJ per image.
demo: install ## the main job: the study's recommended sweep (optuna_tpe_hv_screen) on Fashion-MNIST
	PYTHONHASHSEED=0 $(PY) train.py -m hydra/sweeper=optuna_tpe_hv_screen experiment=demo \
	  schedule_interval=step hydra.sweeper.budget.max=3 'hydra.sweeper.budget.stages=[1,3]' \
	  search_space@hydra.sweeper.search_space=demo_epochs data.fraction=0.04 \
	  '++hydra.sweeper.reference_point={val/error:1.0,energy/model_uj_per_image:39.3}' \
	  hydra.sweeper.n_trials=30 \
	  hydra.sweep.dir=multirun/demo-tpe-hv-screen

demo-epochs: install ## Hyperband on the epochs (smac_mfmo_epochs), continued checkpoints
	PYTHONHASHSEED=0 $(PY) train.py -m hydra/sweeper=smac_mfmo_epochs experiment=demo \
	  search_space@hydra.sweeper.search_space=demo_epochs data.fraction=0.04 \
	  '++hydra.sweeper.reference_point={val/error:1.0,energy/model_uj_per_image:39.3}' \
	  hydra.sweeper.n_trials=44 hydra.sweep.dir=multirun/demo-mfmo-epochs

demo-paper: install ## the paper's sweep (smac_mfmo: Hyperband on the shift depth) on Fashion-MNIST
	PYTHONHASHSEED=0 $(PY) train.py -m hydra/sweeper=smac_mfmo experiment=demo \
	  search_space@hydra.sweeper.search_space=demo hydra.sweeper.n_trials=10 \
	  hydra.sweep.dir=multirun/demo-mfmo

train-demo: install ## one DSNN training run on Fashion-MNIST (about a minute on a CPU)
	$(PY) train.py experiment=demo

pretrained: install ## a float ResNet20 (shift_depth=0) on Fashion-MNIST, for pretrained=...
	$(PY) train.py experiment=demo shift_depth=0 trainer.max_epochs=5 \
	  hydra.run.dir=checkpoints/float_resnet20w8_fmnist
	@echo "use: pretrained=checkpoints/float_resnet20w8_fmnist/model.pt"

# pytest-xdist: one worker per core, at most 4 (each imports torch); plain `pytest` runs one
PYTEST = $(PY) -m pytest -q -n auto --maxprocesses=4

test: install ## all tests, the slow end-to-end runs included (what CI runs)
	$(PYTEST)

test-fast: install ## the fast tests only
	$(PYTEST) -m "not slow"

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install ## ruff fix and format
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

QUICK := benchmarks/results/quick
bench: install ## reduced benchmarks, ~4.5 min: layer cost, search efficiency (1 seed), sweeper overhead
	$(PY) -m benchmarks.layer_cost --repeats 3 --threads 2 --out $(QUICK)/layer_cost_cpu.json
	rm -rf multirun/bench-quick  # finished sweeps are kept for resuming: start afresh
	$(PY) -m benchmarks.search_efficiency --seeds 0 --walltime 45 --methods random tpe_hv \
	  --runs-dir multirun/bench-quick --out-dir $(QUICK)
	$(PY) -m benchmarks.sweeper_overhead --trials 10 --out $(QUICK)/sweeper_overhead.json

bench-full: install ## the committed CPU results (~105 min on 2 cores): see benchmarks/README.md
	$(PY) -m benchmarks.layer_cost --repeats 8 --threads 2
	$(PY) -m benchmarks.search_efficiency --seeds 0 1 2 3 4
	$(PY) -m benchmarks.search_efficiency --seeds 5 6 7 8 9 --methods random tpe_hv --tag seeds5-9
	$(PY) -m benchmarks.search_efficiency --seeds 0 1 2 3 4 5 6 7 8 9 --methods random tpe_hv \
	  --tag pooled10 --analyze-only
	$(PY) -m benchmarks.sweeper_overhead

clean: ## remove run outputs (keeps .venv)
	rm -rf outputs multirun lightning_logs wandb .pytest_cache
