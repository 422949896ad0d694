"""Pure: parse JSON bytes from someone else within limits, before anything else looks at them.

A manifest comes from whoever could write the cache directory or the bucket,
so its bytes are hostile until parsed and checked. Python's ``json`` has no
limits of its own: ``[`` x 100000 raises ``RecursionError`` (not a
``ValueError``), ``NaN`` and ``Infinity`` are accepted, and the size is
whatever was read. :func:`load_bounded` checks, in this order and in C-speed
passes over the bytes:

1. the size (``max_bytes``), so nothing larger is ever decoded;
2. the nesting depth (``max_depth``), with strings taken out first, so no
   decoder recursion can run out of stack;
3. the JSON itself, with ``NaN``, ``Infinity`` and ``-Infinity`` refused.

Every refusal is one ``ValueError`` that says which limit was passed; callers
turn it into their own error (a corrupt local artifact, a refused remote one).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JSON_BRACKETS", "load_bounded", "nesting_depth_exceeds"]

# A JSON string: quotes around anything but quotes and backslashes, or escapes.
# Possessive, so a long string costs one linear pass and no backtracking.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
JSON_BRACKETS = b"[]{}"
# Everything but brackets goes; objects and arrays nest alike.
_KEEP_BRACKETS = bytes(b for b in range(256) if b not in JSON_BRACKETS)
_SAME_KIND = bytes.maketrans(b"{}", b"[]")


def nesting_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether the arrays and objects of JSON ``data`` nest deeper than ``max_depth``.

    Each pass removes the innermost (empty) pairs, one level per pass; what
    is left after ``max_depth`` passes is deeper than that (or unbalanced,
    which no JSON is). ``max_depth`` passes of ``bytes.replace``: no recursion,
    no per-byte Python loop.
    """
    brackets = _STRING.sub(b"", data).translate(_SAME_KIND, _KEEP_BRACKETS)
    if b"[" * (max_depth + 1) in brackets:
        return True  # the usual attack, found in one pass: that many opened in a row
    for _level in range(max_depth):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return True  # unbalanced: nothing to remove, yet something is left
        brackets = shorter
    return bool(brackets)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_bounded(data: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """The JSON value of ``data``, parsed only if it fits the limits (see the module doc).

    Raises:
        ValueError: If ``data`` is larger than ``max_bytes``, nests deeper than
            ``max_depth``, holds ``NaN``/``Infinity``, or is not JSON.
    """
    if len(data) > max_bytes:
        raise ValueError(f"{len(data)} bytes, more than the {max_bytes} allowed")
    if nesting_depth_exceeds(data, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels (or unbalanced)")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:  # cannot happen after the depth check; never a traceback anyway
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc.reason}") from None
