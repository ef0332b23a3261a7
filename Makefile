# QE Fleet. `make run` starts the demo; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SIMULATE ?= 1
SIM_RATE ?= 2
# The simulated world's seed: the same world on every start. A new one would
# make the last run's learned state wrong, and the safeguard would roll it back.
SIM_SEED ?= 1
# Agents that start held to a poor hand-written strategy the improvement loop should replace.
PLAYBOOK ?= test-executor,security-scanner

.PHONY: run test test-clients agent-demo bench ope-bench fuzz faults load install chromium axe clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q '.[test]'
	touch $@

install: $(VENV)/.installed

# Development server, task cluster and a simulated fleet at SIM_RATE tasks per
# second (SIMULATE=0 leaves it out) on the embedded defaults (SQLite file, ORM
# broker). Ctrl-C stops them all. The server and the simulator ignore Ctrl-C's
# SIGINT (background jobs of a script), so the trap stops them; qcluster takes
# Ctrl-C's SIGINT itself and gets SIGTERM only if it is still up 10 s later: a
# second signal during its shutdown can deadlock it (django-q2 issue 346).
run: export DEBUG ?= 1
run: export ACCESS_LOG ?= var/log/access.log
run: install
	$(BIN)/python manage.py vendor_plotly
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	@mkdir -p $(dir $(ACCESS_LOG))
	@echo "Serving on http://$(HOST):$(PORT)/ops/  (admin: /admin/, API docs: /api/v1/docs); log in with a login above."
	@echo "Request lines go to $(ACCESS_LOG) (tail -f it); this terminal shows the simulator's summaries."
	@stop() { kill $$web $$sim 2>/dev/null; \
	          for i in $$(seq $$1); do kill -0 $$cluster 2>/dev/null || break; sleep 0.5; done; \
	          kill $$cluster 2>/dev/null; wait; }; \
	trap 'stop 20' INT; trap 'stop 0' TERM EXIT; \
	$(BIN)/python manage.py qcluster & cluster=$$!; \
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT) & web=$$!; \
	if [ "$(SIMULATE)" = 1 ]; then \
		$(BIN)/python manage.py simulate_fleet --url http://$(HOST):$(PORT) --rate $(SIM_RATE) --seed $(SIM_SEED) --tasks 1000000 --playbook "$(PLAYBOOK)" & sim=$$!; \
	fi; \
	wait

# CLIENT_TESTS=0 leaves out the agent clients' tests (they start their own
# SQLite server, so a run on another database repeats them unchanged).
CLIENT_TESTS ?= 1
test: export SECRET_KEY ?= test-only-secret-key
test: install chromium axe
	$(BIN)/python manage.py vendor_plotly
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check
	$(BIN)/pytest
	if [ "$(CLIENT_TESTS)" = 1 ]; then $(MAKE) --no-print-directory test-clients; fi

# The agent clients, each tested from an environment of its own without
# Django, against a live server that its tests start from $(VENV).
CLIENT_VENV := .venv-client
$(CLIENT_VENV)/.installed: $(shell find clients/python -name '*.py' -o -name pyproject.toml | grep -v egg-info)
	test -x $(CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install -q --upgrade pip
	$(CLIENT_VENV)/bin/pip install -q --force-reinstall --no-deps ./clients/python
	$(CLIENT_VENV)/bin/pip install -q './clients/python[test]'
	touch $@

test-clients: export SECRET_KEY ?= test-only-secret-key
test-clients: install $(CLIENT_VENV)/.installed
	cd clients/python && QEFLEET_SERVER_PYTHON=$(CURDIR)/$(BIN)/python $(CURDIR)/$(CLIENT_VENV)/bin/pytest -p no:cacheprovider
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error \
		&& QEFLEET_SERVER_PYTHON=$(CURDIR)/$(BIN)/python npm test

# pytest-qefleet on the test suites of three pinned PyPI projects against a
# local QE Fleet; prints the strategy learned per suite, the wall times and
# how to open the dashboard on the demo's database (kept in DEMO_DIR).
agent-demo: export SECRET_KEY ?= demo-only-secret-key
agent-demo: install $(CLIENT_VENV)/.installed
	QEFLEET_SERVER_PYTHON=$(CURDIR)/$(BIN)/python $(CLIENT_VENV)/bin/python clients/python/demo/agent_demo.py

# Figures for the targets: prints tables, writes bench-results/bench.json, dashboard.json and drills.json.
bench: export SECRET_KEY ?= bench-only-secret-key
bench: install
	$(BIN)/python manage.py vendor_plotly
	$(BIN)/python manage.py bench
	$(BIN)/python manage.py bench_dashboard
	$(BIN)/python manage.py drills_bench

# Schemathesis over every API operation with FUZZ_EXAMPLES examples per operation and mode
# (the suite runs 20); prints the status codes each operation answered.
# Offline evaluation checked against truth: coverage and error over 50 seeds of
# the simulated world, and the Open Bandit Dataset (obp's source archive, fetched
# into var/cache on first use); prints tables, writes bench-results/ope.json.
ope-bench: export SECRET_KEY ?= bench-only-secret-key
ope-bench: install
	$(BIN)/python manage.py ope_bench

fuzz: export SECRET_KEY ?= fuzz-only-secret-key
fuzz: export FUZZ_EXAMPLES ?= 300
fuzz: install
	FUZZ_SUMMARY=1 $(BIN)/pytest -p no:cacheprovider tests/test_api_fuzz.py

# Fault injection against real gunicorn and qcluster processes on var/faults/;
# prints a table, writes bench-results/faults.json. Not part of `make test`.
faults: export SECRET_KEY ?= faults-only-secret-key
faults: install
	$(BIN)/python manage.py faults

# Load test: gunicorn on 127.0.0.1, 17 agents for 60 s, alone and beside the
# improvement cycle and a TTL sweep; writes bench-results/load.json. With
# LOAD_POSTGRES=1 (or LOAD_DATABASE_URL=postgres://...) PostgreSQL too.
LOAD_POSTGRES ?= 0
LOAD_DATABASE_URL ?= $(if $(filter 1,$(LOAD_POSTGRES)),postgres://postgres@127.0.0.1:5432/qefleet_load)
load: export SECRET_KEY ?= load-only-secret-key
load: install
	$(BIN)/python manage.py load_fleet
	@if [ -n "$(LOAD_DATABASE_URL)" ]; then \
		$(BIN)/python manage.py load_fleet --database-url "$(LOAD_DATABASE_URL)"; \
	fi

# The browser tests drive Debian's chromium; Playwright never downloads a browser.
chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# axe-core (the accessibility checker the browser tests run inside each page),
# from the npm registry into var/node/; installed once, never committed.
AXE_VERSION ?= 4.10.3
axe: var/node/node_modules/axe-core/axe.min.js
var/node/node_modules/axe-core/axe.min.js:
	npm install --silent --no-save --no-package-lock --prefix var/node axe-core@$(AXE_VERSION)

clean:
	rm -rf $(VENV) $(CLIENT_VENV) var staticfiles static/vendor .pytest_cache
