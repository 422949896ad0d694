"""Helpers for app authors: URLs known only at run time that must follow the prefix.

The build rewrites every root-absolute reference to a file of ``assets/`` it
can see (``rx.image(src="/logo.png")``), and the frontend's run-time rule
(:mod:`reflex_buildd.runtime_urls`) prefixes the app's own files, pages and
uploads wherever elements and Reflex's events use them. For a value neither
sees (a prop the rule does not know, such as a ``data-src`` a library reads,
or a path that is not the app's), wrap it where it is rendered::

    from reflex_buildd.app import asset_url

    rx.image(src=asset_url(State.avatar))

The result is a frontend expression that prepends the mount prefix to a
root-absolute path (``"/avatar.png"`` -> ``"/admin/avatar.png"``) and leaves
everything else alone: relative paths, ``//cdn...``, ``https://...``,
``data:`` URLs, and paths that already start with the prefix.

Where the prefix comes from: in the browser, the ``<meta name="reflex-buildd">``
tag the host injects into every page; where there is no document (Reflex's
prerender in Node) or no tag (plain ``reflex run``), the ``frontend_path``
the app was built with. A reflex-buildd build bakes the prefix sentinel there,
which the host rewrites to the same prefix the tag carries, so the prerendered
HTML and the hydrated page agree (React does not patch attribute mismatches
during hydration).
"""

from __future__ import annotations

import json

from reflex_base.config import get_config
from reflex_base.vars.base import Var

from reflex_buildd_client.serve.rewrite import META_NAME

__all__ = ["asset_url"]

# One self-contained arrow function, so the helper needs no import in the page
# and works with or without the reflex-buildd frontend patch.
_RESOLVE_JS = (
    "((u, baked) => {{"
    'if (typeof u !== "string" || !u.startsWith("/") || u.startsWith("//")) return u;'
    'const tag = typeof document === "undefined" ? null'
    " : document.querySelector('meta[name=\"{meta}\"]');"
    'const p = tag === null ? baked : (tag.getAttribute("data-prefix") || "");'
    'if (p !== "" && (u === p || u.startsWith(p + "/"))) return u;'
    "return p + u;"
    "}})({value}, {baked})"
)


def _baked_prefix() -> str:
    """The build's own prefix: "" at the root, else ``/path`` without a trailing slash."""
    return get_config().prepend_frontend_path("/").rstrip("/")


def asset_url(value: Var | str) -> Var:
    """Make a root-absolute URL known only at run time follow the mount prefix.

    Args:
        value: A string var (``State.avatar``) or a plain string.

    Returns:
        A string var for a component prop: ``value`` with the prefix prepended
        when it is a root-absolute path, unchanged otherwise.
    """
    var = value if isinstance(value, Var) else Var.create(value)
    expr = _RESOLVE_JS.format(meta=META_NAME, value=str(var), baked=json.dumps(_baked_prefix()))
    return Var(_js_expr=expr, _var_type=str, _var_data=var._get_all_var_data())
