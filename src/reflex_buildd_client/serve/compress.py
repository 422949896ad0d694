"""Compressed variants of served files: which files, which levels, and when it is worth it.

WhiteNoise's rules: only types that compress (text, JS, JSON, SVG, WASM, icons, TrueType
and OpenType fonts), only files of at least 256 bytes (below that the headers dominate), and
a variant is kept only when it saves at least 5%. Pure functions: the callers decide what to
memoize (an artifact's unrewritten files once per process, a rewritten file once per prefix).
"""

from __future__ import annotations

import gzip
from types import ModuleType

from .headers import GZIP

brotli: ModuleType | None
try:
    import brotli  # type: ignore[no-redef]
except ImportError:  # optional: gzip alone is fine
    brotli = None

__all__ = ["BROTLI_QUALITY", "GZIP_LEVEL", "compress", "compressible"]

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
GZIP_LEVEL = 6
# Quality 6 is within ~10% of quality 11's size at ~1/50 of its time, and
# every worker compresses when it starts and at each new prefix.
BROTLI_QUALITY = 6


def compressible(content_type: str, size: int) -> bool:
    """Whether a file of this type and size may have compressed variants."""
    return size >= _MIN_COMPRESS and any(t in content_type for t in _COMPRESSIBLE)


def compress(coding: bytes, data: bytes) -> bytes | None:
    """``data`` in ``coding`` (``gzip`` or ``br``), or None when that is not worth it."""
    return _gzip(data) if coding == GZIP else _brotli(data)


def _gzip(data: bytes) -> bytes | None:
    # mtime=0 keeps the bytes (and so the ETag of the variant) stable.
    packed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    return packed if len(packed) < len(data) * _WORTH else None


def _brotli(data: bytes) -> bytes | None:
    if brotli is None:
        return None
    packed: bytes = brotli.compress(data, quality=BROTLI_QUALITY)
    return packed if len(packed) < len(data) * _WORTH else None
