"""Installed distributions: which versions a build depends on (reflex*, and what the app imports)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import blake3

from ..cache.atomic import write_atomic
from ..cache.store import Cache
from ..project import Project

if TYPE_CHECKING:
    from importlib.metadata import Distribution

__all__ = ["external_imports", "local_modules", "versions_of"]

# Distributions that never change a build's output (ours is in the recipe).
_NOT_BUILD_DISTS = frozenset({"reflex-buildd", "reflex-hosting-cli"})


# What installed-distribution metadata is called in a sys.path entry.
_METADATA = (".dist-info", ".egg-info")


def _holds_metadata(path: str) -> bool:
    """Whether the sys.path entry ``path`` holds any distribution's metadata
    (a zip file or anything not listable counts as holding some)."""
    try:
        with os.scandir(path) as entries:
            return any(entry.name.endswith(_METADATA) for entry in entries)
    except OSError:
        return True


def _site_state() -> tuple[tuple[str, int], ...]:
    # Installing, upgrading or removing a distribution adds or removes a
    # *.dist-info directory, which changes its parent directory's mtime. Only
    # entries that hold such metadata count (the scan finds nothing in the
    # others): a host's working directory is on sys.path, is written whenever
    # the host runs (a log, .states/, uploads) and differs between hosts, and
    # counting it made every start scan every distribution again, about 0.1 s
    # of a host's start on a hit (docs/benchmarks.md). Which entries hold
    # metadata is looked at each time, so a distribution installed into one
    # that had none (pip install --target .) still counts.
    state = []
    for entry in sys.path:
        path = entry or "."
        try:
            if _holds_metadata(path):
                state.append((entry, os.stat(path).st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def _dist_name(dist: Distribution) -> str:
    return (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")


def _scan_installed() -> tuple[dict[str, str], dict[str, list[str]]]:
    versions: dict[str, str] = {}
    # Imported here: a warm key reads the index below and never needs it.
    from importlib import metadata

    for dist in metadata.distributions():
        versions.setdefault(_dist_name(dist), dist.version)
    tops = {
        name: sorted({n.lower().replace("_", "-").replace(".", "-") for n in dists})
        for name, dists in metadata.packages_distributions().items()
    }
    return versions, tops


@functools.lru_cache(maxsize=4)
def _installed(
    state: tuple[tuple[str, int], ...], index: Cache | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(distribution -> version, top-level import name -> distributions).

    Parsing every distribution's metadata costs tens of milliseconds, more than
    keying a warm project, so the result is kept on disk per site state (the
    paths and mtimes of the ``sys.path`` entries that hold distributions'
    metadata): a host re-reads one small file.
    """
    if index is None:
        return _scan_installed()
    digest = blake3.blake3(json.dumps([sys.executable, state]).encode()).hexdigest()[:24]
    path = index.site_index_path(digest)
    try:
        data = json.loads(path.read_text())
        return dict(data["versions"]), {k: list(v) for k, v in data["tops"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # a missing or damaged index only means "scan"
    versions, tops = _scan_installed()
    try:
        # Derived data, rebuilt on loss: not worth an fsync.
        write_atomic(path, json.dumps({"versions": versions, "tops": tops}).encode(), durable=False)
    except OSError:
        pass  # a read-only cache still keys correctly, only slower
    return versions, tops


def local_modules(files: Iterable[str]) -> dict[str, list[str]]:
    """Top-level import name -> the project's .py files that make it up."""
    modules: dict[str, list[str]] = {}
    for rel in files:
        if not rel.endswith(".py"):
            continue
        head, sep, _ = rel.partition("/")
        name = head if sep else head[:-3]
        if name.isidentifier():
            modules.setdefault(name, []).append(rel)
    return modules


def external_imports(
    project: Project, files: Iterable[str], imports: Mapping[str, tuple[str, ...]]
) -> set[str]:
    """Top-level names outside the project that the app's import graph reaches."""
    local = local_modules(files)
    pending = ["rxconfig.py", *local.get(project.app_name, [])]
    seen: set[str] = set()
    external: set[str] = set()
    while pending:
        rel = pending.pop()
        if rel in seen:
            continue
        seen.add(rel)
        for name in imports.get(rel, ()):
            if name in local:
                pending += local[name]
            elif name not in sys.stdlib_module_names:
                external.add(name)
    return external


def versions_of(
    external: Iterable[str],
    environ: Mapping[str, str],
    index: Cache | None = None,
) -> dict[str, str]:
    """The versions a build depends on: every ``reflex*`` distribution, and those
    providing ``external`` imports and Reflex plugins (``index``'s cache keeps the scan)."""
    installed, tops = _installed(_site_state(), index)
    wanted = {name for name in installed if name.startswith("reflex")}
    plugin_modules = [
        p.strip().split(".")[0] for p in environ.get("REFLEX_EXTRA_PLUGINS", "").split(",")
    ]
    for name in [*external, *plugin_modules]:
        wanted.update(tops.get(name, ()))
    return {
        name: installed[name] for name in sorted(wanted - _NOT_BUILD_DISTS) if name in installed
    }
