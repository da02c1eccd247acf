# Two commands for a new user: `make lab` (the main job) and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab serve test test-slow test-torch-range bench notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the dependencies change. pyproject.toml allows a range of torch versions;
# constraints.txt picks the one installed here (and keeps pip to the CPU wheel it names).
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

lab: $(STAMP)
	$(BIN)/trainlab lab

serve: $(STAMP)
	$(BIN)/trainlab serve

# The browser test drives Debian's chromium (Playwright cannot download its own browsers here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromium:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium

# tests/test_kernel.py builds the C kernel with gcc and with clang (macOS's cc): both must be here.
/usr/bin/clang:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq clang

test: $(STAMP) /usr/bin/chromium /usr/bin/clang
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) /usr/bin/chromium /usr/bin/clang
	$(PIP_INSTALL) -e '.[dev,ray,mlflow,tensorboard,optuna]'
	$(BIN)/python -m pytest -q -m slow

# The ends of pyproject.toml's torch range that pip finds here, each in a venv of its own with the
# default tests. PyPI's torch builds carry CUDA (several GB each); they run on the CPU all the same.
TORCH_ENDS := 2.4.1 2.14.1
test-torch-range: /usr/bin/chromium /usr/bin/clang
	set -e; for v in $(TORCH_ENDS); do \
		[ -x .venv-torch-$$v/bin/python ] || $(PYTHON) -m venv .venv-torch-$$v; \
		.venv-torch-$$v/bin/pip install --quiet --disable-pip-version-check -e '.[dev]' "torch==$$v"; \
		.venv-torch-$$v/bin/python -m pytest -q -p no:cacheprovider; \
	done

bench: $(STAMP)
	$(BIN)/trainlab bench

# Rebuild notebooks/*.ipynb and notebooks/solutions/*.ipynb from notebooks/src/*.py.
notebooks: $(STAMP)
	$(BIN)/python notebooks/build.py

clean:
	rm -rf $(VENV) .venv-torch-* build *.egg-info .pytest_cache
