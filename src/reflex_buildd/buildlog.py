"""Build logs that point at the user's code, and the phase a running build is in.

Pure text in, text out (:class:`PhaseTracker` only reads the log as it grows):

- :func:`clean` makes a log readable anywhere: no ANSI colour or cursor codes
  (they reach files and pipes as raw escapes), progress bars redrawn with
  ``\\r`` reduced to their last state, and every path into the build's
  snapshot (``<cache>/v1/tmp/build-.../src/app/app.py``, deleted once the
  build ends) mapped back to the project (``<project>/app/app.py``), which is
  the file the user can open and fix.
- :func:`error_tail` keeps the end of the log, starting at the last
  traceback's ``Traceback (most recent call last):`` header when there is
  one, so the error reads whole rather than from the middle of a frame list.
- :func:`user_frame` names the innermost frame in the user's own files, for a
  one-line error message; :func:`error_line` names the error itself when no
  frame is the user's (a typo in ``app_name``: Reflex fails in its own code,
  after printing ``Success: Initialized ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PhaseTracker",
    "UserFrame",
    "clean",
    "error_line",
    "error_tail",
    "phase_of",
    "user_frame",
]

# CSI sequences (colours, cursor moves, erase), OSC sequences (titles, links)
# and the few two-character escapes terminals use.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_MAX_TAIL = 80

# Lines of Reflex's export output that start a phase, and what to call it.
_PHASES = (
    (re.compile(r"^─+ Initializing"), "initializing the web directory"),
    (re.compile(r"^(?:Info: )?Installing"), "installing frontend packages"),
    (re.compile(r"^─+ Compiling"), "importing the app"),
    (re.compile(r"^Compiling:"), "compiling pages"),
    (re.compile(r"^Creating Production Build"), "bundling the frontend (vite)"),
    (re.compile(r"^reflex-buildd: prefixed"), "prefixing asset URLs"),
)


def clean(text: str, *, snapshot: str | None = None, project: str | None = None) -> str:
    """``text`` without terminal codes, with snapshot paths mapped to ``project``."""
    text = _ANSI.sub("", text)
    # A progress bar redraws its line with \r: keep what was drawn last.
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n"))
    if snapshot and project:
        text = text.replace(snapshot.rstrip("/") + "/", project.rstrip("/") + "/")
    return text


def error_tail(text: str, lines: int = 40) -> str:
    """The end of a (clean) log, from the last traceback's header when there is one.

    At most ``_MAX_TAIL`` lines: a deep traceback keeps its header, an
    ellipsis, and its last frames and the exception.
    """
    all_lines = text.rstrip().splitlines()
    start = max(0, len(all_lines) - lines)
    for i in range(len(all_lines) - 1, -1, -1):
        if all_lines[i].strip() == _TRACEBACK:
            start = min(start, i)
            break
    tail = all_lines[start:]
    if len(tail) > _MAX_TAIL:
        dropped = len(tail) - _MAX_TAIL + 1
        kept = tail[-(_MAX_TAIL - 2) :]
        tail = [tail[0], f"  ... ({dropped} lines of the traceback left out)", *kept]
    return "\n".join(tail)


@dataclass(frozen=True)
class UserFrame:
    """The innermost traceback frame in the user's files, and the exception."""

    file: str
    line: int
    function: str
    error: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" + (
            f", in {self.function}" if self.function else ""
        )
        return f"{where}: {self.error}" if self.error else where


def user_frame(text: str, project: Path) -> UserFrame | None:
    """The last frame of the last traceback that lies in ``project`` (a clean log)."""
    lines = text.rstrip().splitlines()
    header = max((i for i, line in enumerate(lines) if line.strip() == _TRACEBACK), default=None)
    if header is None:
        return None
    found: UserFrame | None = None
    error = ""
    root = str(project).rstrip("/") + "/"
    for line in lines[header + 1 :]:
        match = _FRAME.match(line)
        if match is not None:
            if match["file"].startswith(root):
                rel = match["file"][len(root) :]
                found = UserFrame(rel, int(match["line"]), match["func"] or "", "")
            continue
        if line and not line[0].isspace():
            error = line.strip()  # the exception line ends the frames
            break
    if found is None:
        return None
    return UserFrame(found.file, found.line, found.function, error)


# Lines Reflex (and bun, vite) print for an error without a traceback.
_ERROR_LINE = re.compile(r"^(?:error|\[?ERROR\]?|fatal)\b[:\s]", re.IGNORECASE)


def error_line(text: str) -> str | None:
    """The error a failed build's (clean) log ends with, as one line.

    The exception line of the last traceback (``ModuleNotFoundError: Module
    x.x not found. Ensure app_name=...``); without a traceback, the last line
    that says it is an error. None when the log names no error.
    """
    lines = text.rstrip().splitlines()
    header = max((i for i, line in enumerate(lines) if line.strip() == _TRACEBACK), default=None)
    if header is not None:
        for line in lines[header + 1 :]:
            if line and not line[0].isspace() and not _FRAME.match(line):
                return line.strip()
    for line in reversed(lines):
        if _ERROR_LINE.match(line.strip()):
            return line.strip()
    return None


def phase_of(line: str) -> str | None:
    """The build phase a line of Reflex's export output starts, if any."""
    for pattern, phase in _PHASES:
        if pattern.search(line):
            return phase
    return None


class PhaseTracker:
    """Follows a growing build log and tells when its phase changes."""

    def __init__(self, log: Path) -> None:
        self._log = log
        self._offset = 0
        self._partial = ""
        self.phase: str | None = None

    def poll(self) -> str | None:
        """Read what the log gained; return the new phase if it changed."""
        try:
            with self._log.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return None
        if not data:
            return None
        self._offset += len(data)
        text = self._partial + _ANSI.sub("", data.decode("utf-8", errors="replace"))
        *complete, self._partial = re.split(r"[\r\n]", text)
        changed = None
        for line in complete:
            phase = phase_of(line.strip())
            if phase is not None and phase != self.phase:
                self.phase = changed = phase
        return changed
