"""A plain-ASGI static server over an artifact, prepared once per prefix.

WhiteNoise's approach: every response is computed when a prefix is first
served (sentinel rewrite, ``<meta>`` injection, headers); a request is a
dictionary lookup and a ``send``. Compressed variants are made the first time
a client asks for each (then kept), so neither startup nor a new prefix pays
for brotli of files nobody requests compressed. Nothing is read from disk per
request, so no request path can reach a file outside the artifact: only the
keys of the dictionary exist, and :class:`ArtifactFiles` refuses an artifact
whose listed files resolve outside it (a symlink pointing out, ``..`` in the
manifest): an artifact is input, and a build never makes either.

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

import functools
import gzip
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import blake3

from .errors import CorruptArtifactError
from .prefix import is_safe_path
from .rewrite import (
    has_icon_link,
    icon_link,
    inject_meta,
    meta_tag,
    no_icon_link,
    replace_sentinel,
)
from .routes import RouteTable
from .store import Artifact
from .types import Receive, Scope, Send

brotli: ModuleType | None
try:
    import brotli  # type: ignore[no-redef]
except ImportError:  # optional: gzip alone is fine
    brotli = None

__all__ = ["ArtifactFiles", "StaticSite", "byte_range", "encoding_preferences"]

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
_GZIP_LEVEL = 6
# Quality 6 is within ~10% of quality 11's size at ~1/50 of its time, and
# every worker compresses when it starts and at each new prefix.
_BROTLI_QUALITY = 6

_GZ = b"gzip"
_BR = b"br"
_IDENTITY = b"identity"


def _compressible(content_type: str, size: int) -> bool:
    return size >= _MIN_COMPRESS and any(t in content_type for t in _COMPRESSIBLE)


def _gzip(data: bytes) -> bytes | None:
    # mtime=0 keeps the bytes (and so the ETag of the variant) stable.
    packed = gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
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
    return _gzip(data) if coding == _GZ else _brotli(data)


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
                for coding, suffix in ((_GZ, ".gz"), (_BR, ".br")):
                    if rel + suffix in files:
                        sidecars[coding] = read(rel + suffix)
            url = "/" + rel[len(_PUBLIC) :]
            self.raw[url] = _Raw(data, entry.digest, entry.content_type, entry.sentinels, sidecars)
        self.routes = RouteTable(artifact.manifest.routes)


@dataclass(frozen=True)
class _Variant:
    body: bytes
    headers: Headers  # of a 200 (or 404) response
    not_modified: Headers  # of a 304
    etag: bytes


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
        self.identity = self._variant(_IDENTITY, body)
        self.range_headers: Headers = (
            self._content_type,
            (b"etag", self.identity.etag),
            *common,
            (b"accept-ranges", b"bytes"),
        )

    def _variant(self, coding: bytes, body: bytes) -> _Variant:
        suffix = "" if coding == _IDENTITY else "-" + coding.decode()
        etag = f'"{self._tag}{suffix}"'.encode("ascii")
        headers = [
            self._content_type,
            (b"content-length", str(len(body)).encode("ascii")),
            (b"etag", etag),
        ]
        headers += self._common
        if coding == _IDENTITY:
            if self.status == 200:
                headers.append((b"accept-ranges", b"bytes"))
        else:
            headers.append((b"content-encoding", coding))
        return _Variant(body, tuple(headers), ((b"etag", etag), *self._common), etag)

    @property
    def compressible(self) -> bool:
        """Whether compressed variants may exist (then responses vary on Accept-Encoding)."""
        return self._pack is not None

    def variant(self, coding: bytes) -> _Variant | None:
        """The variant in ``coding``; compressed once, on first request, then kept."""
        if coding == _IDENTITY:
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
        found = {_IDENTITY: self.identity}
        for coding in (_GZ, _BR):
            if (variant := self.variant(coding)) is not None:
                found[coding] = variant
        return found


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


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


_RANK = {_BR: 0, _GZ: 1, _IDENTITY: 2}
_UNLISTED_IDENTITY = 1e-9


@functools.lru_cache(maxsize=256)
def encoding_preferences(accept_encoding: bytes) -> tuple[bytes, ...]:
    """The acceptable codings among br, gzip and identity, best first.

    RFC 9110 §12.5.3: q-values rank; ``*`` covers codings not named; identity
    is acceptable unless refused by ``identity;q=0`` or ``*;q=0``, and comes
    after every accepted compression unless named with a higher q. Ties go to
    the smaller variant. Memoized: clients send few distinct values.
    """
    named: dict[bytes, float] = {}
    for part in accept_encoding.split(b","):
        coding, _, params = part.strip().partition(b";")
        coding = coding.strip().lower()
        if coding == b"x-gzip":
            coding = _GZ
        if coding and coding not in named:
            named[coding] = _quality(params)
    star = named.get(b"*")

    def quality(coding: bytes) -> float:
        if coding in named:
            return named[coding]
        if coding == _IDENTITY:
            # Acceptable unless refused, but last: "gzip;q=0.8" is a client
            # asking for gzip, not one preferring identity (q=1 by default).
            return 0.0 if star == 0.0 else _UNLISTED_IDENTITY
        return star if star is not None else 0.0

    scored = [(quality(c), c) for c in _RANK]
    return tuple(c for q, c in sorted(scored, key=lambda s: (-s[0], _RANK[s[1]])) if q > 0)


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the representation (answer 416)."""


_RANGE = re.compile(rb"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def byte_range(header: bytes, size: int) -> tuple[int, int] | None:
    """The one range a ``Range`` header asks of ``size`` bytes, as (start, end) inclusive.

    Returns:
        None when the header is to be ignored (malformed, another unit, several
        ranges): the whole representation is sent with 200.

    Raises:
        RangeNotSatisfiable: If the range lies wholly past the end.
    """
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored, not unsatisfiable
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


def _etag_matches(header: bytes, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), as If-None-Match uses."""
    if header == etag:  # what browsers send back: the fast path
        return True
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
    """Everything one prefix serves, computed once.

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

    def resolve(self, path: str) -> _Resource:
        """The resource for ``path`` below the prefix (``""``, ``"/about"``, ...)."""
        if (found := self._files.get(path)) is not None or (
            found := self._pages.get(path)
        ) is not None:
            return found
        if not is_safe_path(path):
            return self._not_found
        return self._spa if self._routes.match(path) else self._not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Serve ``path`` for an HTTP scope.

        ``path`` is relative to the prefix and already checked by the caller
        (:class:`ReflexMount` answers unsafe paths with 400 before any routing);
        :meth:`resolve` would still map one to nothing but the 404 page.
        """
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await _send(send, 405, ((b"allow", b"GET, HEAD"), (b"content-length", b"0")), b"")
            return
        resource = self._files.get(path) or self.resolve(path)
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
        variant = resource.identity
        if (
            accept is not None
            and resource.compressible
            and not (ranges is not None and method == "GET")
        ):
            for coding in encoding_preferences(bytes(accept)):
                if (found := resource.variant(coding)) is not None:
                    variant = found
                    break
        status = resource.status
        if status == 200 and inm is not None and _etag_matches(inm, variant.etag):
            await _send(send, 304, variant.not_modified, b"")
            return
        if status == 200 and ranges is not None and method == "GET":
            if if_range is None or if_range.strip() == variant.etag:
                body = variant.body
                try:
                    span = byte_range(ranges, len(body))
                except RangeNotSatisfiable:
                    headers: Headers = (
                        (b"content-range", f"bytes */{len(body)}".encode()),
                        (b"content-length", b"0"),
                        (b"accept-ranges", b"bytes"),
                    )
                    await _send(send, 416, headers, b"")
                    return
                if span is not None:
                    start, end = span
                    part = body[start : end + 1]
                    headers = (
                        *resource.range_headers,
                        (b"content-range", f"bytes {start}-{end}/{len(body)}".encode()),
                        (b"content-length", str(len(part)).encode()),
                    )
                    await _send(send, 206, headers, part)
                    return
        await _send(send, status, variant.headers, b"" if method == "HEAD" else variant.body)


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    # A fresh list: middleware may mutate message["headers"] in place.
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})
