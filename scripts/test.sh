#!/usr/bin/env bash
# Install what is needed, then run the whole test suite (browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
