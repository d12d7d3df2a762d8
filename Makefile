PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock train test test-fast lint typecheck format clean gpu-wheels

# Re-install only when the project's dependencies change. constraints.txt pins every package to
# the version CI last ran with (pyproject.toml keeps open ranges for library users).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Refresh constraints.txt from the installed venv (after changing pyproject.toml and testing).
lock:
	$(BIN)/python -m pip install -e ".[dev]"
	{ echo "# Exact versions CI ran with; refresh with make lock."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^#'; } > constraints.txt

train: $(STAMP)
	$(BIN)/python train.py experiment=effnet_hd

# pytest-xdist: two test processes halve the suite on the 2-core CI machine (12 -> 8.5 min).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on src/ (settings in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Wheels for scripts/gpu_check.sh on a lent GPU machine (no network there); into .whl/.
gpu-wheels: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/gpu_wheels.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
