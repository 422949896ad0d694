"""Pure parts of "mounted means unchanged": routing asked of the backend's own
router, the backend mode setting, the vite alias patch and the empty icon."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from reflex_buildd.plugin import patch_vite_config
from reflex_buildd_client import InvalidConfigError
from reflex_buildd_client.backend.routes import BackendRoutes
from reflex_buildd_client.serve.rewrite import has_icon_link, no_icon_link
from reflex_buildd_client.settings import Settings


async def _ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _reflex_like() -> Starlette:
    """The shape rx.App()() returns with an api_transformer FastAPI app."""
    reflex_api = Starlette(
        routes=[
            Route("/ping", _ok),
            Route("/_upload", _ok, methods=["POST"]),
            Mount("/_event", app=PlainTextResponse("socket.io")),
        ]
    )
    router = APIRouter(prefix="/products")
    router.add_api_route("", lambda: {}, methods=["GET"])
    router.add_api_route("/{pid}", lambda pid: {}, methods=["DELETE"])
    transformer = FastAPI()
    transformer.include_router(router)
    transformer.mount("/sub", Starlette(routes=[Route("/x", _ok)]))
    transformer.mount("", reflex_api)
    top = Starlette()
    top.mount("", transformer)
    top.mount("", PlainTextResponse("opaque"))  # a bare ASGI app claims nothing
    return top


@pytest.mark.parametrize(
    ("path", "method", "owned"),
    [
        ("/ping", "GET", True),
        ("/ping", "HEAD", True),
        ("/_upload", "POST", True),
        # GET of a POST-only route: the static site (the SPA) answers.
        ("/_upload", "GET", False),
        ("/_event/socket.io", "GET", True),
        ("/_event/", "GET", True),
        # Routes of an included router (one route object without a path).
        ("/products", "GET", True),
        ("/products/7", "DELETE", True),
        ("/products/7", "GET", False),
        ("/products", "POST", True),  # the path matches: the backend answers 405
        ("/sub/x", "GET", True),
        ("/docs", "GET", True),
        ("/openapi.json", "GET", True),
        ("", "GET", False),
        ("/about", "GET", False),
        ("/assets/app.js", "GET", False),
        ("/productsx", "GET", False),
    ],
)
def test_backend_routes_ask_the_router(path: str, method: str, owned: bool) -> None:
    routes = BackendRoutes(_reflex_like())
    assert routes.owns(path, method) is owned
    assert routes.owns(path, method) is owned  # memoized: the same answer


def test_backend_mode_setting() -> None:
    assert Settings.load(environ={}).backend == "inprocess"
    assert Settings.load(environ={}, backend="process").backend == "process"
    env = {"REFLEX_BUILDD_BACKEND": "process"}
    assert Settings.load(environ=env).backend == "process"
    assert Settings.load(environ=env, backend="in-process").backend == "inprocess"
    assert Settings.load(environ={}).override(backend="process").backend == "process"
    with pytest.raises(InvalidConfigError, match="REFLEX_BUILDD_BACKEND"):
        Settings.load(environ={"REFLEX_BUILDD_BACKEND": "thread"})


# The parts of Reflex 0.10.1's vite.config.js that the patch touches.
VITE = """export default defineConfig((config) => ({
  plugins: [
    alwaysUseReactDomServerNode(),
    reactRouter(),
  ],
  resolve: {
    alias: [
      {
        find: "$",
      },
    ],
  },
}));"""


def test_vite_alias_patch_is_idempotent() -> None:
    once = patch_vite_config(VITE)
    assert once != VITE and patch_vite_config(once) == once
    assert once.index("__RXBUILDD_PREFIX__") < once.index('find: "$"')
    # The run-time URL wrapper's plugin, defined once and used once.
    assert once.count("function reflexBuilddJsx()") == 1
    assert once.count("reflexBuilddJsx(),") == 1


def test_empty_icon_is_an_icon_link() -> None:
    assert has_icon_link(no_icon_link())
    assert b"data:," in no_icon_link()


def test_path_dispatcher_sets_the_mode_of_mounts_that_chose_none(tmp_path: Path) -> None:
    from reflex_buildd_client import PathDispatcher, ReflexMount

    chose_none = ReflexMount(tmp_path, cache_dir=tmp_path / "cache")
    chose = ReflexMount(tmp_path, cache_dir=tmp_path / "cache", backend="inprocess")
    PathDispatcher(_reflex_like(), {"/a": chose_none, "/b": chose}, backend="process")
    assert chose_none.settings.backend == "process"
    assert chose.settings.backend == "inprocess"
