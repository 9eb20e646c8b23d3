# Bootstrap from a fresh clone with nothing but python3:
#   make test   -> creates .venv, installs naq[dev], runs the test suite
#   make demo   -> creates .venv, installs naq[dev], runs `naq demo`
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test demo lint bench

venv: $(STAMP)

# The stamp depends on pyproject.toml so a dependency change triggers a reinstall.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: venv
	$(BIN)/naq demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy naq

bench: venv
	$(BIN)/python bench/run_all.py
