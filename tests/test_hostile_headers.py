"""Any header value, any client: a static answer, in bounded CPU (issue 11).

Hypothesis throws arbitrary values of every header the static side parses
(``Range``, ``If-Range``, ``If-None-Match``, ``Accept-Encoding``,
``X-Forwarded-Prefix/Proto/Host/For``, and ``root_path``) at what
``ReflexMount.__call__`` runs for a static request (path check, prefix rule,
prepared site, decision), in process and without a Reflex backend. Each
answer must be one of {200, 206, 304, 400, 404, 416}, and its CPU time (this
thread's, so other load on the machine does not count) at most a fixed
multiple of a normal request's, measured in the same run. The values of the
issue are examples that always run. Over real HTTP: ``test_static_http.py``.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import SHOWCASE, Built
from reflex_buildd_client.mount import ReflexMount
from reflex_buildd_client.serve import headers as header_parsers
from reflex_buildd_client.serve import prefix as prefix_rule
from reflex_buildd_client.serve.prefix import is_safe_path, relative_path

ALLOWED = {200, 206, 304, 400, 404, 416}
PROXY = "10.0.0.1"
# A hostile request may cost this many normal ones at most. A normal request
# is ~10-30 µs here, so this is ~1 ms: the issue's budget. The quadratic
# Range regex this replaces cost ~0.6 s at the sizes drawn below.
RATIO = 50
MAX_VALUE = 16_000  # about what uvicorn's h11 accepts for a whole request head

NAMES = [
    "range",
    "if-range",
    "if-none-match",
    "accept-encoding",
    "x-forwarded-prefix",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-for",
]
# Pieces of valid syntax, repeated: what makes a backtracking or quadratic
# parser slow, and what plain random bytes rarely produce.
PIECES = [
    b" ",
    b"\t",
    b"0",
    b"9",
    b"-",
    b",",
    b";",
    b"=",
    b"/",
    b'"',
    b"W/",
    b"bytes=",
    b"q=0.",
    b"gzip",
    b"*",
    b"1.2.3.4",
    b"[::1]",
    b":",
    b"a",
    b"\xff",
    b"%2e",
]


@st.composite
def values(draw: Any) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return bytes(draw(st.binary(max_size=80)))
    # One piece (kind 1) or a few (kind 2) repeated, between a valid start and
    # an end that makes the whole invalid: the shape of "bytes=0-" + 15,500
    # spaces + "x", which made the old Range regex backtrack quadratically.
    pieces = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=1 if kind == 1 else 4))
    most = MAX_VALUE // max(1, sum(map(len, pieces)))
    # Long values are where cost shows; hypothesis on its own favours small numbers.
    times = draw(st.one_of(st.just(most), st.integers(most // 4, most), st.integers(1, 100)))
    head = draw(st.sampled_from([b"", b"bytes=", b"bytes=0-", b"bytes=-", b"/", b'"', b"gzip;q="]))
    tail = draw(st.sampled_from([b"", b"x", b"-", b",", b'"']))
    return (head + b"".join(pieces) * times)[: MAX_VALUE - 1] + tail


@pytest.fixture(scope="module")
def mount(showcase_build: Built, cache_dir: Path) -> Iterator[ReflexMount]:
    found = ReflexMount(SHOWCASE, cache_dir=cache_dir, trusted_proxies=PROXY)
    found.open_artifact()
    yield found


@pytest.fixture(scope="module")
def paths(mount: ReflexMount) -> list[str]:
    site = mount.site("/admin")
    scripts = sorted(url for url in site.resources if url.startswith("/assets/"))
    return ["/", "/about", "/no/such/page", scripts[0], scripts[-1]]


def _status(mount: ReflexMount, scope: dict[str, Any]) -> int:
    # ReflexMount.__call__'s static branch: path check, then the decision.
    path = relative_path(scope)
    if not is_safe_path(path):
        return 400
    return mount.respond(scope, path).status


def _forget() -> None:
    # Parsed values are memoized; each timed run must parse its value afresh.
    header_parsers._preferences.cache_clear()
    prefix_rule._checked_root.cache_clear()
    prefix_rule._plain_location.cache_clear()


def _cpu(mount: ReflexMount, scope: dict[str, Any]) -> tuple[int, float]:
    """Status, and the least CPU time of three runs (after a first that prepares what it may).

    The first run may prepare a site for a new (valid, trusted) prefix or
    compress a variant: once per (prefix, file, coding), then kept, so not
    a per-request cost.
    """
    status = _status(mount, scope)
    best = float("inf")
    gc.disable()
    try:
        for _ in range(3):
            _forget()
            started = time.thread_time()
            again = _status(mount, scope)
            best = min(best, time.thread_time() - started)
            assert again == status
    finally:
        gc.enable()
    return status, best


def _scope(
    path: str, headers: dict[str, bytes], client: str, root: str = "/admin"
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "root_path": root,
        "path": root + path,
        "client": (client, 40000),
        "headers": [(name.encode(), value) for name, value in headers.items()],
    }


@pytest.fixture(scope="module")
def normal_cpu(mount: ReflexMount, paths: list[str]) -> float:
    """CPU of a browser's request (with its usual headers), the median over the paths."""
    browser = {"accept-encoding": b"gzip, deflate, br, zstd", "if-none-match": b'"abc"'}
    samples = []
    for _ in range(20):
        for path in paths:
            for client in (PROXY, "8.8.8.8"):
                samples.append(_cpu(mount, _scope(path, browser, client))[1])
    return statistics.median(samples)


ISSUE = [
    {"range": b"bytes=-" + b"9" * 4400},
    {"range": b"bytes=0-" + b" " * 15500 + b"x"},
]


@settings(max_examples=250, deadline=None)
@given(
    chosen=st.dictionaries(st.sampled_from(NAMES), values(), min_size=1, max_size=3),
    path_index=st.integers(0, 4),
    trusted=st.booleans(),
    root=st.one_of(st.just("/admin"), values().map(lambda v: v.decode("latin-1"))),
)
@example(chosen=ISSUE[0], path_index=3, trusted=False, root="/admin")
@example(chosen=ISSUE[1], path_index=3, trusted=False, root="/admin")
@example(chosen=ISSUE[1], path_index=0, trusted=True, root="/admin")
@example(chosen={"if-none-match": b"," * 15000}, path_index=3, trusted=True, root="/admin")
@example(chosen={"x-forwarded-host": b"a" * 15000}, path_index=0, trusted=True, root="/admin")
@example(chosen={"x-forwarded-for": b"1.2.3.4," * 1800}, path_index=0, trusted=True, root="/admin")
def test_any_header_value(
    mount: ReflexMount,
    paths: list[str],
    normal_cpu: float,
    chosen: dict[str, bytes],
    path_index: int,
    trusted: bool,
    root: str,
) -> None:
    scope = _scope(paths[path_index], chosen, PROXY if trusted else "8.8.8.8", root)
    status, cpu = _cpu(mount, scope)
    assert status in ALLOWED
    assert cpu <= RATIO * normal_cpu, (cpu, normal_cpu, {k: v[:40] for k, v in chosen.items()})


@settings(max_examples=60, deadline=None)
@given(value=values())
def test_server_rewritten_client_any_forwarded_for(
    mount: ReflexMount, paths: list[str], normal_cpu: float, value: bytes
) -> None:
    """A client address the server took from X-Forwarded-For (port 0), with any header."""
    scope = _scope("/", {"x-forwarded-for": value, "x-forwarded-prefix": b"/ext"}, "1.2.3.4")
    scope["client"] = ("1.2.3.4", 0)
    status, cpu = _cpu(mount, scope)
    assert status in ALLOWED
    assert cpu <= RATIO * normal_cpu, (cpu, normal_cpu, value[:40])
