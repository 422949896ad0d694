"""A plain-ASGI static server over an artifact, prepared once per prefix.

WhiteNoise's approach: every response is computed when a prefix is first
served (sentinel rewrite, ``<meta>`` injection, headers); a request is a
dictionary lookup and a ``send``. Deciding and sending are apart: a
:class:`Request` (the few facts a response depends on) goes in,
:meth:`StaticSite.respond` returns a :class:`Response` (status, headers, body
or slice) without I/O, for the common cases one made in advance, and
:func:`send_response` sends it. The header parsers (:mod:`.headers`) take
linear time on any value and ignore overlong ones.

Compressed variants are made the first time a client asks for each (then
kept), so neither startup nor a new prefix pays for brotli of files nobody
requests compressed. Nothing is read from disk per request, so no request
path can reach a file outside the artifact: only the keys of the dictionary
exist, and :class:`ArtifactFiles` holds only bytes read once and verified
against the manifest (``verify.read_checked`` refuses symlinks and paths
outside the artifact: an artifact is input, and a build never makes either).

Artifacts are a few MB. The bytes of files without a sentinel (and their gzip
and brotli variants) are held once per artifact and shared by every prefix;
only the rewritten files (HTML, the route manifest, a few chunks) and their
recompressed variants cost memory and time per prefix.

Choices a client can see:

- Each encoding is its own representation with its own strong ETag
  (``"<digest>"``, ``"<digest>-gz"``, ``"<digest>-br"``), chosen by
  ``Accept-Encoding`` (q-values honoured, brotli first on a tie), with
  ``Vary: Accept-Encoding`` wherever there is a choice.
- ``Range`` (one range of bytes) is answered from the identity representation
  whatever ``Accept-Encoding`` says: a byte range of a compressed variant is
  useless to a client that resumes or seeks. Several ranges get the whole
  representation (200), as RFC 9110 allows.
- Hashed vite assets are ``immutable`` for a year; everything else (HTML, the
  app's own unhashed files, the 404 page) is ``no-cache``: revalidated, cheap
  with the ETag.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import blake3

from ..cache.store import Artifact
from ..errors import CorruptArtifactError
from ..types import Receive, Scope, Send
from .headers import (
    BR,
    GZIP,
    IDENTITY,
    RangeNotSatisfiable,
    byte_range,
    encoding_preferences,
    etag_matches,
    if_range_matches,
)
from .prefix import is_safe_path, relative_path
from .rewrite import (
    has_icon_link,
    icon_link,
    inject_meta,
    meta_tag,
    no_icon_link,
    replace_sentinel,
)
from .routes import RouteTable

brotli: ModuleType | None
try:
    import brotli  # type: ignore[no-redef]
except ImportError:  # optional: gzip alone is fine
    brotli = None

__all__ = [
    "ArtifactFiles",
    "Request",
    "Response",
    "StaticSite",
    "plain_response",
    "request_of",
    "send_plain",
    "send_response",
]

Headers = tuple[tuple[bytes, bytes], ...]

_PUBLIC = "public/"
_IMMUTABLE = b"public, max-age=31536000, immutable"
_REVALIDATE = b"no-cache"
_HTML = "text/html"
# vite names its output "<name>-<8 chars of base64url hash>.<ext>" under /assets/.
_HASHED = re.compile(r"^/assets/.+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$")
_COMPRESSIBLE = (
    "text/",
    "javascript",
    "json",
    "xml",
    "svg",
    "wasm",
    "icon",
    "font/ttf",
    "font/otf",
)
# Smaller files gain nothing from compression: headers dominate.
_MIN_COMPRESS = 256
# Keep a variant only when it saves at least 5% (WhiteNoise's rule).
_WORTH = 0.95
GZIPIP_LEVEL = 6
# Quality 6 is within ~10% of quality 11's size at ~1/50 of its time, and
# every worker compresses when it starts and at each new prefix.
_BROTLI_QUALITY = 6


def _compressible(content_type: str, size: int) -> bool:
    return size >= _MIN_COMPRESS and any(t in content_type for t in _COMPRESSIBLE)


def _gzip(data: bytes) -> bytes | None:
    # mtime=0 keeps the bytes (and so the ETag of the variant) stable.
    packed = gzip.compress(data, compresslevel=GZIPIP_LEVEL, mtime=0)
    return packed if len(packed) < len(data) * _WORTH else None


def _brotli(data: bytes) -> bytes | None:
    if brotli is None:
        return None
    packed: bytes = brotli.compress(data, quality=_BROTLI_QUALITY)
    return packed if len(packed) < len(data) * _WORTH else None


class _Raw:
    """One public file of an artifact; compressed forms made on first use.

    Reflex ships ``.gz`` sidecars; brotli (and gzip where no sidecar exists)
    is computed the first time a client asks for it, then kept: startup
    never pays for compression nobody requests.
    """

    __slots__ = ("_packed", "content_type", "data", "digest", "sentinels")

    def __init__(
        self,
        data: bytes,
        digest: str,
        content_type: str,
        sentinels: int,
        sidecars: dict[bytes, bytes],
    ) -> None:
        self.data = data
        self.digest = digest
        self.content_type = content_type
        self.sentinels = sentinels
        self._packed: dict[bytes, bytes | None] = dict(sidecars)

    @property
    def compressible(self) -> bool:
        return _compressible(self.content_type, len(self.data))

    def packed(self, coding: bytes) -> bytes | None:
        """The file in ``coding`` (gzip or br), or None if not worth it."""
        if coding not in self._packed:
            self._packed[coding] = _compress(coding, self.data) if self.compressible else None
        return self._packed[coding]


def _compress(coding: bytes, data: bytes) -> bytes | None:
    return _gzip(data) if coding == GZIP else _brotli(data)


class ArtifactFiles:
    """The public files of one artifact, keyed by URL path.

    Built from the bytes that were verified against the manifest
    (:func:`.verify.read_verified`), never read again from disk: what was
    checked is what is served.

    Raises:
        CorruptArtifactError: If a file the manifest lists is not in ``contents``.
    """

    def __init__(self, artifact: Artifact, contents: Mapping[str, bytes]) -> None:
        self.artifact = artifact
        files = artifact.manifest.files

        def read(rel: str) -> bytes:
            try:
                return contents[rel]
            except KeyError:
                raise CorruptArtifactError(
                    f"{artifact.path}: {rel!r} was not verified; refusing to serve it"
                ) from None

        self.raw: dict[str, _Raw] = {}
        for rel, entry in files.items():
            if not rel.startswith(_PUBLIC) or rel.endswith((".gz", ".br")):
                continue
            data = read(rel)
            sidecars: dict[bytes, bytes] = {}
            # Files with a sentinel are recompressed per prefix; HTML too (the <meta>).
            if not entry.sentinels and not entry.content_type.startswith(_HTML):
                for coding, suffix in ((GZIP, ".gz"), (BR, ".br")):
                    if rel + suffix in files:
                        sidecars[coding] = read(rel + suffix)
            url = "/" + rel[len(_PUBLIC) :]
            self.raw[url] = _Raw(data, entry.digest, entry.content_type, entry.sentinels, sidecars)
        self.routes = RouteTable(artifact.manifest.routes)


class Request(NamedTuple):
    """The facts of a request that a static response depends on.

    Attributes:
        method: ``GET``, ``HEAD``, ...
        path: Below the prefix: ``""``, ``"/about"``, ``"/assets/x.js"``.
        accept_encoding: The ``Accept-Encoding`` value, if sent (as for the rest).
        if_none_match: ``If-None-Match``.
        range: ``Range``.
        if_range: ``If-Range``.
    """

    method: str
    path: str
    accept_encoding: bytes | None = None
    if_none_match: bytes | None = None
    range: bytes | None = None
    if_range: bytes | None = None

    @classmethod
    def from_scope(cls, scope: Scope, path: str) -> Request:
        """The facts of an HTTP scope, with ``path`` below the prefix; one pass over the headers."""
        return request_of(scope, path)


_new_request = tuple.__new__


def request_of(scope: Scope, path: str) -> Request:
    """:meth:`Request.from_scope`, without a method lookup per request (the hot path)."""
    accept = inm = ranges = if_range = None
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            accept = value
        elif name == b"if-none-match":
            inm = value
        elif name == b"range":
            ranges = value
        elif name == b"if-range":
            if_range = value
    # tuple.__new__ directly: the generated __new__ costs a Python call per request.
    return _new_request(Request, (scope["method"], path, accept, inm, ranges, if_range))  # type: ignore[no-any-return]


class Response(NamedTuple):
    """A response to send: status, headers (as ASGI wants them) and the body."""

    status: int
    headers: Headers
    body: bytes


def plain_response(status: int, text: bytes, extra: Headers = ()) -> Response:
    """A short ``text/plain`` response (errors the host answers itself)."""
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode("ascii")),
        *extra,
    )
    return Response(status, headers, text)


_METHOD_NOT_ALLOWED = Response(405, ((b"allow", b"GET, HEAD"), (b"content-length", b"0")), b"")


@dataclass(frozen=True)
class _Variant:
    """One representation, with its responses made once: GET, HEAD and 304."""

    body: bytes
    etag: bytes
    get: Response
    head: Response
    not_modified: Response

    @property
    def headers(self) -> Headers:
        """The headers of a full (200 or 404) response."""
        return self.get.headers


class _Resource:
    """One response of a prefix: the identity variant now, compressed ones on demand."""

    __slots__ = (
        "_common",
        "_content_type",
        "_made",
        "_pack",
        "_tag",
        "identity",
        "range_headers",
        "status",
    )

    def __init__(
        self,
        status: int,
        body: bytes,
        digest: str,
        content_type: bytes,
        common: Headers,
        pack: Callable[[bytes], bytes | None] | None,
    ) -> None:
        self.status = status
        self._content_type = (b"content-type", content_type)
        self._common = common
        self._tag = digest[:32]
        self._pack = pack
        self._made: dict[bytes, _Variant | None] = {}
        self.identity = self._variant(IDENTITY, body)
        self.range_headers: Headers = (
            self._content_type,
            (b"etag", self.identity.etag),
            *common,
            (b"accept-ranges", b"bytes"),
        )

    def _variant(self, coding: bytes, body: bytes) -> _Variant:
        suffix = "" if coding == IDENTITY else "-" + coding.decode()
        etag = f'"{self._tag}{suffix}"'.encode("ascii")
        headers = [
            self._content_type,
            (b"content-length", str(len(body)).encode("ascii")),
            (b"etag", etag),
        ]
        headers += self._common
        if coding == IDENTITY:
            if self.status == 200:
                headers.append((b"accept-ranges", b"bytes"))
        else:
            headers.append((b"content-encoding", coding))
        full = tuple(headers)
        return _Variant(
            body,
            etag,
            Response(self.status, full, body),
            Response(self.status, full, b""),
            Response(304, ((b"etag", etag), *self._common), b""),
        )

    @property
    def compressible(self) -> bool:
        """Whether compressed variants may exist (then responses vary on Accept-Encoding)."""
        return self._pack is not None

    def variant(self, coding: bytes) -> _Variant | None:
        """The variant in ``coding``; compressed once, on first request, then kept."""
        if coding == IDENTITY:
            return self.identity
        if self._pack is None:
            return None
        if coding not in self._made:
            body = self._pack(coding)
            self._made[coding] = None if body is None else self._variant(coding, body)
        return self._made[coding]

    @property
    def variants(self) -> dict[bytes, _Variant]:
        """Every variant that exists (computing the missing ones): for tests and tools."""
        found = {IDENTITY: self.identity}
        for coding in (GZIP, BR):
            if (variant := self.variant(coding)) is not None:
                found[coding] = variant
        return found

    def respond(self, request: Request) -> Response:
        """Decide the response to ``request``: no I/O, and every header parsed in linear time.

        Order, as RFC 9110 §13.2.2 has it: method, then the representation
        (``Accept-Encoding``; identity when a range is asked), then
        ``If-None-Match`` (304), then ``Range`` under ``If-Range`` (206, 416).
        """
        method = request.method
        if method != "GET" and method != "HEAD":
            return _METHOD_NOT_ALLOWED
        ranged = request.range is not None and method == "GET"
        variant = self.identity
        if request.accept_encoding is not None and self._pack is not None and not ranged:
            for coding in encoding_preferences(request.accept_encoding):
                if (found := self.variant(coding)) is not None:
                    variant = found
                    break
        if self.status != 200:
            return variant.head if method == "HEAD" else variant.get
        if request.if_none_match is not None and etag_matches(request.if_none_match, variant.etag):
            return variant.not_modified
        if ranged and (
            request.if_range is None or if_range_matches(request.if_range, variant.etag)
        ):
            assert request.range is not None  # for mypy: ranged says so
            size = len(variant.body)
            try:
                span = byte_range(request.range, size)
            except RangeNotSatisfiable:
                return Response(
                    416,
                    (
                        (b"content-range", f"bytes */{size}".encode("ascii")),
                        (b"content-length", b"0"),
                        (b"accept-ranges", b"bytes"),
                    ),
                    b"",
                )
            if span is not None:
                start, end = span
                part = variant.body[start : end + 1]
                headers = (
                    *self.range_headers,
                    (b"content-range", f"bytes {start}-{end}/{size}".encode("ascii")),
                    (b"content-length", str(len(part)).encode("ascii")),
                )
                return Response(206, headers, part)
        return variant.head if method == "HEAD" else variant.get


def _resource(url: str, raw: _Raw, prefix: str, head: bytes, status: int = 200) -> _Resource:
    is_html = raw.content_type.startswith(_HTML)
    pack: Callable[[bytes], bytes | None] | None
    if raw.sentinels or is_html:
        data = replace_sentinel(raw.data, prefix)
        if is_html:
            data = inject_meta(data, head)
        digest = blake3.blake3(data).hexdigest()
        rewritten = data
        memo: dict[bytes, bytes | None] = {}

        def pack_rewritten(coding: bytes) -> bytes | None:
            if coding not in memo:
                memo[coding] = _compress(coding, rewritten)
            return memo[coding]

        pack = pack_rewritten if _compressible(raw.content_type, len(data)) else None
    else:
        data, digest = raw.data, raw.digest
        pack = raw.packed if raw.compressible else None
    cache = _IMMUTABLE if status == 200 and not is_html and _HASHED.match(url) else _REVALIDATE
    common: Headers = ((b"cache-control", cache),)
    if pack is not None:
        common += ((b"vary", b"Accept-Encoding"),)
    return _Resource(status, data, digest, raw.content_type.encode("latin-1"), common, pack)


class StaticSite:
    """Everything one prefix serves, computed once; a plain ASGI app.

    :meth:`respond` decides (a lookup and a few comparisons, no I/O);
    ``__call__`` sends what it decided. :class:`ReflexMount` calls
    :meth:`respond` itself, after its own path check and prefix rule.

    Args:
        files: The artifact's files.
        prefix: ``""`` or ``"/a/b"``: what the sentinel becomes.
        backend: The backend URL for the ``<meta>`` tag (``""``: the page's
            origin and prefix).
    """

    def __init__(self, files: ArtifactFiles, prefix: str, backend: str = "") -> None:
        self.prefix = prefix
        head = meta_tag(prefix, backend)
        icon = icon_link(prefix) if "/favicon.ico" in files.raw else no_icon_link()
        head_icon = head + icon
        resources: dict[str, _Resource] = {}
        for url, raw in files.raw.items():
            extra = (
                head_icon
                if raw.content_type.startswith(_HTML) and not has_icon_link(raw.data)
                else head
            )
            resources[url] = _resource(url, raw, prefix, extra)
        fallback = files.raw.get("/404.html") or files.raw["/index.html"]
        extra = head if has_icon_link(fallback.data) else head_icon
        # Reflex's 404.html is its SPA shell: with status 200 it renders any
        # client route (dynamic ones have no prerendered page), with 404 the
        # app's not-found page.
        self._spa = _resource("/404.html", fallback, prefix, extra, 200)
        self._not_found = _resource("/404.html", fallback, prefix, extra, 404)
        self._routes = files.routes
        # Page paths ("/about", "/about/", "") resolve with one lookup too.
        self._pages: dict[str, _Resource] = {}
        for url, resource in resources.items():
            for suffix in ("/index.html", ".html"):
                if url.endswith(suffix) and url != "/404.html":
                    page = url[: -len(suffix)]
                    if self._routes.match(page):
                        self._pages.setdefault(page, resource)
                        self._pages.setdefault(page + "/", resource)
        self._files = resources
        # Files and pages in one dictionary (a file wins over a page of the same
        # path): a request for either is one lookup.
        self._exact = {**self._pages, **resources}

    def resolve(self, path: str) -> _Resource:
        """The resource for ``path`` below the prefix (``""``, ``"/about"``, ...)."""
        if (found := self._exact.get(path)) is not None:
            return found
        if not is_safe_path(path):
            return self._not_found
        return self._spa if self._routes.match(path) else self._not_found

    def respond(self, request: Request) -> Response:
        """The response to ``request``, decided without I/O."""
        return (self._exact.get(request.path) or self.resolve(request.path)).respond(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an HTTP scope whose ``root_path`` is this site's mount point."""
        if scope["type"] != "http":
            return
        await send_response(send, self.respond(Request.from_scope(scope, relative_path(scope))))


async def send_plain(send: Send, status: int, text: bytes, extra: Headers = ()) -> None:
    """Send a short ``text/plain`` answer of the host's own (errors, refusals)."""
    await send_response(send, plain_response(status, text, extra))


async def send_response(send: Send, response: Response) -> None:
    """Send a decided response: start and body."""
    status, headers, body = response
    # A fresh list: middleware may mutate message["headers"] in place.
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})
