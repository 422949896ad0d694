"""One response of a prefix, with its representations (identity, gzip, br) made in advance.

Each encoding is its own representation with its own strong ETag (``"<digest>"``,
``"<digest>-gz"``, ``"<digest>-br"``); its GET, HEAD and 304 responses are built once, so a
request only picks one. :meth:`Resource.respond` is the decision, RFC 9110 §13.2.2's order,
without I/O; every header it reads is parsed in linear time (:mod:`.headers`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import blake3

from .compress import compress, compressible
from .files import PublicFile
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
from .http import Headers, Request, Response
from .rewrite import inject_meta, replace_sentinel

__all__ = ["Resource", "Variant", "make_resource"]

_IMMUTABLE = b"public, max-age=31536000, immutable"
_REVALIDATE = b"no-cache"
# vite names its output "<name>-<8 chars of base64url hash>.<ext>" under /assets/.
_HASHED = re.compile(r"^/assets/.+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$")
_METHOD_NOT_ALLOWED = Response(405, ((b"allow", b"GET, HEAD"), (b"content-length", b"0")), b"")


@dataclass(frozen=True)
class Variant:
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


class Resource:
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
        self._made: dict[bytes, Variant | None] = {}
        self.identity = self._variant(IDENTITY, body)
        self.range_headers: Headers = (
            self._content_type,
            (b"etag", self.identity.etag),
            *common,
            (b"accept-ranges", b"bytes"),
        )

    def _variant(self, coding: bytes, body: bytes) -> Variant:
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
        return Variant(
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

    def variant(self, coding: bytes) -> Variant | None:
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
    def variants(self) -> dict[bytes, Variant]:
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


def make_resource(
    url: str, raw: PublicFile, prefix: str, head: bytes, status: int = 200
) -> Resource:
    is_html = raw.is_html
    pack: Callable[[bytes], bytes | None] | None
    if raw.sentinels or is_html:
        data = replace_sentinel(raw.data, prefix)
        if is_html:
            data = inject_meta(data, head)
        digest = blake3.blake3(data).hexdigest()
        # Resource.variant keeps what this makes: one memo per prefix's resource.
        pack = (
            functools.partial(compress, data=data)
            if compressible(raw.content_type, len(data))
            else None
        )
    else:
        data, digest = raw.data, raw.digest
        pack = raw.packed if raw.compressible else None
    cache = _IMMUTABLE if status == 200 and not is_html and _HASHED.match(url) else _REVALIDATE
    common: Headers = ((b"cache-control", cache),)
    if pack is not None:
        common += ((b"vary", b"Accept-Encoding"),)
    return Resource(status, data, digest, raw.content_type.encode("latin-1"), common, pack)
