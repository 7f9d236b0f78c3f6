# The two commands of the README. Both set up first (idempotent, see scripts/setup.sh).
.PHONY: run test setup

setup:
	scripts/setup.sh

run: setup
	.venv/bin/voicebot serve

test: setup
	.venv/bin/pytest -q
