# Two commands for a new user: `make lab` (the main job) and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab serve test test-slow bench notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

lab: $(STAMP)
	$(BIN)/trainlab lab

serve: $(STAMP)
	$(BIN)/trainlab serve

# The browser test drives Debian's chromium (Playwright cannot download its own browsers here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromium:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium

test: $(STAMP) /usr/bin/chromium
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) /usr/bin/chromium
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/trainlab bench

# Rebuild notebooks/*.ipynb and notebooks/solutions/*.ipynb from notebooks/src/*.py.
notebooks: $(STAMP)
	$(BIN)/python notebooks/build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
