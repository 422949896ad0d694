#!/usr/bin/env bash
# The demo: the showcase example, built into the cache by reflex-buildd and
# mounted at /admin of a FastAPI host. Open http://127.0.0.1:8000/admin/
set -euo pipefail
cd "$(dirname "$0")/.."
REFLEX_BUILDD_SKIP_BROWSER=1 ./scripts/setup.sh
export REFLEX_BUILDD_CACHE_DIR=${REFLEX_BUILDD_CACHE_DIR:-$PWD/.cache/reflex-buildd}
export REFLEX_UPLOADED_FILES_DIR=${REFLEX_UPLOADED_FILES_DIR:-$PWD/.cache/uploads}
export REFLEX_STATES_WORKDIR=${REFLEX_STATES_WORKDIR:-$PWD/.cache/states}
PORT=${PORT:-8000}
.venv/bin/reflex-buildd build examples/showcase
echo "demo: serving the showcase at http://127.0.0.1:$PORT/admin/ (host route: /health)"
exec .venv/bin/uvicorn examples.hosts.fastapi_host:app --host 127.0.0.1 --port "$PORT"
