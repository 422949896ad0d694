"""Find the root-absolute URLs of a build that will still leave the mount prefix.

The build prefixes every reference to a file of ``assets/`` it can see
(:mod:`reflex_buildd.assets`), and the frontend prefixes, at run time, every
URL prop, download, external redirect and script literal that names one of
the app's files, pages or uploads (:mod:`reflex_buildd.runtime_urls`); what
remains points at the host's root when the app is mounted at ``/admin``. This
module names those leftovers, with the file, the component or element, the
project source line when it can find one, and what to do. Kinds of finding:

``state-default``
    A state var whose default is a root-absolute path that is none of the
    app's files, pages or uploads (``"/missing.png"``), used as a value: the
    run-time rule leaves it as it is, so it reaches the host's root.
``html-string``
    A root-absolute ``src``/``href``/... inside an HTML string (``rx.html``):
    neither the build nor the run time looks inside markup held in a string.
``not-an-asset``
    A file-like root-absolute URL (``/missing.png``) that is not a file of
    ``assets/``: the build cannot know what it is. Add the file to ``assets/``,
    or use ``rx.asset``; if the host serves it on purpose, ignore the finding.
``css-url`` / ``html-attr``
    The same for a CSS ``url()`` and an HTML ``src``/``href``/``srcset``/...
    attribute (also paths without an extension, which are not routes).

What the scan cannot see: URLs the app's own JavaScript assembles (custom
scripts, local JSX components, ``rx.call_script`` code that concatenates a
path), and values an event handler sets that are none of the app's files,
pages or uploads; ``docs/assets.md`` lists them.

False positives are kept low on purpose: Reflex's compiled JS holds many
strings that start with "/" (route patterns, regex sources, endpoints), so JS
strings are reported only when they look like files (an extension), router
links (``to:``) never, and the backend's endpoints never.

Scanning is pure (:func:`scan_text`, :func:`scan_files`); :func:`diagnose`
reads an artifact and a project.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from reflex_buildd_client.cache.store import PUBLIC_DIR, Artifact
from reflex_buildd_client.serve.rewrite import SENTINEL

from .assets import REWRITE_SUFFIXES, is_router_target, state_value_spans

__all__ = [
    "BACKEND_ENDPOINTS",
    "BLIND_SPOTS",
    "Finding",
    "diagnose",
    "format_findings",
    "scan_files",
    "scan_text",
    "warn_escapes",
]

# What no scan of the output can judge, said after every report.
BLIND_SPOTS = (
    "URLs your own JavaScript builds or fetches (rx.script code, local JSX components, "
    "a script that assembles a path), and values event handlers set that are none of "
    "the app's files, pages or uploads"
)
# Paths the backend answers under the prefix on its own (the frontend patch
# routes them): never findings.
BACKEND_ENDPOINTS = ("/_event", "/_upload", "/ping", "/_health", "/_all_routes", "/auth-codespace")
# Default paths inside socket.io's client (look like files; the patch routes them).
_LIBRARY_PATHS = frozenset({"/socket.io", "/engine.io"})

_ADVICE = {
    "state-default": "none of the app's files, pages or uploads, so it stays as it is and "
    "the browser asks the host's root: put the file in assets/, or ignore this if the host "
    "serves it on purpose (see docs/assets.md)",
    "html-string": "inside an HTML string, where neither the build nor the run time looks: "
    "render the element with rx.image/rx.el instead of markup, or use a relative URL",
    "not-an-asset": "not a file of assets/, so the browser asks the host's root: put the "
    "file in assets/ (or use rx.asset); ignore this if the host serves it on purpose",
    "css-url": "not a file of assets/: put the file in assets/, or make the url() relative",
    "html-attr": "a root-absolute link outside the app: point it at a file of assets/ "
    "or a route (rx.link), or ignore it if the host serves it on purpose",
}

# A string literal holding a root-absolute path that looks like a file: its
# last segment has an extension (1-8 letters/digits).
_FILE_STRING = re.compile(
    r"""(?P<q>\\?["'`])(?P<path>/(?!/)[^"'`\s<>\\?#]*\.[A-Za-z0-9]{1,8})(?P<suffix>[?#][^"'`\s<>\\]*)?(?P=q)"""
)
_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>\\?["']?)(?P<path>/(?!/)[^"'`\s()<>\\?#]*)(?P<suffix>[?#][^"'`\s()<>\\]*)?(?P=q)\s*\)"""
)
_HTML_ATTR = re.compile(
    r"""\s(?P<attr>src|href|srcset|poster|action|formaction|data|background)=(?P<q>["'])(?P<value>[^"']*)(?P=q)""",
    re.IGNORECASE,
)
# A URL attribute inside markup held in a JS string (rx.html's __html), its
# quotes escaped or not: src=\"/logo.png\".
_MARKUP_ATTR = re.compile(
    r"""\b(?:src|href|srcset|poster|action|formaction|data)=\\?["'](?P<path>/(?!/)[^"'\\\s?#]*)"""
)
# A router link's target as compiled (to:c.x_rx_state_): React Router adds the
# prefix itself.
_ROUTER_USE = re.compile(r"""\bto:\s*[\w$]+$""")
_DISPLAY_NAME = re.compile(r"""displayName\s*=\s*["'`](?P<name>[^"'`]+)["'`]""")
_JS_ID = re.compile(r"""[{,]id:\s*["'`](?P<id>[^"'`]+)["'`]""")
# The element whose attributes (or text, as in <style>) hold a position.
_HTML_TAG = re.compile(r"""<(?P<tag>[A-Za-z][\w-]*)(?P<attrs>[^<>]*)(?:>[^<]*)?$""")
_HTML_ID = re.compile(r"""\sid=["'](?P<id>[^"']+)["']""")


@dataclass(frozen=True)
class Finding:
    """One reference that will leave the prefix.

    Attributes:
        kind: ``state-default``, ``html-string``, ``not-an-asset``,
            ``css-url`` or ``html-attr``.
        url: The URL (or the literal start of one) as the output holds it.
        file: Where, relative to the artifact (``public/assets/x.js``).
        context: The component, element, prop or state var, when known.
        sources: Project source lines (``pkg/page.py:12``) that look responsible.
        advice: What to do about it.
    """

    kind: str
    url: str
    file: str
    context: str = ""
    sources: tuple[str, ...] = field(default=())
    advice: str = ""

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object."""
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data


def _is_backend(path: str) -> bool:
    return any(path == e or path.startswith(e + "/") for e in BACKEND_ENDPOINTS)


def _is_route(path: str, routes: frozenset[str]) -> bool:
    return path.strip("/") in routes or (path == "/" and "index" in routes)


def _prefixed(path: str) -> bool:
    return path == SENTINEL or path.startswith(SENTINEL + "/")


def _leaves(path: str, assets: frozenset[str], routes: frozenset[str]) -> bool:
    """Whether ``path`` reaches the host's root: none of the app's files, pages,
    backend endpoints (uploads included) or library defaults, and not prefixed."""
    return not (
        _prefixed(path)
        or path in assets
        or _is_backend(path)
        or path in _LIBRARY_PATHS
        or _is_route(path, routes)
    )


def _js_context(text: str, pos: int) -> str:
    """The element id and component name around a position in compiled JS."""
    parts: list[str] = []
    # The id of the same element: the nearest one before (same props object),
    # else the nearest one after.
    before = [m.group("id") for m in _JS_ID.finditer(text, max(0, pos - 300), pos)]
    after = _JS_ID.search(text, pos, pos + 300)
    if before or after:
        parts.append("#" + (before[-1] if before else after.group("id")))  # type: ignore[union-attr]
    if name := _DISPLAY_NAME.search(text, pos, pos + 4000):
        parts.append(name.group("name"))
    return " in ".join(parts)


def _html_context(text: str, pos: int) -> str:
    """The element (``<img id=x>``) whose attribute holds ``pos``."""
    start = text.rfind("<", 0, pos)
    tag = _HTML_TAG.match(text[start:pos]) if start >= 0 else None
    if tag is None:
        return ""
    found = _HTML_ID.search(tag.group("attrs"))
    return f"<{tag.group('tag')}" + (f" id={found.group('id')}" if found else "") + ">"


def _srcset_urls(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


def _html_attr_urls(text: str) -> Iterator[tuple[str, str, int]]:
    """Root-absolute URLs in HTML attributes: (URL, its path, where its value starts)."""
    for match in _HTML_ATTR.finditer(text):
        attr, value = match.group("attr").lower(), match.group("value")
        for url in _srcset_urls(value) if attr == "srcset" else [value]:
            if url.startswith("/") and not url.startswith("//"):
                yield url, re.split(r"[?#]", url, maxsplit=1)[0], match.start("value")


def scan_text(
    rel: str,
    text: str,
    *,
    assets: frozenset[str],
    routes: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Findings of one output file, except state defaults (see :func:`scan_files`).

    Args:
        rel: The file's path in the artifact (reported as is).
        text: Its content.
        assets: URL paths of the app's asset files (those are handled by the build).
        routes: The app's routes (``about``, ``post/[pid]``), never findings.
    """
    suffix = Path(rel).suffix.lower()
    html = suffix in {".html", ".htm"}
    context = _html_context if html else _js_context
    spans = state_value_spans(text) if "_rx_state_" in text else []
    findings: dict[tuple[str, str], Finding] = {}

    def add(kind: str, url: str, pos: int, ctx: str = "") -> None:
        findings.setdefault(
            (kind, url),
            Finding(kind, url, rel, ctx or context(text, pos), advice=_ADVICE[kind]),
        )

    def leaves(path: str) -> bool:
        return _leaves(path, assets, routes)

    css_spans: list[tuple[int, int]] = []
    for match in _CSS_URL.finditer(text):
        css_spans.append(match.span())
        if leaves(match.group("path")):
            add("css-url", match.group("path") + (match.group("suffix") or ""), match.start())
    for match in _FILE_STRING.finditer(text):
        path, pos = match.group("path"), match.start("path")
        if not leaves(path) or "${" in path or any(s <= pos < e for _, s, e in spans):
            continue  # a template with a var: the run-time rule decides
        if is_router_target(text, match.start()) or any(s <= pos < e for s, e in css_spans):
            continue
        add("not-an-asset", path + (match.group("suffix") or ""), pos)
    if html:
        for url, path, pos in _html_attr_urls(text):
            if leaves(path) and ("not-an-asset", url) not in findings:
                add("html-attr", url, pos)
    else:
        # Markup in a string: its anchors are no router links, so pages count too.
        for match in _MARKUP_ATTR.finditer(text):
            path = match.group("path")
            if not (_prefixed(path) or _is_backend(path) or path in _LIBRARY_PATHS):
                findings.pop(("not-an-asset", path), None)  # the markup says more
                add("html-string", path, match.start("path"))
    return list(findings.values())


def _state_defaults(text: str) -> dict[str, list[str]]:
    """Root-absolute string values in the state defaults of one file, by var name."""
    out: dict[str, list[str]] = {}
    for name, start, end in state_value_spans(text):
        for match in re.finditer(r"""(?P<q>["'`])(?P<v>/(?!/)[^"'`\s]*)(?P=q)""", text[start:end]):
            value = match.group("v")
            if not value.startswith(SENTINEL) and not _is_backend(value):
                out.setdefault(name, []).append(value)
    return out


def _direct_uses(text: str, name: str) -> list[int]:
    """Positions where state var ``name`` is read, not through ``asset_url`` and
    not as a router link's target (React Router adds the prefix)."""
    uses: list[int] = []
    for match in re.finditer(r"\.\s*" + re.escape(name) + r"_rx_state_\b", text):
        if _ROUTER_USE.search(text, max(0, match.start() - 40), match.start()):
            continue
        after = text[match.end() : match.end() + 40]
        # asset_url compiles to ((u, baked) => ...)(VALUE, "<sentinel>").
        if re.match(r"""\s*,\s*["'`]""" + re.escape(SENTINEL) + r"""["'`]\s*\)""", after):
            continue
        uses.append(match.start())
    return uses


def scan_files(
    files: Mapping[str, str],
    *,
    assets: frozenset[str],
    routes: frozenset[str] = frozenset(),
) -> list[Finding]:
    """All findings of an output, given its text files (path -> text)."""
    findings: list[Finding] = []
    defaults: dict[str, list[str]] = {}
    for rel, text in files.items():
        findings.extend(scan_text(rel, text, assets=assets, routes=routes))
        if rel.endswith((".js", ".mjs")):
            for name, values in _state_defaults(text).items():
                defaults.setdefault(name, []).extend(values)
    for name, values in sorted(defaults.items()):
        # The app's own files, pages and uploads follow the prefix at run time.
        values = [v for v in values if _leaves(re.split(r"[?#]", v, maxsplit=1)[0], assets, routes)]
        if not values:
            continue
        for rel, text in files.items():
            if not rel.endswith((".js", ".mjs")):
                continue
            uses = _direct_uses(text, name)
            if uses:
                where = _js_context(text, uses[0])
                ctx = f"state var {name!r}" + (f", {where}" if where else "")
                findings.append(
                    Finding("state-default", values[0], rel, ctx, advice=_ADVICE["state-default"])
                )
                break
    return findings


_SKIP_DIRS = frozenset({".web", "node_modules", "__pycache__", ".git", ".venv", "venv", ".states"})


def _python_sources(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if not any(p in _SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
            yield path


def _locate(root: Path, finding: Finding, limit: int = 3) -> tuple[str, ...]:
    """Project lines that likely produce ``finding``: its literal, or its state var."""
    patterns = [re.compile(r"""["']""" + re.escape(finding.url.split("?")[0]) + r"""[?#"']""")]
    if finding.kind == "state-default" and (
        var := re.search(r"state var '(\w+)'", finding.context)
    ):
        patterns.insert(0, re.compile(r"^\s*" + re.escape(var.group(1)) + r"\s*[:=]"))
    hits: list[str] = []
    for pattern in patterns:
        for path in _python_sources(root):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for number, line in enumerate(lines, 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(root).as_posix()}:{number}")
                    if len(hits) >= limit:
                        return tuple(hits)
        if hits:
            break
    return tuple(hits)


def diagnose(artifact: Artifact, project_root: Path | None = None) -> list[Finding]:
    """Findings of an artifact; with ``project_root``, each with its source lines.

    The asset list is the one the artifact was built from (its recorded inputs).
    """
    assets = frozenset(
        path
        for rel in artifact.manifest.inputs.files
        if rel.startswith("assets/")
        for path in (rel[len("assets") :], quote(rel[len("assets") :]))
    )
    files: dict[str, str] = {}
    public = artifact.public_dir
    for path in sorted(public.rglob("*")):
        if path.suffix.lower() in REWRITE_SUFFIXES and path.is_file():
            try:
                files[f"{PUBLIC_DIR}/{path.relative_to(public).as_posix()}"] = (
                    path.read_bytes().decode()
                )
            except UnicodeDecodeError:
                continue
    findings = scan_files(files, assets=assets, routes=frozenset(artifact.manifest.routes))
    if project_root is not None:
        findings = [
            Finding(f.kind, f.url, f.file, f.context, _locate(project_root, f), f.advice)
            for f in findings
        ]
    return findings


def format_findings(findings: list[Finding]) -> str:
    """Human-readable lines, one block per finding."""
    lines: list[str] = []
    for f in findings:
        where = f.file + (f" ({f.context})" if f.context else "")
        lines.append(f"{f.kind}: {f.url} in {where}")
        if f.sources:
            lines.append(f"    source: {', '.join(f.sources)}")
        lines.append(f"    fix: {f.advice}")
    return "\n".join(lines)


def warn_escapes(artifact: Artifact, project_root: Path, stream: TextIO | None = None) -> int:
    """Print a short warning when a fresh build has findings; return their number.

    Never raises: a doctor bug must not fail a build that succeeded.
    """
    try:
        findings = diagnose(artifact, project_root)
    except Exception as exc:
        print(
            f"reflex-buildd: warning: doctor could not scan {artifact.key}: {exc!r}",
            file=stream or sys.stderr,
        )
        return 0
    if findings:
        out = stream or sys.stderr
        urls = ", ".join(sorted({f.url for f in findings})[:5])
        print(
            f"reflex-buildd: warning: {len(findings)} reference(s) will leave the mount prefix "
            f"({urls}); run `reflex-buildd doctor {project_root}` for details",
            file=out,
        )
    return len(findings)
