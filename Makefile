# Bootstrap from a fresh clone with nothing but python3:
#   make test        -> creates .venv, installs naq[dev], runs the test suite
#   make demo        -> creates .venv, installs naq[dev], runs `naq demo`
#   make lint        -> ruff check, ruff format --check, mypy naq
#   make test-plain  -> the publish/pull tests with NAQ_PLAIN_CLIENT=1 (nats-py's public API only)
#   make test-py310  -> the suite less its slow tests on Python 3.10, in .venv-py310
#   make test-py313  -> its version-sensitive core on Python 3.13, in .venv-py313
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := -m pytest -q -p no:cacheprovider

# The other Pythons run the suite less, for CI's time, what a second interpreter adds least to:
# the slow tests, the fuzzing, the TUI's app (its pixel snapshots, screens, keys and panes,
# against the fake service and a live server; its state and charts still run there), the
# scheduler's timing tests, the CLI's subprocess tests (operations, table widths, scheduling
# commands, not-found lines), the process pool and the dashboard (processes driving
# processes), the queue limits across worker processes and the feed's sampling (rushes of
# jobs, timed). Besides, mypy checks naq against Python 3.10's standard library.
VERSION_SUBSET := -m "not slow" --ignore=tests/test_fuzz.py \
	--ignore=tests/tui/test_snapshots.py --ignore=tests/tui/test_app_fake.py \
	--ignore=tests/tui/test_keys.py --ignore=tests/tui/test_overview_metrics.py \
	--ignore=tests/tui/test_app_live.py --ignore=tests/test_cli_operations.py \
	--ignore=tests/test_scheduling.py --ignore=tests/test_cli_width.py \
	--ignore=tests/test_pool.py --ignore=tests/test_dashboard.py \
	--ignore=tests/test_feed_sampling.py --ignore=tests/test_limits.py \
	--ignore=tests/test_cli_scheduling.py --ignore=tests/test_not_found.py
# Python 3.13 runs the part of that where the interpreter's version shows most: the worker's
# asyncio and threads (timeouts, cancellation, context variables, signals), enqueueing,
# settling, serializers and pickle, tracebacks, the status enums' str and format, the sync
# twins, hooks, settings and logging, tracing, and the TUI's state and charts.
PY313_SUBSET := -m "not slow" tests/test_worker.py tests/test_execution.py \
	tests/test_enqueue.py tests/test_settling.py tests/test_seed_names.py \
	tests/test_job_tracebacks.py tests/test_serializers.py tests/test_serialization.py \
	tests/test_pickle_functions.py tests/test_sync_helpers.py tests/test_worker_hooks.py \
	tests/test_lifecycle.py tests/test_layering.py tests/test_log_level.py \
	tests/test_settings.py tests/test_tracing.py tests/test_worker_processes.py \
	tests/tui/test_state.py tests/tui/test_charts.py
# What publishes, pulls and subscribes, run again through nats-py's public API only.
PLAIN_SUBSET := tests/test_fast_paths.py tests/test_frames.py tests/test_direct.py \
	tests/test_enqueue.py tests/test_worker.py tests/test_running_status.py \
	tests/test_settling.py tests/test_operations.py tests/test_untrusted_payloads.py

.PHONY: venv test demo lint bench test-plain test-py310 test-py313

venv: $(STAMP)

# The stamp depends on pyproject.toml so a dependency change triggers a reinstall.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: venv
	$(BIN)/python $(PYTEST)

demo: venv
	$(BIN)/naq demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy naq

bench: venv
	$(BIN)/python bench/run_all.py

test-plain: venv
	NAQ_PLAIN_CLIENT=1 $(BIN)/python $(PYTEST) -m "not slow" $(PLAIN_SUBSET)

# .venv-py310 from Python 3.10, .venv-py313 from 3.13 (scripts/find_python.sh finds them, or
# says in one line which one is missing and how to get it).
.venv-py%/.installed: pyproject.toml
	@test -x .venv-py$*/bin/python || { \
		python=$$(scripts/find_python.sh 3.$(patsubst 3%,%,$*)) && $$python -m venv .venv-py$*; }
	.venv-py$*/bin/python -m pip install --quiet --no-compile -e '.[dev]'
	@touch $@

test-py310: .venv-py310/.installed
	.venv-py310/bin/python $(PYTEST) $(VERSION_SUBSET)

test-py313: .venv-py313/.installed
	.venv-py313/bin/python $(PYTEST) $(PY313_SUBSET)
