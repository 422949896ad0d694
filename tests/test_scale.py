"""Several machines (issue 21, item 3): two hosts behind a round-robin balancer.

The deployment of docs/howto-scale.md, on one machine: a builder (the
session's build, "CI") pushes the showcase to the remote (moto's S3 server);
two hosts (one under uvicorn, one under granian), each with its own empty
local cache and startup policy ``fail`` (they cannot build: whatever they
serve came from the remote), share one Redis for Reflex's state;
``tests/balancer.py`` sends each new connection to the next host in turn. In
Chromium, a user clicks, the balancer drops every connection (a rolling
restart, seen from the browser), the page reconnects to the *other* host, and
the counter goes on from where it was. Then the first host stops for good and
the session carries on on the second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from balancer import Balancer, run_balancer
from conftest import SHOWCASE, Built, Host, run_cli, spawn_host, stop_process, wait_for, wait_ready
from redisserver import RedisServer, redis_server
from reflex_buildd_client.cache.status import read_journal
from reflex_buildd_client.cache.store import Cache

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

EVENT_SOCKET = "/admin/_event/"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(log=tmp_path_factory.mktemp("redis") / "redis.log") as server:
        yield server


@pytest.fixture
def pushed(s3: Any, showcase_build: Built, cache_dir: Path) -> str:
    """The builder ("CI"): ``reflex-buildd build --remote`` pushes the showcase."""
    url = s3.url(f"scale-{time.monotonic_ns()}")
    result = run_cli(
        "build", str(SHOWCASE), "--json", "--remote", url, cache_dir=cache_dir, **s3.env()
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["key"] == showcase_build.key
    return url


def _host(
    name: str, server: str, tmp: Path, s3: Any, remote: str, redis: RedisServer, backend: str
) -> Host:
    """One machine's host: its own cache and directories; the fleet's remote and Redis."""
    own = tmp / name
    own.mkdir()
    return spawn_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=own / "cache",
        log_dir=own,
        server=server,
        **s3.env(),
        REFLEX_BUILDD_REMOTE=remote,
        REFLEX_BUILDD_POLICY="fail",
        REFLEX_BUILDD_BACKEND=backend,
        REFLEX_REDIS_URL=redis.url,
        REFLEX_UPLOADED_FILES_DIR=str(own / "uploads"),
        REFLEX_STATES_WORKDIR=str(own / "states"),
    )


def _event_hosts(balancer: Balancer) -> list[int]:
    """Which host (0 or 1) each event websocket went to, in order."""
    return [
        c["upstream"]
        for c in balancer.connections()
        if "upstream" in c and EVENT_SOCKET in c["first"] and "websocket" in c["first"]
    ]


def _move(balancer: Balancer, page: Any, away_from: int) -> int:
    """Drop every connection until the page's event websocket lands on another host."""
    for _ in range(6):
        before = len(_event_hosts(balancer))
        balancer.drop_all()
        wait_for(
            lambda n=before: len(_event_hosts(balancer)) > n,
            timeout=30,
            what="the page to reconnect its event websocket",
        )
        if (now := _event_hosts(balancer)[-1]) != away_from:
            return now
    raise AssertionError(f"the websocket never left host {away_from}: {balancer.connections()}")


@pytest.mark.parametrize("backend", ["inprocess", "process"])
def test_a_session_moves_between_hosts_and_keeps_its_state(
    backend: str,
    s3: Any,
    pushed: str,
    redis: RedisServer,
    browser: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    redis.flush()
    # One machine runs uvicorn, the other granian: a fleet need not agree on its server.
    hosts = [
        _host(f"host{i}", server, tmp_path, s3, pushed, redis, backend)
        for i, server in enumerate(("uvicorn", "granian"))
    ]
    try:
        for host in hosts:
            # Reflex's /ping answers once that host's backend runs (in process
            # mode a child that starts beside the host, slow on a busy machine).
            wait_ready(host, "/admin/ping", timeout=120)
        urls = [h.url for h in hosts]
        with run_balancer(urls, tmp_path / "balancer.jsonl") as balancer:
            context = browser.new_context()
            try:
                page = context.new_page()
                page.set_default_timeout(20_000)
                page.goto(balancer.url + "/admin/")
                increment, count = page.locator("#increment"), page.locator("#count")
                expect(page.locator("#lifespan")).to_have_text("lifespan running")
                increment.click()
                expect(count).to_have_text("1")
                first = wait_for(lambda: _event_hosts(balancer), timeout=10, what="a websocket")[-1]

                second = _move(balancer, page, away_from=first)
                increment.click()
                # The state came along, through Redis. Generous: the event waits for the
                # token's Redis lock, which the first host's backend may still hold when its
                # connection was cut (Reflex's lock expires after 10 s), on a busy machine.
                expect(count).to_have_text("2", timeout=60_000)
                increment.click()
                expect(count).to_have_text("3")

                # The first host goes away for good: the balancer skips it.
                stop_process(hosts[first].process)
                balancer.drop_all()
                increment.click()
                expect(count).to_have_text("4")
                assert set(_event_hosts(balancer)[-1:]) == {second}
            finally:
                context.close()
        # Both hosts served events of this one session ...
        assert {0, 1} <= set(_event_hosts(balancer)), balancer.connections()
    finally:
        for host in hosts:
            stop_process(host.process)
    for host in hosts:
        assert "Traceback" not in host.output(), host.output()
        # ... and neither built anything: each pulled the artifact from the remote.
        events = [e["event"] for e in read_journal(Cache(host.log.parent / "cache"))]
        assert "pulled" in events and "start" not in events, events
