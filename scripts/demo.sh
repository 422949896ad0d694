#!/usr/bin/env bash
# The demo: the showcase example mounted at /admin of a FastAPI host, with the
# reflex-buildd daemon beside it. Open http://127.0.0.1:8000/admin/
#
# The daemon builds the example into the cache and rebuilds on every edit of
# examples/showcase; the host waits at startup until the artifact for the
# current sources exists. After an edit, restart the host (Ctrl-C, run again)
# to serve the new build: no manual build step.
set -euo pipefail
cd "$(dirname "$0")/.."
REFLEX_BUILDD_SKIP_BROWSER=1 ./scripts/setup.sh
export REFLEX_BUILDD_CACHE_DIR=${REFLEX_BUILDD_CACHE_DIR:-$PWD/.cache/reflex-buildd}
export REFLEX_UPLOADED_FILES_DIR=${REFLEX_UPLOADED_FILES_DIR:-$PWD/.cache/uploads}
export REFLEX_STATES_WORKDIR=${REFLEX_STATES_WORKDIR:-$PWD/.cache/states}
# Hosts wait for the daemon rather than build themselves.
export REFLEX_BUILDD_POLICY=${REFLEX_BUILDD_POLICY:-wait}
PORT=${PORT:-8000}

.venv/bin/reflex-buildd watch examples/showcase &
DAEMON=$!
trap 'kill -TERM "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null || true' EXIT

echo "demo: serving the showcase at http://127.0.0.1:$PORT/admin/ (host route: /health)"
.venv/bin/uvicorn examples.hosts.fastapi_host:app --host 127.0.0.1 --port "$PORT"
