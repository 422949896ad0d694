"""Sizes and ages as people write them (``500M``, ``2GiB``, ``30d``), and back.

Pure functions; the CLI and the settings both parse through here.
"""

from __future__ import annotations

import re

__all__ = ["format_size", "format_time", "parse_age", "parse_size"]

# Binary multiples for the short forms too: "2G" of disk is what du -h means.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``1048576``, ``500K``, ``2G``, ``1.5GiB``, ``3GB`` (powers of 1000).

    Raises:
        ValueError: If ``text`` is not a size.
    """
    match = _NUMBER.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 500M, 2G, 1.5GiB, 1048576)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str) -> float:
    """Seconds in ``text``: ``90`` (seconds), ``45s``, ``30m``, ``12h``, ``7d``, ``2w``.

    Raises:
        ValueError: If ``text`` is not an age.
    """
    match = _NUMBER.match(text)
    unit = (match.group(2).lower() or "s") if match else None
    if match is None or unit not in _AGE_UNITS:
        raise ValueError(f"{text!r} is not an age (examples: 30m, 12h, 7d, 2w)")
    return float(match.group(1)) * _AGE_UNITS[unit]


def format_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(epoch: float) -> str:
    """A moment as people read it in a table: local time, ``2026-12-06 18:30:00``."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
