"""Make root-absolute references to the app's own asset files follow the prefix.

Reflex's documentation teaches ``rx.image(src="/logo.png")`` for a file of
``assets/``; the compiled frontend keeps that string as it is, so under a
mount at ``/admin`` the browser asks the host's root for ``/logo.png``. The
build fixes it by giving every such reference the prefix sentinel
(``/__RXBUILDD_PREFIX__/logo.png``), which the host rewrites to the real prefix
like everything else the build prefixed.

Where: in the plugin's ``post_build`` step, over the text files of the built
output (HTML, JS, CSS), after vite and the prerender and before Reflex
relocates and compresses them (so the ``.gz`` sidecars carry the change too).
That one pass sees every kind of reference in its final form, whatever put it
there: component props, page meta, ``head_components``, ``rx.script``, emotion
styles, prerendered HTML, and the app's own CSS/JS files copied from
``assets/``. Compile-time transforms would have to know every component and
prop that may hold a URL, and would miss files vite copies as they are.

What makes it safe (the rule is deliberately narrow):

- Only a whole string literal (``"..."``, ``'...'``, `````...`````, also
  backslash-escaped quotes) or a CSS ``url(...)`` whose path is *exactly* a
  file of ``assets/``, optionally followed by ``?query`` or ``#fragment``.
  ``/logo`` (a route named like an asset's stem), ``/logo.png.map``,
  ``//cdn/logo.png``, ``https://...`` and already prefixed strings never match.
- Router links (``to:"/logo.png"``) are left alone: the router adds the prefix
  itself, and a second one would be wrong.
- State defaults (``avatar_rx_state_:"/avatar.png"`` in the initial state) are
  left alone: the backend sends the real value on hydration and would undo
  the change; the frontend's run-time rule (:mod:`reflex_buildd.runtime_urls`)
  handles them where they are used.

Everything here is pure (text in, text out); the plugin does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from reflex_buildd_client.serve.rewrite import SENTINEL

__all__ = [
    "REWRITE_SUFFIXES",
    "AssetRewrite",
    "asset_paths",
    "balanced_end",
    "is_router_target",
    "rewrite_asset_refs",
    "state_value_spans",
    "string_end",
]

# Text files of the output whose references the browser resolves against the
# page (or the stylesheet): the only ones worth rewriting.
REWRITE_SUFFIXES = frozenset({".html", ".htm", ".js", ".mjs", ".css", ".webmanifest"})

# A whole string literal holding a root-absolute path (not "//"). The quote
# may be escaped (\"...\" inside an inline script); the closing one must match.
_QUOTED = re.compile(
    r"""(?P<q>\\?["'`])(?P<path>/(?!/)[^"'`\s<>\\?#]*)(?P<suffix>[?#][^"'`\s<>\\]*)?(?P=q)"""
)
# CSS url(/x.png), url("/x.png"), url('/x.png'), also inside a JS string.
_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>\\?["']?)(?P<path>/(?!/)[^"'`\s()<>\\?#]*)(?P<suffix>[?#][^"'`\s()<>\\]*)?(?P=q)\s*\)"""
)
# A router link's target: the router prepends its basename (the prefix).
_ROUTER_KEY = re.compile(r"""(?:^|[{,\s(])["']?to["']?\s*[:=]\s*$""")
# A key of Reflex's initial state: every state var is compiled as NAME_rx_state_.
# Only in key position (after "{" or ","), not a ternary's "c.x_rx_state_:".
_STATE_KEY = re.compile(r"""[{,]\s*["']?(?P<name>[A-Za-z_$][\w$]*)_rx_state_["']?\s*:\s*""")
_OPENERS = {"[": "]", "{": "}"}


@dataclass(frozen=True)
class AssetRewrite:
    """The result of :func:`rewrite_asset_refs`.

    Attributes:
        text: The new text.
        rewritten: Each reference that now carries the sentinel, as it was
            (``/logo.png?v=2``), in order of appearance.
    """

    text: str
    rewritten: tuple[str, ...]


def asset_paths(assets_dir: Path) -> frozenset[str]:
    """The URL paths (``/logo.png``, ``/img/a%20b.png``) of every file under ``assets_dir``."""
    if not assets_dir.is_dir():
        return frozenset()
    paths: set[str] = set()
    for path in assets_dir.rglob("*"):
        if path.is_file():
            url = "/" + path.relative_to(assets_dir).as_posix()
            paths.update({url, quote(url)})
    return frozenset(paths)


# A JSON scalar runs to the next "," "}" or "]".
_SCALAR = re.compile(r"[^,}\]]*")


def string_end(text: str, i: int) -> int:
    """Index just past the JS string literal that opens at ``text[i]``."""
    quote_char = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote_char:
            return i + 1
        i += 1
    return len(text)


def balanced_end(text: str, i: int, *, limit: int | None = None, stop: str = "") -> int:
    """Where the JS run starting at ``text[i]`` ends, brackets balanced, strings skipped.

    Without ``stop``, ``text[i]`` opens a bracket and the run ends just past the bracket
    that closes it (a whole array or object). With ``stop`` (e.g. ``","``), the run is an
    expression: it ends before a ``stop`` character or a closing bracket at depth 0. At most
    ``limit`` characters are scanned (a string literal met before the limit is skipped whole).
    """
    end = len(text) if limit is None else min(len(text), i + limit)
    depth = 0
    while i < end:
        char = text[i]
        if char in "\"'`":
            i = string_end(text, i)
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return i  # the closer of what holds the expression
            depth -= 1
            if depth == 0 and not stop:
                return i + 1
        elif depth == 0 and char in stop:
            return i
        i += 1
    return i


def _value_end(text: str, i: int) -> int:
    """End of the JS/JSON value starting at ``text[i]`` (a literal, array or object)."""
    if i >= len(text):
        return i
    if text[i] in "\"'`":
        return string_end(text, i)
    if text[i] not in _OPENERS:
        match = _SCALAR.match(text, i)
        return match.end() if match else i
    return balanced_end(text, i)


def state_value_spans(text: str) -> list[tuple[str, int, int]]:
    """The default values of state vars in compiled JS: ``(var name, start, end)``.

    Reflex compiles the initial state as ``{NAME_rx_state_: value, ...}``; the
    value may be a string, an array or an object (scanned with strings
    skipped, so brackets inside them do not count).
    """
    spans: list[tuple[str, int, int]] = []
    pos = 0
    while match := _STATE_KEY.search(text, pos):
        start = match.end()
        end = _value_end(text, start)
        spans.append((match.group("name"), start, end))
        pos = max(end, match.end())
    return spans


def is_router_target(text: str, start: int) -> bool:
    """Whether the string literal at ``start`` is a router link's ``to``."""
    return _ROUTER_KEY.search(text[max(0, start - 12) : start]) is not None


def _inside(spans: list[tuple[str, int, int]], pos: int) -> bool:
    return any(start <= pos < end for _, start, end in spans)


def rewrite_asset_refs(text: str, assets: Iterable[str] | frozenset[str]) -> AssetRewrite:
    """Give the sentinel to every root-absolute reference to a file of ``assets``.

    Args:
        text: A text file of the build's output (HTML, JS or CSS).
        assets: URL paths of the app's asset files (see :func:`asset_paths`).

    Returns:
        The new text and what was rewritten; the text is unchanged (the same
        object) when nothing matched.
    """
    known = assets if isinstance(assets, frozenset) else frozenset(assets)
    if not known or "/" not in text:
        return AssetRewrite(text, ())
    spans = state_value_spans(text) if "_rx_state_" in text else []
    edits: list[tuple[int, str]] = []  # positions where the sentinel goes

    for pattern in (_QUOTED, _CSS_URL):
        for match in pattern.finditer(text):
            if match.group("path") not in known:
                continue
            pos = match.start("path")
            if _inside(spans, pos) or (
                pattern is _QUOTED and is_router_target(text, match.start())
            ):
                continue
            edits.append((pos, match.group("path") + (match.group("suffix") or "")))
    if not edits:
        return AssetRewrite(text, ())
    # A url("/x.png") matches both patterns at the same position: once is enough.
    unique = sorted(dict(edits).items())
    parts: list[str] = []
    last = 0
    for pos, _ in unique:
        parts.append(text[last:pos])
        parts.append(SENTINEL)
        last = pos
    parts.append(text[last:])
    return AssetRewrite("".join(parts), tuple(ref for _, ref in unique))
