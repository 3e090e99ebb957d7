# Everything a fresh machine needs: `make console` and `make test` create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PIP := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: install console index bot test test-slow lint eval fit bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: here it resolves to the CPU build on disk; unpinned it pulls CUDA packages.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev,multilingual]'
	touch $@

install: $(INSTALLED)

## Open the console; builds the index first when it is missing or stale.
console: $(INSTALLED)
	$(PY) -m bot console

## Rebuild the index incrementally (FULL=1 for a rebuild from scratch).
index: $(INSTALLED)
	$(PY) -m bot build $(if $(FULL),--full)

## Run the Telegram bot (needs TELEGRAM_BOT_TOKEN in .env).
bot: $(INSTALLED)
	$(PY) -m bot telegram

lint: $(INSTALLED)
	$(VENV)/bin/ruff check bot tests bench
	$(VENV)/bin/ruff format --check bot tests bench
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q -m "not slow"

## The slow tests only: SIGKILL during index builds, 2,000 questions through the bot (several minutes).
test-slow: $(INSTALLED)
	$(VENV)/bin/pytest -q -m slow

eval: $(INSTALLED)
	$(PY) -m bot eval tests/data/dev_qa.jsonl

fit: $(INSTALLED)
	$(PY) -m bot fit --plot docs/curve-checking.png

## Benchmarks (a few minutes each); the 1M-passage search run: `$(PY) bench/search_scale.py --sizes 1000000`.
bench: $(INSTALLED)
	$(PY) bench/latency.py
	$(PY) bench/search_scale.py
	$(PY) bench/startup.py

clean:
	rm -rf $(VENV) index/v-* index/CURRENT index/.build-*
