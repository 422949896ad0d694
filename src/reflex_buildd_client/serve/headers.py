"""Parsers of the request headers a static response depends on, safe on any input.

``Range``, ``If-None-Match`` / ``If-Range`` and ``Accept-Encoding`` come from
any client, so each parser here is pure, runs in time linear in its input
(no regular expression that can backtrack, no ``int()`` of an unbounded digit
string, which costs quadratic time and past 4300 digits raises), looks at no
more than a fixed number of bytes, and never raises except
:class:`RangeNotSatisfiable`, which is an answer (416), not a fault.

A value longer than its limit is treated as absent. HTTP allows that for each
of them: a server may ignore ``Range`` (RFC 9110 §14.2), a missing 304 only
costs the client a full response, and identity is acceptable to every client
that does not refuse it. The limits are far above what browsers and caches
send, so no real request meets them.
"""

from __future__ import annotations

import functools

__all__ = [
    "BR",
    "GZIP",
    "IDENTITY",
    "MAX_ACCEPT_ENCODING",
    "MAX_ETAGS",
    "MAX_RANGE",
    "RangeNotSatisfiable",
    "byte_range",
    "encoding_preferences",
    "etag_matches",
    "if_range_matches",
]

# "bytes=" and two 18-digit positions with some spaces fit in 64 bytes.
MAX_RANGE = 128
# Browsers send one tag back; a shared cache a handful (ours are 36 bytes).
MAX_ETAGS = 4096
# Browsers send about 30 bytes ("gzip, deflate, br, zstd"); the memo of parsed
# values holds at most 256 of them, so this also bounds its memory.
MAX_ACCEPT_ENCODING = 512
# More digits than any representation's size can have: such a position is
# "past every end", without converting it (int() of a long string is slow).
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS

GZIP = b"gzip"
BR = b"br"
IDENTITY = b"identity"
_RANK = {BR: 0, GZIP: 1, IDENTITY: 2}
_UNLISTED_IDENTITY = 1e-9


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the representation (answer 416)."""


def _position(digits: bytes) -> int | None:
    """A byte position, or None if ``digits`` is not one (empty, signs, spaces inside)."""
    # bytes.isdigit() is ASCII-only, so no other script's digits get through.
    if not digits.isdigit():
        return None
    digits = digits.lstrip(b"0")
    return int(digits or b"0") if len(digits) <= _MAX_DIGITS else _HUGE


def byte_range(header: bytes, size: int) -> tuple[int, int] | None:
    """The one range a ``Range`` header asks of ``size`` bytes, as (start, end) inclusive.

    Accepts ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` (unit case-insensitive,
    spaces around the parts), as RFC 9110 §14.1.2 defines them.

    Returns:
        None when the header is to be ignored (malformed, another unit, several
        ranges, longer than :data:`MAX_RANGE`): the whole representation is
        sent with 200.

    Raises:
        RangeNotSatisfiable: If the range lies wholly past the end.
    """
    if len(header) > MAX_RANGE:
        return None
    unit, equals, spec = header.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_text, dash, last_text = spec.partition(b"-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    last = _position(last_text) if last_text else None
    if last_text and last is None:
        return None
    if not first_text:
        if last is None:
            return None
        if last == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - last), size - 1
    start = _position(first_text)
    if start is None:
        return None
    if last is not None and last < start:
        return None  # invalid: ignored, not unsatisfiable
    if start >= size:
        raise RangeNotSatisfiable
    return start, size - 1 if last is None else min(last, size - 1)


def etag_matches(header: bytes, etag: bytes) -> bool:
    """Whether ``If-None-Match`` names ``etag``: weak comparison (RFC 9110 §13.1.2).

    A list, ``W/`` tags and ``*`` are understood; a value longer than
    :data:`MAX_ETAGS` never matches (the client gets the full response).
    """
    if header == etag:  # what browsers send back: the fast path
        return True
    if len(header) > MAX_ETAGS:
        return False
    if header.strip() == b"*":
        return True
    if etag not in header:  # one scan in C before any splitting
        return False
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def if_range_matches(header: bytes, etag: bytes) -> bool:
    """Whether ``If-Range`` lets a range be served: strong comparison with ``etag``.

    A date (we send no ``Last-Modified``) or a weak tag never matches, so the
    whole representation is sent, as RFC 9110 §13.1.5 requires.
    """
    return len(header) <= MAX_ETAGS and header.strip() == etag


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


def encoding_preferences(accept_encoding: bytes) -> tuple[bytes, ...]:
    """The acceptable codings among br, gzip and identity, best first.

    RFC 9110 §12.5.3: q-values rank; ``*`` covers codings not named; identity
    is acceptable unless refused by ``identity;q=0`` or ``*;q=0``, and comes
    after every accepted compression unless named with a higher q. Ties go to
    the smaller variant. A value longer than :data:`MAX_ACCEPT_ENCODING` is
    ignored: identity only.
    """
    if len(accept_encoding) > MAX_ACCEPT_ENCODING:
        return (IDENTITY,)
    return _preferences(accept_encoding)


# Memoized: clients send few distinct values, and the length limit above
# bounds what a hostile stream of distinct ones can pin.
@functools.lru_cache(maxsize=256)
def _preferences(accept_encoding: bytes) -> tuple[bytes, ...]:
    named: dict[bytes, float] = {}
    for part in accept_encoding.split(b","):
        coding, _, params = part.strip().partition(b";")
        coding = coding.strip().lower()
        if coding == b"x-gzip":
            coding = GZIP
        if coding and coding not in named:
            named[coding] = _quality(params)
    star = named.get(b"*")

    def quality(coding: bytes) -> float:
        if coding in named:
            return named[coding]
        if coding == IDENTITY:
            # Acceptable unless refused, but last: "gzip;q=0.8" is a client
            # asking for gzip, not one preferring identity (q=1 by default).
            return 0.0 if star == 0.0 else _UNLISTED_IDENTITY
        return star if star is not None else 0.0

    scored = [(quality(c), c) for c in _RANK]
    return tuple(c for q, c in sorted(scored, key=lambda s: (-s[0], _RANK[s[1]])) if q > 0)
