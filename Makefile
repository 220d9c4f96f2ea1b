# Two commands matter: `make demo` and `make test`. Both create .venv themselves, so a fresh
# machine needs only Python 3.11+ and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp names both pyproject files, so a change to either reinstalls (an existing venv from
# before the sandbox moved out gets it too).
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sandbox/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv demo test lint format bench accuracy lexicon clean

# The product, then the sandbox servers and test doubles (sandbox/: test code, not the product).
$(STAMP): pyproject.toml sandbox/pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ./sandbox
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/triage demo

test: venv lint
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests bench sandbox
	$(BIN)/ruff format --check src tests bench sandbox
	$(BIN)/mypy --strict src/triage/domain

format: venv
	$(BIN)/ruff format src tests bench sandbox
	$(BIN)/ruff check --fix src tests bench sandbox

bench: venv
	$(BIN)/python -m bench

# Exact and unsafe rates on the visible, tuned and frozen scenario sets (tests/corpus/README.md),
# per language and rule class; the tables are kept in ACCURACY.md.
accuracy: venv
	$(BIN)/python -m tests.corpus.accuracy --report ACCURACY.md

# Rebuild the lemma tables (src/triage/data/lexicon/*/lemmas.json) after editing a lexicon.
lexicon: venv
	$(BIN)/python scripts/lexicon_lemmas.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
