"""The Reflex plugin injected into every build (``REFLEX_EXTRA_PLUGINS``).

It patches the frontend so that where the backend lives is decided at run time,
not baked in: ``getBackendURL`` (``.web/utils/state.js``) reads the
``<meta name="reflex-buildd">`` tag the host injects into each page, and the
socket.io client keeps the backend's namespace (the path of its own event URL,
``/_event``) while its HTTP path follows the mount prefix (``/admin/_event``).
Without that split the namespace would become ``/admin/_event`` and the
backend would answer ``CONNECT_ERROR``.

Where no tag exists (prerendering in Node, or a page served by plain Reflex),
the original function runs unchanged.

It also teaches vite (``.web/vite.config.js``) where shared assets are:
Reflex 0.10.1 puts ``frontend_path`` into the import of a local JSX component
shipped with ``rx.asset(..., shared=True)``
(``"$/public/__RXBUILDD_PREFIX__/external/<module>/hello.jsx"``), while the
file lies in ``public/external/...``; an alias, placed before Reflex's own
``$`` alias, drops the sentinel from such imports.

After the vite build (``post_build``, before Reflex relocates and compresses
the output) it gives the prefix sentinel to root-absolute references to the
app's own ``assets/`` files (``rx.image(src="/logo.png")``); see
:mod:`reflex_buildd.assets` for the rule and why it lives there.

URLs that exist only at run time (state values, downloads, scripts) follow
the prefix in the frontend: the plugin writes the list of the app's files and
routes into ``.web`` and routes the compiled code's ``jsx`` and Reflex's
browser-side events through it; see :mod:`reflex_buildd.runtime_urls`.

Any change to this file changes every key (it is hashed as a build recipe).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reflex_base.config import get_config
from reflex_base.constants import Dirs
from reflex_base.plugins.base import Plugin

from reflex_buildd_client.errors import ReflexBuilddError
from reflex_buildd_client.serve.rewrite import SENTINEL

from .assets import REWRITE_SUFFIXES, asset_paths, rewrite_asset_refs
from .runtime_urls import JSX_MODULE, JSX_MODULE_PATH, URLS_MODULE_PATH, urls_module

__all__ = [
    "BuilddPlugin",
    "PatchError",
    "patch_state_js",
    "patch_vite_config",
    "rewrite_static_dir",
]

STATE_JS = "utils/state.js"
VITE_CONFIG = "vite.config.js"
_VITE_MARKER = "/* reflex-buildd: shared assets without the prefix */"
_VITE_ALIASES = "alias: ["
_VITE_ALIAS = (
    "\n      "
    + _VITE_MARKER
    + """
      {
        find: /^\\$\\/public\\/+"""
    + SENTINEL.strip("/")
    + """\\//,
        replacement: fileURLToPath(new URL("./public/", import.meta.url)),
      },"""
)
_VITE_JSX_MARKER = "/* reflex-buildd: run-time URLs under the prefix */"
_VITE_PLUGINS = "  plugins: [\n    alwaysUseReactDomServerNode(),"
_VITE_CONFIG_START = "export default defineConfig("
# Resolves the app's own imports of @emotion/react (the jsx of every compiled
# element) to the wrapper that fixes URL props; libraries, and the wrapper
# itself, keep the real module.
_VITE_JSX_PLUGIN = (
    _VITE_JSX_MARKER
    + """
function reflexBuilddJsx() {
  const wrapper = fileURLToPath(new URL("./"""
    + JSX_MODULE_PATH
    + """", import.meta.url));
  return {
    name: "reflex-buildd-jsx",
    enforce: "pre",
    resolveId(source, importer) {
      if (source !== "@emotion/react" || typeof importer !== "string") return null;
      const file = importer.split("?")[0];
      if (file === wrapper || file.includes("/node_modules/")) return null;
      return wrapper;
    },
  };
}

"""
)
_MARKER = "/* reflex-buildd: runtime backend discovery */"

_ORIGINAL_DEF = "export const getBackendURL = (url_str) => {"
_RENAMED_DEF = "const __rxbOriginalBackendURL = (url_str) => {"
_SOCKET_CALL = "io(endpoint.href, {"
_PATCHED_SOCKET_CALL = "io(__rxbNamespaceURL(endpoint), {"
# Reflex bundles all of .web/reflex.json into the state chunk, and that file
# holds the time of the last run: every build then renames the chunk and
# everything importing it, and no two builds share those bytes. Only the
# version is read, so import only it (vite tree-shakes JSON named imports).
_ENV_IMPORT = 'import reflexEnvironment from "$/reflex.json";'
_PATCHED_ENV_IMPORT = (
    'import { version as __rxbReflexVersion } from "$/reflex.json";\n'
    "const reflexEnvironment = { version: __rxbReflexVersion };"
)
# Reflex's browser-side events that take a URL (or code naming one): each goes
# through the run-time rule of reflex_buildd.runtime_urls.
_URL_IMPORT = 'import env from "$/env.json";'
_PATCHED_URL_IMPORT = (
    _URL_IMPORT + "\nimport { ownUrl as __rxbOwnUrl, ownScript as __rxbOwnScript } from "
    '"$/' + URLS_MODULE_PATH.removesuffix(".js") + '";'
)
_URL_EVENTS = (
    ("a.href = event.payload.url;", "a.href = __rxbOwnUrl(event.payload.url);"),
    (
        "window.open(\n        event.payload.path,",
        "window.open(\n        __rxbOwnUrl(event.payload.path),",
    ),
    (
        "eval(event.payload.javascript_code)",
        "eval(__rxbOwnScript(event.payload.javascript_code))",
    ),
    ("eval(event.payload.function)()", "eval(__rxbOwnScript(event.payload.function))()"),
)

_RUNTIME_JS = (
    _MARKER
    + r"""
const __rxbMeta = () => {
  if (typeof document === "undefined") return null;
  const tag = document.querySelector('meta[name="reflex-buildd"]');
  if (!tag) return null;
  return {
    prefix: tag.getAttribute("data-prefix") || "",
    backend: tag.getAttribute("data-backend") || "",
  };
};

// The backend's socket.io namespace is the path of its configured event URL.
const __rxbEventNamespace = () => new URL(env.EVENT).pathname;

const __rxbNamespaceURL = (endpoint) =>
  __rxbMeta() === null
    ? endpoint.href
    : new URL(__rxbEventNamespace(), endpoint).href;

export const getBackendURL = (url_str) => {
  if ((url_str ?? undefined) === undefined) {
    url_str = env.PING;
  }
  const meta = typeof window === "undefined" ? null : __rxbMeta();
  if (meta === null) {
    return __rxbOriginalBackendURL(url_str);
  }
  // Only the path (and query) of the baked-in URL is kept: /_event, /_upload.
  const baked = new URL(url_str);
  const base = new URL(
    meta.backend || window.location.origin + meta.prefix,
    window.location.href,
  );
  const secure = base.protocol === "https:" || base.protocol === "wss:";
  const socket = baked.protocol === "ws:" || baked.protocol === "wss:";
  const endpoint = new URL(base.href);
  endpoint.protocol = socket ? (secure ? "wss:" : "ws:") : secure ? "https:" : "http:";
  endpoint.pathname = base.pathname.replace(/\/+$/, "") + baked.pathname;
  endpoint.search = baked.search;
  endpoint.hash = "";
  return endpoint;
};
"""
)


class PatchError(ReflexBuilddError, RuntimeError):
    """Reflex's frontend template no longer has the code this plugin patches."""


def patch_state_js(source: str) -> str:
    """Patch ``utils/state.js``; idempotent, so a warm workspace can be reused.

    Raises:
        PatchError: If Reflex's template lacks the code patched here.
    """
    expected = (
        (_ORIGINAL_DEF, _RENAMED_DEF),
        (_SOCKET_CALL, _PATCHED_SOCKET_CALL),
        (_ENV_IMPORT, _PATCHED_ENV_IMPORT),
        (_URL_IMPORT, _PATCHED_URL_IMPORT),
        *_URL_EVENTS,
    )
    source = _apply(
        STATE_JS, source, [(original, patched, patched) for original, patched in expected]
    )
    if _MARKER not in source:
        source += "\n" + _RUNTIME_JS
    return source


def patch_vite_config(source: str) -> str:
    """Alias ``$/public/<sentinel>/`` to ``public/`` and add the jsx plugin; idempotent.

    Raises:
        PatchError: If Reflex's vite config lacks the code patched here.
    """
    expected = (
        (_VITE_ALIASES, _VITE_ALIASES + _VITE_ALIAS, _VITE_MARKER),
        (_VITE_CONFIG_START, _VITE_JSX_PLUGIN + _VITE_CONFIG_START, _VITE_JSX_MARKER),
        (_VITE_PLUGINS, _VITE_PLUGINS + "\n    reflexBuilddJsx(),", "reflexBuilddJsx(),"),
    )
    return _apply(VITE_CONFIG, source, expected)


def _apply(name: str, source: str, patches: Iterable[tuple[str, str, str]]) -> str:
    """Replace each ``original`` by ``patched`` unless ``done`` shows it was (idempotent).

    Raises:
        PatchError: If an ``original`` is not there exactly once (another Reflex version).
    """
    for original, patched, done in patches:
        if done in source:
            continue
        if source.count(original) != 1:
            raise PatchError(
                f"reflex-buildd cannot patch {name}: expected one {original!r}; "
                "this Reflex version is not supported"
            )
        source = source.replace(original, patched)
    return source


class BuilddPlugin(Plugin):
    """Makes a Reflex build find its backend from the page at run time."""

    def pre_compile(self, **context: Any) -> None:
        """Register the ``state.js`` patch.

        Args:
            context: The pre-compile context Reflex passes to plugins.
        """
        context["add_modify_task"](STATE_JS, patch_state_js)
        context["add_modify_task"](VITE_CONFIG, patch_vite_config)
        routes = [page.route for page in context.get("unevaluated_pages", ())]
        context["add_save_task"](runtime_url_modules, routes)

    def post_build(self, **context: Any) -> None:
        """Prefix the output's root-absolute references to the app's asset files.

        Args:
            context: The post-build context; ``static_dir`` is vite's output.
        """
        # The export runs with the project (our snapshot of it) as its cwd.
        assets = asset_paths(Path.cwd() / Dirs.APP_ASSETS)
        counts = rewrite_static_dir(Path(context["static_dir"]), assets)
        if counts:
            total = sum(counts.values())
            # Goes to the build log: what the build changed, file by file.
            print(f"reflex-buildd: prefixed {total} asset reference(s) in {len(counts)} file(s)")
            for rel, count in sorted(counts.items()):
                print(f"reflex-buildd:   {rel}: {count}")
            sys.stdout.flush()


def runtime_url_modules(routes: list[str]) -> list[tuple[str, str]]:
    """The two modules of the run-time URL rule, as ``(path in .web, source)``.

    The app's files are those of ``assets/`` in the current directory (the
    export runs in our snapshot of the project), the same list the build-time
    rewrite uses.
    """
    files = asset_paths(Path.cwd() / Dirs.APP_ASSETS)
    # The sentinel in a build; dev mode compiles with the real prefix.
    baked = get_config().prepend_frontend_path("/").rstrip("/")
    return [(URLS_MODULE_PATH, urls_module(files, routes, baked)), (JSX_MODULE_PATH, JSX_MODULE)]


def rewrite_static_dir(static_dir: Path, assets: frozenset[str]) -> dict[str, int]:
    """Apply :func:`~reflex_buildd.assets.rewrite_asset_refs` to every text file.

    Returns:
        How many references were rewritten, per file (relative path).
    """
    counts: dict[str, int] = {}
    if not assets:
        return counts
    for path in sorted(static_dir.rglob("*")):
        if path.suffix.lower() not in REWRITE_SUFFIXES or not path.is_file():
            continue
        try:
            # Bytes, not read_text: universal newlines would turn CRLF into LF.
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue  # not text after all: leave it as vite wrote it
        result = rewrite_asset_refs(text, assets)
        if result.rewritten:
            path.write_bytes(result.text.encode("utf-8"))
            counts[path.relative_to(static_dir).as_posix()] = len(result.rewritten)
    return counts
