"""Make root-absolute URLs the app computes at run time follow the mount prefix.

Reflex apps hold URLs of their own files and pages in state
(``rx.image(src=State.logo)`` with ``logo = "/logo.png"``), download them
(``rx.download(url="/report.csv")``) and navigate to them from scripts
(``rx.call_script("window.location.href = '/other'")``). Under ``reflex run``
the app owns the origin, so ``/logo.png`` is its own file; mounted at
``/admin`` the browser would ask the host's root. The build cannot see these
values (:mod:`reflex_buildd.assets` rewrites only what the output holds), so
the frontend fixes them where they are used:

- **the render path**: every element Reflex compiles is created by ``jsx`` from
  ``@emotion/react``; the build's vite plugin resolves that import, for the
  app's own modules, to a thin wrapper that fixes the URL props (``src``,
  ``href``, ``srcSet``, ``poster``, ``action``, ``formAction``, ``data``) and
  CSS ``url()`` in ``style`` and ``css`` before Emotion sees them;
- **the events** Reflex handles in the browser (patched in ``utils/state.js``):
  ``_download``'s URL, an external ``_redirect``'s window, and string literals
  in the code of ``_call_script`` / ``_call_function``.

The rule is exact: a value changes only when it is a root-absolute path (not
``//host``) whose path part (before ``?`` or ``#``) names a file of the app's
``assets/``, one of its page routes (dynamic segments included, matched like
React Router: case-insensitively, with an optional trailing slash) or the
backend's upload route (``/_upload/...``). External URLs, host routes the app
does not have, relative paths and values that already start with the prefix
stay as they are, so nothing is rewritten twice (results of
:func:`reflex_buildd.app.asset_url` and of the build's rewrite included).
Router links (``to``) are left to React Router, whose ``basename`` already is
the prefix; that is also why ``rx.link`` and ``rx.redirect("/other")`` needed
nothing.

Where the prefix comes from: the ``<meta name="reflex-buildd">`` tag, read
once per page. Without a document (Reflex's prerender in Node) or a tag, the
``frontend_path`` the frontend was compiled with: in a build the prefix
sentinel, which the host rewrites to the same prefix the tag carries, so the
prerendered HTML and the hydrated page agree (React does not patch attribute
mismatches during hydration). The lists are written into the build
prefix-independently: paths are stored without their leading slash, so the
build-time rewrite never mistakes them for references.

Everything here is pure (text in, text out); the plugin does the I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from reflex_buildd_client.serve.rewrite import META_NAME, SENTINEL

__all__ = [
    "JSX_MODULE",
    "JSX_MODULE_PATH",
    "URLS_MODULE_PATH",
    "route_pattern",
    "urls_module",
]

# Written into .web by the plugin's save tasks ("$/utils/..." in imports).
URLS_MODULE_PATH = "utils/reflex_buildd_urls.js"
JSX_MODULE_PATH = "utils/reflex_buildd_jsx.js"

_ARG = re.compile(r"\[(?P<name>[A-Za-z_]\w*)\]")
_OPTIONAL_ARG = re.compile(r"\[\[(?P<name>[A-Za-z_]\w*)\]\]")
_CATCHALL = "[[...splat]]"


def _segment_pattern(segment: str) -> str:
    """The regex source of one route segment, with its leading slash."""
    if segment == _CATCHALL or (segment.startswith("[...") and segment.endswith("]")):
        return "(?:/.*)?"
    if _OPTIONAL_ARG.fullmatch(segment):
        return "(?:/[^/]+)?"
    if _ARG.fullmatch(segment):
        return "/[^/]+"
    return "/" + re.sub(r"[\\^$.*+?()\[\]{}|/-]", lambda m: "\\" + m.group(0), segment)


def route_pattern(routes: Iterable[str]) -> str:
    """One regex source (JS and Python syntax alike) matching the paths of ``routes``.

    Args:
        routes: Reflex's page routes (``index``, ``about``, ``post/[pid]``,
            ``docs/[[...splat]]``), with or without a leading slash.

    Returns:
        ``^(?:/|(?:...)/?)$`` (the index, then the others with an optional
        trailing slash), or a pattern that matches nothing when there are no routes.
    """
    index = False
    alternatives: set[str] = set()
    for route in routes:
        route = route.strip("/")
        if route in ("", "index"):
            index = True
            continue
        alternatives.add("".join(_segment_pattern(s) for s in route.split("/") if s))
    parts = (["/"] if index else []) + (
        ["(?:" + "|".join(sorted(alternatives)) + ")/?"] if alternatives else []
    )
    if not parts:
        return "(?!)"
    return "^(?:" + "|".join(parts) + ")$"


# The run-time rule. Placeholders: __FILES__ (JSON list of paths without the
# leading slash), __ROUTES__ (JSON string of a regex source), __BAKED__ (JSON
# string of the compiled frontend_path), __META__ (the tag's name).
_URLS_JS = r"""// reflex-buildd: root-absolute URLs of the app's own files and pages follow
// the mount prefix at run time. Generated by the build (reflex_buildd.runtime_urls).
import env from "$/env.json";

// Paths without their leading slash: the build's own rewrite must not see them.
const FILES = new Set(__FILES__.map((p) => "/" + p));
const ROUTES = new RegExp(__ROUTES__, "i");
const BAKED = __BAKED__;
const UPLOAD = new URL(env.UPLOAD).pathname.replace(/\/+$/, "");
const UPLOAD_DIR = UPLOAD + "/";

const facts = (prefix, backend) => ({
  prefix,
  backend,
  under: prefix + "/",
  active: prefix !== "" || backend !== "",
});
const NO_DOCUMENT = facts(BAKED, "");
let page = null;
// Read once per page: the tag never changes, and every element asks.
const where = () => {
  if (page !== null) return page;
  if (typeof document === "undefined") return NO_DOCUMENT;
  const tag = document.querySelector('meta[name="__META__"]');
  const prefix = tag === null ? BAKED : tag.getAttribute("data-prefix") || "";
  const backend = tag === null ? "" : (tag.getAttribute("data-backend") || "").replace(/\/+$/, "");
  page = facts(prefix, backend);
  return page;
};

/** Whether any value can change (at the root, with the backend there too, none can). */
export const active = () => where().active;

/** `value` under the prefix when it names the app's own file, page or upload. */
export const ownUrl = (value) => {
  if (typeof value !== "string" || value.charCodeAt(0) !== 47 || value.charCodeAt(1) === 47) {
    return value;
  }
  const { prefix, backend, under, active } = where();
  if (!active) return value;
  if (prefix !== "" && (value === prefix || value.startsWith(under))) return value;
  const query = value.indexOf("?");
  const hash = value.indexOf("#");
  const cut = query < 0 ? hash : hash < 0 ? query : Math.min(query, hash);
  const path = cut < 0 ? value : value.slice(0, cut);
  if (UPLOAD !== "" && (path === UPLOAD || path.startsWith(UPLOAD_DIR))) {
    // The backend may live elsewhere (the tag says where); same origin by default.
    return (backend || prefix) + value;
  }
  if (prefix !== "" && (FILES.has(path) || ROUTES.test(path))) return prefix + value;
  return value;
};

const srcset = (value) =>
  value.replace(/(^|,)(\s*)([^\s,]+)/g, (all, comma, space, url) => comma + space + ownUrl(url));

const CSS_URL = /url\(\s*(["']?)(\/[^"'()\s]*)\1\s*\)/g;
const cssUrls = (value) =>
  value.indexOf("url(") < 0
    ? value
    : value.replace(CSS_URL, (all, quote, url) => "url(" + quote + ownUrl(url) + quote + ")");

/** A style or Emotion css object with its url()s fixed; the same object if none changed. */
const style = (value, depth) => {
  if (value === null || typeof value !== "object" || depth > 8) return value;
  let out = value;
  for (const key in value) {
    const item = value[key];
    const fixed =
      typeof item === "string" ? cssUrls(item) : typeof item === "object" ? style(item, depth + 1) : item;
    if (fixed !== item) {
      if (out === value) out = Array.isArray(value) ? value.slice() : { ...value };
      out[key] = fixed;
    }
  }
  return out;
};

const URL_PROPS = ["src", "href", "srcSet", "poster", "action", "formAction", "data"];
const STYLE_PROPS = ["style", "css"];

/** Element props with their URLs fixed; the same object when nothing changed. */
export const ownProps = (props) => {
  let out = props;
  for (let i = 0; i < URL_PROPS.length; i++) {
    const key = URL_PROPS[i];
    const value = props[key];
    if (typeof value !== "string" || value === "") continue;
    const fixed = key === "srcSet" ? srcset(value) : ownUrl(value);
    if (fixed !== value) {
      if (out === props) out = { ...props };
      out[key] = fixed;
    }
  }
  for (let i = 0; i < STYLE_PROPS.length; i++) {
    const key = STYLE_PROPS[i];
    const value = props[key];
    if (value === null || typeof value !== "object") continue;
    const fixed = style(value, 0);
    if (fixed !== value) {
      if (out === props) out = { ...props };
      out[key] = fixed;
    }
  }
  return out;
};

// A whole string literal holding a root-absolute path, without substitutions.
const LITERAL = /(["'`])(\/(?!\/)[^"'`\\\s$]*)\1/g;

/** Script code with its string literals that name own files or pages fixed.
 * A bare "/" stays: in code it is more often a separator (split("/")) than the index. */
export const ownScript = (code) =>
  typeof code !== "string" || !active()
    ? code
    : code.replace(LITERAL, (all, quote, url) => (url === "/" ? all : quote + ownUrl(url) + quote));
"""

JSX_MODULE = r"""// reflex-buildd: the jsx every compiled Reflex module uses, with the URL props
// of each element following the mount prefix (see reflex_buildd_urls.js).
import { jsx as emotionJsx } from "@emotion/react";
import { active, ownProps } from "$/utils/reflex_buildd_urls";

export * from "@emotion/react";

export function jsx(type, props) {
  // Module code is strict: `arguments` is a plain copy, safe to change in place.
  if (props != null && active()) arguments[1] = ownProps(props);
  return emotionJsx.apply(undefined, arguments);
}
"""


def urls_module(files: Iterable[str], routes: Iterable[str], baked: str = SENTINEL) -> str:
    """The source of ``utils/reflex_buildd_urls.js`` for one build.

    Args:
        files: URL paths of the app's public files (``/logo.png``), as
            :func:`reflex_buildd.assets.asset_paths` lists them.
        routes: The app's page routes (``index``, ``post/[pid]``).
        baked: The ``frontend_path`` the frontend is compiled with ("" or
            ``/path``): the sentinel in a build, the real prefix in dev mode.
    """
    stored = sorted({f.lstrip("/") for f in files if f.startswith("/") and f.strip("/")})
    return (
        _URLS_JS.replace("__FILES__", json.dumps(stored))
        .replace("__ROUTES__", json.dumps(route_pattern(routes)))
        .replace("__BAKED__", json.dumps(baked))
        .replace("__META__", META_NAME)
    )
