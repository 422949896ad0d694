#!/usr/bin/env bash
# The demo: the showcase example mounted at /admin of a FastAPI host, with hot
# reload. Open http://127.0.0.1:8000/admin/ and edit
# examples/showcase/showcase/showcase.py: the open page shows the change by
# itself (Vite's HMR for pages, a backend reload for event handlers), and the
# host keeps running. Ctrl-C stops everything.
#
# It runs `reflex-buildd dev` (docs/howto-dev.md): Reflex's own dev loop behind
# the host's mount. Production serves prebuilt artifacts instead (the same host
# under plain uvicorn; see docs/tutorial.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REFLEX_BUILDD_SKIP_BROWSER=1 ./scripts/setup.sh
export REFLEX_BUILDD_CACHE_DIR=${REFLEX_BUILDD_CACHE_DIR:-$PWD/.cache/reflex-buildd}
export REFLEX_UPLOADED_FILES_DIR=${REFLEX_UPLOADED_FILES_DIR:-$PWD/.cache/uploads}
export REFLEX_STATES_WORKDIR=${REFLEX_STATES_WORKDIR:-$PWD/.cache/states}
PORT=${PORT:-8000}

exec .venv/bin/reflex-buildd dev examples/showcase \
    --app examples.hosts.fastapi_host:app --path /admin --host 127.0.0.1 --port "$PORT"
