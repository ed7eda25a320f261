# The two commands of the README: `make train` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test lint package-check bench-cores clean

# torch comes through constraints.txt (a CPU wheel pinned for the reference machine);
# pyproject.toml keeps a loose range for users elsewhere.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) train_agent.py --config default $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# the wheel in a fresh venv, used from outside the checkout (also run by .ci/run)
package-check:
	PYTHON=$(PYTHON) .ci/package_check

lint: $(STAMP)
	$(PY) -m ruff check .

bench-cores: $(STAMP)
	$(PY) benchmarks/cores.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
