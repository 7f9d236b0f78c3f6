# The two commands of the README. Both set up first (idempotent, see scripts/setup.sh);
# the tests start with ruff (lint and import order, pyproject.toml).
.PHONY: run test setup

setup:
	scripts/setup.sh

run: setup
	.venv/bin/voicebot serve

test: setup
	.venv/bin/ruff check .
	.venv/bin/pytest -q
