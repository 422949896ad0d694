"""Collect a project's build inputs from disk (the I/O half of keying).

The input rule (``docs/keys.md`` explains it for users): every file under the
project is an input unless it is excluded, because a file that a build reads
and the key misses serves a stale frontend, while a file the key has and the
build ignores only costs a spurious rebuild. Excluded:

- always: generated output, caches, VCS data, virtual environments, uploads,
  databases, editor droppings (:data:`EXCLUDED_DIRS`, :data:`EXCLUDED_FILES`),
  and the cache directory when it lies inside the project;
- by ``.gitignore`` files in the project, *except* what a build always reads:
  ``rxconfig.py``, the app package, any Python package or module, ``assets/``,
  ``reflex.lock/``, the ``env_file`` and the user's declared inputs.

Besides files: the versions of the ``reflex*`` distributions and of every
distribution the app's import graph (``rxconfig.py``, the app package and the
project-local modules they import) reaches, the JS runtime's identity, the
environment variables the build reads (values only as digests), and the build
settings of reflex-buildd itself. Users declare more files and variables in
``[tool.reflex-buildd]`` of the project's ``pyproject.toml``, in
``REFLEX_BUILDD_INPUTS`` / ``REFLEX_BUILDD_ENV``, or as arguments.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypedDict, Unpack

import blake3

from ..cache.store import Cache
from ..errors import InputsConfigError, InvalidConfigError, os_fault
from ..keys.hashing import digest_all, digest_file
from ..keys.schema import KeyInputs, digest_env_value, key_of
from ..keys.statcache import StatCache
from ..keys.walk import (
    ALWAYS_DIRS,
    EXCLUDED_DIRS,
    EXCLUDED_FILES,
    Found,
    declared_files,
    env_files,
    iter_input_files,
    walk_project,
)
from ..project import Project, project_id
from ..serve.rewrite import SENTINEL
from ..settings import Settings
from .declarations import Declared, declared_inputs
from .distributions import external_imports, versions_of
from .runtime import runtime_identity

__all__ = [
    "BUILD_ENV_NAMES",
    "BUILD_SETTINGS_VERSION",
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "Declared",
    "InputOptions",
    "InputsConfigError",
    "collect_inputs",
    "compute_key",
    "declared_inputs",
    "digest_file",
    "expected_build_settings",
    "iter_input_files",
    "stat_cache_path",
]


# REFLEX_* variables that only matter at run time or that the build sets itself;
# they would otherwise make hosts and daemons disagree for no reason.
_RUNTIME_ONLY_ENV = frozenset(
    {
        "REFLEX_WEB_WORKDIR",
        "REFLEX_STATES_WORKDIR",
        "REFLEX_UPLOADED_FILES_DIR",
        "REFLEX_DIR",
        "REFLEX_USE_SYSTEM_BUN",
        "REFLEX_USE_NPM",
        "REFLEX_FRONTEND_PATH",
        "REFLEX_DB_URL",
        "REFLEX_ASYNC_DB_URL",
        "REFLEX_REDIS_URL",
        "REFLEX_LOGLEVEL",
        "REFLEX_SKIP_COMPILE",
        # Set by an in-process backend (the build never sees it: build.py drops it).
        "REFLEX_BACKEND_ONLY",
        "REFLEX_APP_NAME",
        "REFLEX_TELEMETRY_ENABLED",
    }
)

_ENV_PREFIXES = ("REFLEX_", "VITE_")

# Variables outside those prefixes that Reflex 0.10.1 reads while building:
# the pinned React versions change package.json; the Codespaces and Replit ones
# change the api_url baked into env.json; NODE_ENV changes what vite emits.
BUILD_ENV_NAMES = frozenset(
    {
        "REACT_VERSION",
        "REACT_ROUTER_VERSION",
        "CODESPACE_NAME",
        "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN",
        "REPLIT_DEV_DOMAIN",
        "NODE_ENV",
    }
)

# Bump when how we build changes in a way the recipe files do not show.
BUILD_SETTINGS_VERSION = "1"

# The builder lists the files that define how it builds next to them; the
# client finds them without importing the builder (find_spec of a top-level
# package locates it without running it).
_BUILDER_PACKAGE = "reflex_buildd"
_RECIPE_LIST = "recipe.txt"


def _build_env(environ: Mapping[str, str], declared: Iterable[str] = ()) -> dict[str, str | None]:
    selected: dict[str, str | None] = {}
    for name, value in environ.items():
        if name.startswith("REFLEX_BUILDD_") or name in _RUNTIME_ONLY_ENV:
            continue
        if name.startswith(_ENV_PREFIXES) or name in BUILD_ENV_NAMES:
            selected[name] = digest_env_value(name, value)
    for pattern in declared:
        if any(ch in pattern for ch in "*?["):
            for name in environ:
                if fnmatch.fnmatchcase(name, pattern):
                    selected[name] = digest_env_value(name, environ[name])
        else:
            found = environ.get(pattern)
            selected[pattern] = None if found is None else digest_env_value(pattern, found)
    return selected


def recipe_files() -> list[Path]:
    """The builder's recipe: the files its ``recipe.txt`` names, in that order.

    Raises:
        InvalidConfigError: If the builder package or its recipe is missing
            (a broken installation: no key can be trusted without it).
    """
    spec = importlib.util.find_spec(_BUILDER_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        listing = Path(location) / _RECIPE_LIST
        try:
            text = listing.read_text()
        except OSError:
            continue
        names = [line.strip() for line in text.splitlines()]
        return [listing.parent / n for n in names if n and not n.startswith("#")]
    raise InvalidConfigError(
        f"the builder package {_BUILDER_PACKAGE!r} or its {_RECIPE_LIST} is missing: "
        "reinstall reflex-buildd"
    )


@functools.lru_cache(maxsize=1)
def _recipe_digest() -> str:
    # The recipe files belong to the installed package: they change only with it.
    hasher = blake3.blake3()
    for path in recipe_files():
        name = path.name
        data = path.read_bytes()
        encoded = name.encode()
        hasher.update(len(encoded).to_bytes(8, "big") + encoded)
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()


def expected_build_settings() -> dict[str, str]:
    """The build settings every key made with this reflex-buildd records
    (the settings version, the sentinel, the digest of the builder's recipe)."""
    return {
        "version": BUILD_SETTINGS_VERSION,
        "sentinel": SENTINEL,
        "recipe": _recipe_digest(),
    }


def stat_cache_path(cache_dir: str | os.PathLike[str], project: Project) -> Path:
    """Where the stat cache of ``project`` lives in ``cache_dir``.

    One file per project location: stat identities are only meaningful there.
    """
    return Cache(cache_dir).statcache_path(project_id(project.root))


def _skip_dirs(project: Project, cache_dir: Path | None) -> frozenset[str]:
    # A cache inside the project would otherwise key its own output.
    if cache_dir is None:
        return frozenset()
    resolved = Path(cache_dir).expanduser().resolve()
    if resolved.is_relative_to(project.root) and resolved != project.root:
        return frozenset({resolved.relative_to(project.root).as_posix()})
    return frozenset()


def collect_inputs(
    project: Project,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    stat_cache: bool = True,
    extra_inputs: Iterable[str] = (),
    extra_env: Iterable[str] = (),
    settings: Settings,
) -> KeyInputs:
    """Read everything the key of ``project`` depends on.

    Args:
        project: The project.
        cache_dir: The cache whose stat cache to use and update (default:
            the settings' cache, as for builds).
        stat_cache: False to hash every file without reading or writing a stat cache.
        extra_inputs: Glob patterns of extra input files, beyond the declared ones.
        extra_env: Names or patterns of extra input variables.
        settings: The settings; their ``environ`` is the environment the build will see.

    Raises:
        InputsConfigError: If the declared extra inputs are malformed.
    """
    environ = settings.environ
    cache = Cache(cache_dir if cache_dir is not None else settings.cache_dir)
    declared = declared_inputs(
        project.root, extra_inputs=extra_inputs, extra_env=extra_env, settings=settings
    )
    env_names = env_files(project, environ)
    skip = _skip_dirs(project, cache.root)
    recorded_ns = time.time_ns()  # before any stat: see statcache's racy rule
    found: dict[str, Found] = {}
    walk = walk_project(
        project.root,
        always_files=frozenset({"rxconfig.py", *env_names}),
        always_dirs=frozenset({*ALWAYS_DIRS, project.app_name}),
        skip_dirs=skip,
    )
    for item in walk:
        found[item.rel] = item
    for item in declared_files(project.root, declared.globs, skip):
        found.setdefault(item.rel, item)
    stats = StatCache(cache.statcache_path(project_id(project.root)) if stat_cache else None)
    collected = digest_all(list(found.values()), stats, recorded_ns)
    stats.save()
    external = external_imports(project, collected.files, collected.imports)
    return KeyInputs(
        files=dict(sorted(collected.files.items())),
        versions=versions_of(external, environ, cache if stat_cache else None),
        js_runtime=runtime_identity(settings),
        env=_build_env(environ, declared.env),
        settings=expected_build_settings(),
    )


class InputOptions(TypedDict, total=False):
    """The keyword arguments of :func:`collect_inputs` (and :func:`compute_key`)."""

    cache_dir: str | os.PathLike[str] | None
    stat_cache: bool
    extra_inputs: Iterable[str]
    extra_env: Iterable[str]


def compute_key(
    project: Project, *, settings: Settings, **options: Unpack[InputOptions]
) -> tuple[str, KeyInputs]:
    """The key of ``project``'s current sources, and the inputs behind it.

    Keyword arguments as for :func:`collect_inputs`.

    Raises:
        InputReadError: If a project file cannot be read.
        CacheIOError: If the stat cache cannot be read or written.
    """
    try:
        inputs = collect_inputs(project, settings=settings, **options)
    except OSError as exc:
        raise os_fault(exc, options.get("cache_dir") or settings.cache_dir) from exc
    return key_of(inputs), inputs
