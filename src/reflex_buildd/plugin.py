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

Any change to this file changes every key (it is hashed as a build recipe).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from reflex_base.constants import Dirs
from reflex_base.plugins.base import Plugin

from reflex_buildd_client.errors import ReflexBuilddError
from reflex_buildd_client.serve.rewrite import SENTINEL

from .assets import REWRITE_SUFFIXES, asset_paths, rewrite_asset_refs

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
    )
    for original, patched in expected:
        if patched in source:
            continue
        if source.count(original) != 1:
            raise PatchError(
                f"reflex-buildd cannot patch {STATE_JS}: expected one {original!r}; "
                "this Reflex version is not supported"
            )
        source = source.replace(original, patched)
    if _MARKER not in source:
        source += "\n" + _RUNTIME_JS
    return source


def patch_vite_config(source: str) -> str:
    """Alias ``$/public/<sentinel>/`` to ``public/``; idempotent.

    Raises:
        PatchError: If Reflex's vite config has no (single) alias list.
    """
    if _VITE_MARKER in source:
        return source
    if source.count(_VITE_ALIASES) != 1:
        raise PatchError(
            f"reflex-buildd cannot patch {VITE_CONFIG}: expected one {_VITE_ALIASES!r}; "
            "this Reflex version is not supported"
        )
    return source.replace(_VITE_ALIASES, _VITE_ALIASES + _VITE_ALIAS)


class BuilddPlugin(Plugin):
    """Makes a Reflex build find its backend from the page at run time."""

    def pre_compile(self, **context: Any) -> None:
        """Register the ``state.js`` patch.

        Args:
            context: The pre-compile context Reflex passes to plugins.
        """
        context["add_modify_task"](STATE_JS, patch_state_js)
        context["add_modify_task"](VITE_CONFIG, patch_vite_config)

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
