# Two commands do all set-up: `make train` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: train test test-slow test-cuda bench-quick benchmark clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(PY) tools/train.py experiments/unet_kl.py

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-cuda: $(STAMP)
	$(PY) -m pytest -q -m cuda

bench-quick: $(STAMP)
	$(PY) tools/benchmark.py --quick

benchmark: $(STAMP)
	$(PY) tools/benchmark.py

clean:
	rm -rf $(VENV) *.egg-info
