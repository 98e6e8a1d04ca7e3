# Two entry points for a fresh machine: `make repro` (the whole pipeline) and `make test`.
# Both create .venv on first use; torch 2.13.0 (CPU wheel) goes in before everything else so
# no later resolve pulls a CUDA build. A stamp file makes the second run skip installation.
# PYTHON: the interpreter for .venv; scripts/find-python.sh takes it if it is 3.10-3.12, else the
# first supported python3 / python3.12 / python3.11 / python3.10 on PATH, else stops with one line.
PYTHON ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test install clean-data lint lock

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { py=$$(PYTHON="$(PYTHON)" $(SHELL) scripts/find-python.sh) && echo "$$py -m venv $(VENV)" && $$py -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

# ruff (style, import order) and mypy (types) over the code; .ci/run runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks stages
	$(BIN)/mypy

# constraints.txt pins every package of the tested environment, so that a clone installs what its
# commit was tested with. Refresh it on purpose: `make lock` re-resolves the newest allowed
# versions in a throwaway venv (torch stays 2.13.0), writes constraints.txt; then run `make test`.
lock:
	rm -rf .venv-lock
	$$(PYTHON="$(PYTHON)" $(SHELL) scripts/find-python.sh) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet torch==2.13.0
	.venv-lock/bin/pip install --quiet -e ".[dev]"
	{ echo "# pip constraints: the versions this commit was tested with (make lock refreshes them)"; \
	  .venv-lock/bin/pip freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > constraints.txt
	rm -rf .venv-lock

clean-data:
	rm -rf data models mlflow.db mlartifacts

# Multi-seed studies (five seeds each; hours each on 2 CPU cores; resumable: runs are cached per seed). The first one
# also renders and extracts the studies' 700 extra test sentences (study_corpus, ~15 min, once).
.PHONY: modality-study kd-ablation tune-study frame-stride-study
modality-study: $(STAMP)
	$(BIN)/dvc repro studies/dvc.yaml:modality_study

# The keypoint student trained for MediaPipe on every 1st / 2nd / 3rd frame (recognize's speed).
frame-stride-study: $(STAMP)
	$(BIN)/dvc repro studies/dvc.yaml:frame_stride

kd-ablation: $(STAMP)
	$(BIN)/dvc repro studies/dvc.yaml:kd_ablation

# Phoenix-2014 at real scale: params/phoenix2014.yaml applied over params.yaml as a DVC experiment
# (validated first; see src/signkd/profiles.py). Extra `dvc exp run` options go in EXP_ARGS,
# e.g. make phoenix EXP_ARGS="-n phoenix2014" or EXP_ARGS="--queue".
.PHONY: phoenix
phoenix: $(STAMP)
	$(BIN)/python -m signkd.profiles params/phoenix2014.yaml $(EXP_ARGS)

# Does a KD search beat params.yaml's numbers? 24 Optuna trials (TPE + successive halving up to
# kd.epochs) on the study corpus, then tuned vs params' numbers over five seeds (after kd-ablation,
# whose teachers and HKD runs it shares): reports/tune/study/.
tune-study: $(STAMP)
	$(BIN)/dvc repro studies/dvc.yaml:tune_study

# Dress rehearsal of `make phoenix` on a small archive in the real Phoenix-2014 layout, served on
# 127.0.0.1 (~10 min on 2 cores; also run by the test suite, marker `scale`); and host memory of
# Phoenix-profile training at N and 4N utterances. Both write reports/<name>/metrics.json.
.PHONY: phoenix-rehearsal memory-benchmark
phoenix-rehearsal: $(STAMP)
	$(BIN)/python benchmarks/phoenix_rehearsal.py

memory-benchmark: $(STAMP)
	$(BIN)/python benchmarks/memory_scale.py
