"""A plain-ASGI static server over an artifact, prepared once per prefix.

WhiteNoise's approach: every response is computed when a prefix is first
served (sentinel rewrite, ``<meta>`` injection, gzip, headers); a request is a
dictionary lookup and a ``send``. Nothing is read from disk per request, so no
request path can reach a file outside the artifact: only the keys of the
dictionary exist.

Artifacts are a few MB. The bytes of files without a sentinel are loaded once
per artifact (:class:`ArtifactFiles`) and shared by every prefix; only the
rewritten files (HTML, the route manifest, a few chunks) cost memory per prefix.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
import blake3

from .rewrite import has_icon_link, icon_link, inject_meta, meta_tag, replace_sentinel
from .routes import RouteTable
from .store import Artifact
from .types import Receive, Scope, Send

__all__ = ["ArtifactFiles", "StaticSite"]

_PUBLIC = "public/"
_IMMUTABLE = b"public, max-age=31536000, immutable"
_REVALIDATE = b"no-cache"
_HTML = "text/html"


@dataclass(frozen=True)
class _Raw:
    data: bytes
    gz: bytes | None
    digest: str
    content_type: str
    sentinels: int


class ArtifactFiles:
    """The public files of one artifact, read once, keyed by URL path."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        files = artifact.manifest.files
        self.raw: dict[str, _Raw] = {}
        for rel, entry in files.items():
            if not rel.startswith(_PUBLIC) or rel.endswith((".gz", ".br")):
                continue
            data = (artifact.path / rel).read_bytes()
            gz_rel = rel + ".gz"
            gz = (artifact.path / gz_rel).read_bytes() if gz_rel in files else None
            url = "/" + rel[len(_PUBLIC) :]
            self.raw[url] = _Raw(data, gz, entry.digest, entry.content_type, entry.sentinels)
        self.routes = RouteTable(artifact.manifest.routes)


@dataclass(frozen=True)
class _Response:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    gz_headers: tuple[tuple[bytes, bytes], ...] | None
    gz_body: bytes | None
    etag: bytes


def _headers(
    content_type: str, length: int, etag: bytes, cache: bytes, *, vary: bool, gz: bool
) -> tuple[tuple[bytes, bytes], ...]:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(length).encode("ascii")),
        (b"etag", etag),
        (b"cache-control", cache),
    ]
    if vary:
        headers.append((b"vary", b"Accept-Encoding"))
    if gz:
        headers.append((b"content-encoding", b"gzip"))
    return tuple(headers)


def _response(
    url: str, raw: _Raw, prefix: str, meta: bytes, status: int = 200, *, icon: bool = False
) -> _Response:
    is_html = raw.content_type.startswith(_HTML)
    data, gz, digest = raw.data, raw.gz, raw.digest
    if raw.sentinels or is_html:
        data = replace_sentinel(data, prefix)
        if is_html:
            head = meta + (icon_link(prefix) if icon and not has_icon_link(data) else b"")
            data = inject_meta(data, head)
        # mtime=0 keeps the bytes (and so the ETag of the variant) stable.
        gz = gzip.compress(data, compresslevel=6, mtime=0) if raw.gz is not None else None
        digest = blake3.blake3(data).hexdigest()
    etag = f'"{digest[:32]}"'.encode("ascii")
    hashed = url.startswith("/assets/") and not is_html
    cache = _IMMUTABLE if hashed and status == 200 else _REVALIDATE
    vary = gz is not None
    return _Response(
        status=status,
        headers=_headers(raw.content_type, len(data), etag, cache, vary=vary, gz=False),
        body=data,
        gz_headers=_headers(raw.content_type, len(gz), etag, cache, vary=vary, gz=True)
        if gz is not None
        else None,
        gz_body=gz,
        etag=etag,
    )


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept-encoding":
            for part in value.split(b","):
                coding, _, params = part.strip().partition(b";")
                if coding.strip().lower() in (b"gzip", b"*") and _quality(params) > 0:
                    return True
    return False


def _if_none_match(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"if-none-match":
            return bytes(value)
    return None


def _etag_matches(header: bytes, etag: bytes) -> bool:
    if header.strip() == b"*":
        return True
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


class StaticSite:
    """Everything one prefix serves, computed once."""

    def __init__(self, files: ArtifactFiles, prefix: str, backend: str = "") -> None:
        self.prefix = prefix
        meta = meta_tag(prefix, backend)
        icon = "/favicon.ico" in files.raw
        self._responses = {
            url: _response(url, raw, prefix, meta, icon=icon) for url, raw in files.raw.items()
        }
        self._routes = files.routes
        fallback_raw = files.raw.get("/404.html") or files.raw["/index.html"]
        # Reflex's 404.html is its SPA shell: with status 200 it renders any
        # client route (dynamic ones have no prerendered page), with 404 the
        # app's not-found page.
        self._spa = _response("/404.html", fallback_raw, prefix, meta, 200, icon=icon)
        self._not_found = _response("/404.html", fallback_raw, prefix, meta, 404, icon=icon)

    def resolve(self, path: str) -> _Response:
        """The response for ``path`` below the prefix (``""``, ``"/about"``, ...)."""
        if "\x00" in path or "\\" in path:
            return self._not_found
        if (found := self._responses.get(path)) is not None and not path.endswith("/"):
            return found
        if self._routes.match(path):
            page = path.strip("/")
            for candidate in (f"/{page}/index.html", f"/{page}.html") if page else ("/index.html",):
                if (found := self._responses.get(candidate)) is not None:
                    return found
            return self._spa
        return self._not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Serve ``path`` (already made relative to the prefix) for an HTTP scope."""
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _send(send, 405, ((b"allow", b"GET, HEAD"), (b"content-length", b"0")), b"")
            return
        response = self.resolve(path)
        inm = _if_none_match(scope)
        if inm is not None and response.status == 200 and _etag_matches(inm, response.etag):
            keep = {b"etag", b"cache-control", b"vary"}
            await _send(send, 304, tuple(h for h in response.headers if h[0] in keep), b"")
            return
        if response.gz_body is not None and response.gz_headers and _accepts_gzip(scope):
            headers, body = response.gz_headers, response.gz_body
        else:
            headers, body = response.headers, response.body
        await _send(send, response.status, headers, b"" if method == "HEAD" else body)


async def _send(
    send: Send, status: int, headers: tuple[tuple[bytes, bytes], ...], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})

