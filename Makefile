# custseg: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO ?= demo-output

.PHONY: install demo test lint docs docs-serve bench bench-clv clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@# Debian's Chromium drives the report's browser tests (Playwright's own download
	@# does not work everywhere), a Java 17 runtime runs the Spark engine's tests and
	@# PostgreSQL's server the database tests; they are skipped with a note where
	@# apt-get is not usable.
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || \
		missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "note: install Debian's $$missing for the browser and Spark tests (they skip without)"; fi; \
	fi
	@# pip says only what fails (-qq): its warnings here are about the machine's own pip
	@# settings (an index folder that is missing), not custseg, and they buried the output.
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e ".[dev,spark,app,postgres,docs]"
	@# An editable install is not compiled; where PYTHONDONTWRITEBYTECODE is set every run
	@# would compile custseg's modules from source (about 0.3 s a start).
	$(PY) -m compileall -q src/custseg
	touch $(STAMP)

demo: install
	$(VENV)/bin/custseg synth --customers 5000 --seed 42 --out $(DEMO)/data
	$(VENV)/bin/custseg run $(DEMO)/data/transactions.parquet \
		--customers $(DEMO)/data/customers.parquet --out $(DEMO)/segments
	@echo "Outputs: $(DEMO)/segments/report.html (open it in a browser), segments.csv, summary.json, excluded_customers.csv, figures/"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks fuzz docs
	$(VENV)/bin/lint-imports --no-cache

# The site in site/: the generated reference pages must match the code, the report's
# picture is made from the demo, and the build is strict (a broken link, a missing page or
# a tutorial command that fails is an error; not --quiet, which hides the warnings strict
# mode counts, so the build would pass).
docs: install
	$(PY) docs/reference.py --check
	$(PY) docs/screenshot.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The site served on http://127.0.0.1:8000, rebuilt as the pages change.
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

# Two workers (this project's machines have two cores); a file's tests stay on one worker,
# so its module fixtures (a Spark session, an Online Retail run) are built once; the files
# go out in conftest's order, the slowest first.
test: install lint docs
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

bench: install
	$(PY) benchmarks/bench_rfm.py --lines 10000000
	$(PY) benchmarks/bench_cluster.py --customers 1000000

# The value models against lifetimes and pymc-marketing, which live in their own venv.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed-stamp: benchmarks/requirements-clv.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-clv.txt
	touch $@

bench-clv: install $(BENCH_VENV)/.installed-stamp
	$(PY) benchmarks/bench_clv.py --customers 1000000,5000000 --other-python $(BENCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(DEMO) site .pytest_cache .ruff_cache .hypothesis test-artifacts
