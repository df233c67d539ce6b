# Two commands a user needs: `make demo` and `make test`. Both set up the virtualenv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
PG_STAMP := $(VENV)/.installed-postgres
CHROMIUM_STAMP := $(VENV)/.installed-chromium
ORCH_STAMP := $(VENV)/.installed-orchestrators

.PHONY: demo test lint unit integration bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "shoplake needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dashboard,test]'
	@touch $(STAMP)

# The Spark engine's tests need PySpark, delta-spark and Java 17+; Delta's jars come from Maven Central
# through Spark's own resolver (spark.jars.packages) when the first session starts. The orchestrator tests
# (marker orchestrators) need the dagster and airflow extras; Airflow shares this venv (its pins allow
# SQLAlchemy 2 and pydantic 2).
$(SPARK_STAMP): $(STAMP)
	@java -version >/dev/null 2>&1 || { echo "the Spark tests need Java 17+ (java not found)"; exit 1; }
	$(BIN)/pip install --quiet -e '.[spark,postgres,dashboard,dagster,airflow,test]'
	@touch $(SPARK_STAMP)

# The PostgreSQL tests (publish, the state store on PostgreSQL) start their own server from the
# installed binaries (tests/pg.py: initdb + pg_ctl under a temporary folder); apt installs them when missing.
$(PG_STAMP):
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		apt-get install -y postgresql || { apt-get update && apt-get install -y postgresql; }
	@mkdir -p $(VENV) && touch $(PG_STAMP)

# The dashboard's browser test drives Debian's chromium through Playwright (pip), never a browser of
# Playwright's own (no `playwright install`); apt installs chromium when missing.
$(CHROMIUM_STAMP):
	@command -v chromium >/dev/null 2>&1 || \
		apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
	@mkdir -p $(VENV) && touch $(CHROMIUM_STAMP)

demo: $(STAMP)
	$(BIN)/shoplake demo

test: $(SPARK_STAMP) $(PG_STAMP) $(CHROMIUM_STAMP) lint
	@# Two pytest processes side by side on the 2 cores: the Spark tests (one Spark session) and all the
	@# others (one PostgreSQL server), each with its own temporary folder; the Spark log follows the other.
	@tmp=$$(mktemp -d); \
	$(BIN)/pytest -m spark -p no:cacheprovider --basetemp=$$tmp/spark > $$tmp/spark.log 2>&1 & spark=$$!; \
	$(BIN)/pytest -m "not spark" --basetemp=$$tmp/other; other=$$?; \
	wait $$spark; sparked=$$?; echo "== the Spark tests"; cat $$tmp/spark.log; rm -rf $$tmp; \
	echo "make test: Spark tests exit $$sparked, other tests exit $$other"; \
	test $$other -eq 0 && test $$sparked -eq 0

# mypy checks shoplake.integrations against the real Dagster and Airflow: lint installs their extras.
$(ORCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dagster,airflow]'
	@touch $(ORCH_STAMP)

lint: $(ORCH_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not spark and not postgres and not orchestrators"

integration: $(SPARK_STAMP) $(PG_STAMP)
	$(BIN)/pytest -m integration

# Benchmarks are not part of the test suite; see benchmarks/README.md.
bench: $(SPARK_STAMP)
	$(BIN)/python benchmarks/run.py --scale 0.1 --scale 1 --engine duckdb --engine spark

clean:
	rm -rf $(VENV) demo benchmarks/work .pytest_cache .mypy_cache .ruff_cache
