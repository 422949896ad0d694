"""What the backend-routing decision costs per request, against a static response.

The mount asks, for every HTTP request below the prefix, whether the backend
takes it (:class:`reflex_buildd_client.backend.routes.BackendRoutes`: the
backend's router asked once per (method, path), then memoized). Measured
in-process with ``timeit`` on a backend shaped like ``rx.App()()`` with an
``api_transformer`` FastAPI app (an included router, a sub-app, Reflex's own
routes), against the baseline of the same run: the earlier rule, a scan of a
list of top-level paths, and a ``StaticSite`` lookup (``resolve``) of the showcase.
``benchmarks/bench_serve.py`` measures whole static requests through uvicorn.

Run: ``.venv/bin/python benchmarks/bench_routes.py`` (a few seconds).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from reflex_buildd_client.backend.routes import BackendRoutes  # noqa: E402
from test_backend_routes import _reflex_like  # noqa: E402

PATHS = ("/assets/root-abc12345.js", "/about", "", "/products", "/ping", "/_event/x")
OLD_PATHS = frozenset({"/_event", "/ping", "/_health", "/_upload", "/products"})


def old_owns(path: str) -> bool:
    """The earlier rule: a scan of top-level route paths."""
    for base in OLD_PATHS:
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return True
    return False


def per_call_ns(fn: object, number: int) -> float:
    timer = timeit.Timer(lambda: [fn(p) for p in PATHS])  # type: ignore[operator]
    return min(timer.repeat(5, number)) / number / len(PATHS) * 1e9


def main() -> None:
    routes = BackendRoutes(_reflex_like())
    memo_hit = per_call_ns(lambda p: routes.owns(p, "GET"), 20_000)

    def miss(p: str) -> bool:
        routes._memo.clear()
        return routes.owns(p, "GET")

    router_miss = per_call_ns(miss, 2_000)
    old = per_call_ns(old_owns, 20_000)
    print(f"{'decision per request':40} {'ns':>10}")
    print(f"{'path list scan (before)':40} {old:10.0f}")
    print(f"{'router asked, memo hit (now)':40} {memo_hit:10.0f}")
    print(f"{'router asked, first time for a path':40} {router_miss:10.0f}")
    print()
    print(f"memo hit / path list scan = {memo_hit / old:5.2f}x")


if __name__ == "__main__":
    main()
