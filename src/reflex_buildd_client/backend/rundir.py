"""The runtime directory of process mode: private, checked without following links.

Process mode keeps, per backend child, a lock (who supervises the child), a
secret (what the host shows the child when it asks its router) and the
child's Unix socket in ``$XDG_RUNTIME_DIR/reflex-buildd-<uid>`` or, when that
variable is unset (usual for system services), ``$TMPDIR/reflex-buildd-<uid>``.
A temp directory is shared with every local user, so that name is a target:
another user can create it first, as a link to a directory of ours or of its
own, and swap the link later, to receive the host's forwarded requests
(cookies included) on its own socket, or to make the host write through a
link into a file of ours.

So, as OpenSSH's ``StrictModes`` and systemd's ``RuntimeDirectory=`` do:

- the directory is created with mode 0700 (``mkdir`` relative to a descriptor
  of its parent), then opened with ``O_NOFOLLOW | O_DIRECTORY`` and checked on
  that open descriptor (``fstat``: a real directory, owned by this uid, no
  access for group or others). Anything else is refused with
  :class:`RuntimeDirError`, naming the path and what to do; it is never used;
- everything inside is reached through that descriptor, never through the
  path again: files are opened with ``dir_fd`` and ``O_NOFOLLOW`` (a new file
  with ``O_EXCL``), renamed and removed with ``dir_fd``, and sockets are bound
  and connected through ``/proc/self/fd/<fd>/<name>``, which the kernel
  resolves through the open descriptor (Linux has no ``bindat``). A path
  swapped after the check therefore changes nothing: the directory checked is
  the directory used, for the life of the process.

Who can do what is in ``docs/security.md`` (the local-user row).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
from pathlib import Path

from ..errors import ReflexBuilddError

__all__ = ["RuntimeDir", "RuntimeDirError"]

# The suffixes of the files of one child; the stem names the child.
SUFFIXES = (".sock", ".secret", ".secret.new", ".lock")
_PROC_FD = Path("/proc/self/fd")


class RuntimeDirError(ReflexBuilddError, PermissionError):
    """The runtime directory (or a file in it) is not private to this user: refused."""


class RuntimeDir:
    """The runtime directory, held open and checked; every name is resolved through it.

    Args:
        base: ``XDG_RUNTIME_DIR``, else the temp directory (``Settings.runtime_dir``).

    Raises:
        RuntimeDirError: If the directory is a link, not a directory, not
            owned by this user, or open to group or others.
    """

    def __init__(self, base: Path) -> None:
        self.path = Path(base) / f"reflex-buildd-{os.getuid()}"
        self.fd = _open_private(self.path)

    def close(self) -> None:
        """Close the directory's descriptor (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def address(self, name: str) -> str:
        """A path for ``bind``/``connect`` of ``name`` that resolves through the held descriptor.

        Off Linux (no ``/proc``) it is the plain path: the directory was
        checked and is private, but a swap of a parent could redirect it.
        """
        if _PROC_FD.is_dir():
            return f"{_PROC_FD}/{self.fd}/{name}"
        return str(self.path / name)

    # -- files ---------------------------------------------------------------

    def open_lock(self, name: str) -> int:
        """Open (or create) the lock file ``name``: a regular file of ours, never a link."""
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise RuntimeDirError(
                f"{self.path / name} is a link; refusing to follow it: remove it and start again"
            ) from None
        try:
            self._check_file(name, fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def is_current(self, name: str, fd: int) -> bool:
        """Whether the open ``fd`` is still the file named ``name`` (not removed and replaced).

        A lock taken on a file that its last owner removed meanwhile locks
        nothing anyone else sees: the taker must start again.
        """
        try:
            named = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def write_secret(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data``, mode 0600: a new file (``O_EXCL``), renamed over it."""
        staged = name + ".new"
        self.remove(staged)  # a crash's leftover (or a planted link): removed, not followed
        fd = os.open(
            staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self.fd
        )
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staged, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def read_secret(self, name: str) -> bytes:
        """The contents of ``name`` (b"" if missing); a link or a foreign file is not read."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.fd)
        except OSError:
            return b""
        with os.fdopen(fd, "rb") as file:
            if not self._is_ours(os.fstat(file.fileno())):
                return b""
            return file.read(4096)

    def remove(self, *names: str) -> None:
        """Remove each of ``names`` that exists (a link is removed, never followed)."""
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self.fd)

    def names(self) -> list[str]:
        """The names in the directory."""
        return os.listdir(self.fd)

    # -- sockets -------------------------------------------------------------

    def listen(self, name: str) -> socket.socket:
        """A Unix socket listening at ``name`` (a leftover of that name is removed first)."""
        self.remove(name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.address(name))
            sock.listen(2048)  # uvicorn's default backlog
        except BaseException:
            sock.close()
            raise
        return sock

    # -- leftovers -----------------------------------------------------------

    def sweep(self) -> list[str]:
        """Remove the files of children whose supervisor is gone (a crash's leftovers).

        A stem is swept only under its own lock, taken without waiting: a live
        supervisor holds its lock for as long as its files are in use, so only
        dead ones are removed. Returns the stems removed.
        """
        stems = {
            entry[: -len(suffix)]
            for entry in self.names()
            for suffix in SUFFIXES
            if entry.endswith(suffix) and len(entry) > len(suffix)
        }
        swept = []
        for stem in sorted(stems):
            try:
                lock = self.try_lock(stem + ".lock")
            except RuntimeDirError:
                continue  # not ours to judge here: the supervisor of that name refuses it
            if lock is not None:
                self.release(stem, lock)
                swept.append(stem)
        return swept

    def try_lock(self, name: str) -> int | None:
        """The descriptor of lock ``name``, locked (``flock``, not waiting), or None if taken."""
        try:
            fd = self.open_lock(name)
        except RuntimeDirError:
            raise
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if not self.is_current(name, fd):
            os.close(fd)
            return None
        return fd

    def release(self, stem: str, lock_fd: int) -> None:
        """Remove the files of ``stem`` (socket, secret, lock, in that order), then unlock.

        Called only by the holder of the stem's lock, so nobody else is using
        them; the lock goes last, and anyone who locked the removed file sees
        that it is no longer current (:meth:`is_current`).
        """
        try:
            self.remove(stem + ".sock", stem + ".secret", stem + ".secret.new", stem + ".lock")
        finally:
            os.close(lock_fd)

    # -- checks --------------------------------------------------------------

    def _is_ours(self, info: os.stat_result) -> bool:
        return info.st_uid == os.getuid() and stat.S_ISREG(info.st_mode)

    def _check_file(self, name: str, fd: int) -> None:
        info = os.fstat(fd)
        if not self._is_ours(info) or info.st_mode & 0o077:
            raise RuntimeDirError(
                f"{self.path / name} is not a private file of uid {os.getuid()}; "
                f"refusing to use it: remove {self.path} and start again"
            )


def _open_private(path: Path) -> int:
    """Create ``path`` (mode 0700) if missing; open it without following a link; check it."""
    hint = "remove it (or set XDG_RUNTIME_DIR or TMPDIR to a directory of your own) and start again"
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise RuntimeDirError(
            f"cannot open {path.parent} for the runtime directory ({exc.strerror}): "
            f"set XDG_RUNTIME_DIR or TMPDIR to a directory of your own"
        ) from None
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path.name, 0o700, dir_fd=parent)
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise RuntimeDirError(
                    f"runtime directory {path} is a link or not a directory; refusing it: {hint}"
                ) from None
            raise RuntimeDirError(
                f"cannot open the runtime directory {path} ({exc.strerror}): {hint}"
            ) from None
    finally:
        os.close(parent)
    info = os.fstat(fd)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise RuntimeDirError(
            f"runtime directory {path} is not private to uid {os.getuid()} (owner uid "
            f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}); refusing it: {hint}"
        )
    return fd
