# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   -> .venv, install, run the demo
#   make test   -> .venv, install, full test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,tui,langgraph,pydantic-ai,postgres,openai-agents,server,stats,mcp,adk,web,smolagents

.PHONY: demo test test-main test-crewai test-schemathesis bench soak lint fmt clean install pg-server chromium valgrind

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# PostgreSQL for the postgresql:// store's tests and benchmark, from Debian's packages when it is
# missing. Nothing is started here: the tests and the benchmark run their own throwaway cluster.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
pg-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "PostgreSQL is not installed: installing it with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Chromium for the web tests (tests/web, Playwright), from Debian's packages when it is missing:
# Playwright is told to use /usr/bin/chromium and never downloads a browser of its own.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Chromium is not installed: installing it with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Valgrind for benchmarks/bench_instructions.py (instructions per transition: the figure a shared
# machine cannot skew), from Debian's packages when it is missing. Only `make bench` needs it.
valgrind:
	@command -v valgrind >/dev/null 2>&1 || { \
	  echo "Valgrind is not installed: installing it with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }

demo: $(STAMP)
	$(BIN)/hitl demo

test: $(STAMP) pg-server chromium
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory -j3 --output-sync=target test-main test-crewai test-schemathesis

# Everything but CrewAI's tests, in the main environment. Four workers on two cores: much of the
# suite waits on real processes, servers and timers rather than computing; the slowest tests are
# listed at the end so the 10-minute budget stays visible.
test-main: $(STAMP) pg-server chromium
	$(BIN)/python -m pytest -n 4 -q --durations=15 --ignore=tests/plugins/crewai

# CrewAI pins openai<3 and pydantic<2.13, which the OpenAI Agents SDK in .venv cannot share: its
# tests run in their own environment, built here (after .venv, so the two editable installs of
# this tree never run at once) while the main tests run. hitl_core's model tests run there too: they
# show the core's models round-trip on the older pydantic that CrewAI allows. The server extra: the
# CrewAI example also runs against a live hitl serve (tests/plugins/crewai/test_proof_crewai_server.py).
CREWAI_VENV := .venv-crewai
CREWAI_STAMP := $(CREWAI_VENV)/.installed
$(CREWAI_STAMP): pyproject.toml | $(STAMP)
	$(PYTHON) -m venv $(CREWAI_VENV)
	$(CREWAI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CREWAI_VENV)/bin/python -m pip install --quiet -e ".[dev,crewai,server]"
	touch $(CREWAI_STAMP)

test-crewai: $(CREWAI_STAMP)
	$(CREWAI_VENV)/bin/python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/core/test_models.py tests/plugins/crewai

# schemathesis against a live `hitl serve` (TLS, an admin token), from the OpenAPI document the
# server serves: no 5xx, every status, content type and body as the document declares. schemathesis
# requires pytest 9, which the main environment cannot share: it gets its own environment (it needs
# nothing of this tree; the server runs from .venv). --max-examples keeps the run near a minute.
ST_VENV := .venv-schemathesis
ST_STAMP := $(ST_VENV)/.installed
$(ST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(ST_VENV)
	$(ST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ST_VENV)/bin/python -m pip install --quiet "schemathesis>=4.32,<5"
	touch $(ST_STAMP)

test-schemathesis: $(STAMP) $(ST_STAMP)
	$(BIN)/python tests/server/schemathesis_live.py $(ST_VENV)/bin/schemathesis

bench: $(STAMP) pg-server chromium valgrind
	$(BIN)/python benchmarks/bench_issue14.py
	$(BIN)/python benchmarks/bench_instructions.py
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_console.py
	$(BIN)/python benchmarks/bench_sqlite.py
	$(BIN)/python benchmarks/bench_policies.py
	$(BIN)/python benchmarks/bench_postgres.py
	$(BIN)/python benchmarks/bench_langgraph.py
	$(BIN)/python benchmarks/bench_adapters.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_reach.py
	$(BIN)/python benchmarks/bench_web.py

# Soak and fault injection (benchmarks/soak.py): agents, deciders and followers for MINUTES on SQLite
# and then on PostgreSQL while processes are killed, the server crashes and stalls, the disk fills.
# Prints a one-screen report per store and fails on any lost, duplicated or late decision.
MINUTES ?= 2
soak: $(STAMP) pg-server
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(CREWAI_VENV) $(ST_VENV) .pytest_cache .ruff_cache
