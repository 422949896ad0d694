"""Editors' and tools' temporary files, recognised by name (pure).

Editors save by writing a temporary file and renaming it over the real one,
or drop swap, lock and backup files beside it. Those names must neither
reach the daemon's change list (they would make every save look like two
changes) nor the key (a build that starts while one exists would hash a file
that is gone a moment later). The patterns follow watchfiles' ``DefaultFilter``
(``*.sw?``, ``*~``, ``.#*``, JetBrains' ``*___jb_*___``, ``flycheck_*``,
``.DS_Store``) plus what sed, vim, gedit, emacs, Kate, LibreOffice and NFS
leave behind.
"""

from __future__ import annotations

import re

__all__ = ["EDITOR_TEMP_PATTERNS", "is_editor_temp"]

EDITOR_TEMP_PATTERNS = (
    r"\.sw[a-z]$",  # vim swap files: .x.py.swp, .swo, .swx
    r"~$",  # backups: x.py~ (vim, emacs, gedit)
    r"^\.#",  # emacs lock files: .#x.py
    r"^#.*#$",  # emacs autosave: #x.py#
    r"^4913$",  # vim's probe that a directory is writable
    r"^sed[A-Za-z0-9]{6}$",  # GNU sed -i writes sedXXXXXX, then renames it
    r"___jb_(tmp|old|bak)___$",  # JetBrains safe write
    r"^flycheck_",  # emacs flycheck copies
    r"^\.goutputstream-",  # gedit and other GIO "safe save"s
    r"\.kate-swp$",  # Kate
    r"^\.~lock\..*#$",  # LibreOffice
    r"^\.nfs[0-9a-f]+$",  # NFS "silly rename" of a file still open
    r"^\.DS_Store$",  # macOS Finder
    r"\.tmp$",
    r"\.crswap$",  # Chromium's File System Access API
)

_TEMP = re.compile("|".join(f"(?:{p})" for p in EDITOR_TEMP_PATTERNS))


def is_editor_temp(name: str) -> bool:
    """Whether the file name ``name`` (no directory) is an editor's or tool's temp file."""
    return _TEMP.search(name) is not None
