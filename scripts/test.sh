#!/usr/bin/env bash
# Set up, type-check (mypy, strict), lint (ruff) and run the whole test suite, model and
# system tests included (what CI runs).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not models and not system"`
# for the quick suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
.venv/bin/mypy
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
