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
	$(PIP) install -e '.[dev,multilingual,postgres]'
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

## The slow tests only: SIGKILL during index builds, 2,000 questions through the bot, real-model CLI runs (minutes).
test-slow: $(INSTALLED)
	$(VENV)/bin/pytest -q -m slow

eval: $(INSTALLED)
	$(PY) -m bot eval tests/data/dev_qa.jsonl

fit: $(INSTALLED)
	$(PY) -m bot fit --plot docs/curve-checking.png

## Every bench/*.py that sets `IN_MAKE_BENCH = True`, with its quick defaults: tables and plots into bench/results/.
## Timed whole: 5 min 57 s on the 2-core VM with another worker running (load average 1.6-4.9; the budget is
## 10 minutes; about 27 minutes before the defaults were trimmed). A new benchmark joins by setting that line;
## larger sizes are its own options (bench/README.md). Each script's time and the total are printed at the end of
## its run, so a run that outgrows the budget shows.
BENCH_SCRIPTS = $(shell grep -l '^IN_MAKE_BENCH = True' bench/*.py)

bench: $(INSTALLED)
	@set -e; start=$$(date +%s); for script in $(BENCH_SCRIPTS); do \
		echo "== $$script"; before=$$(date +%s); MULTILINGUAL=off $(PY) $$script; \
		echo "== $$script: $$(( $$(date +%s) - before )) s"; done; \
	echo "== make bench: $$(( $$(date +%s) - start )) s in all (budget 600 s); load average: $$(cut -d' ' -f1-3 /proc/loadavg)"

clean:
	rm -rf $(VENV) index/v-* index/CURRENT index/.build-* index/postgres
