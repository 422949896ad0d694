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

import ast
import fnmatch
import functools
import json
import os
import re
import stat
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import blake3

from .errors import InputsConfigError
from .ignore import IgnoreRules, is_ignored, parse_ignore
from .keys import KeyInputs, digest_env_value, key_of
from .project import Project, config_literal
from .rewrite import SENTINEL
from .runtime import runtime_identity
from .statcache import CacheEntry, StatCache, stat_identity

__all__ = [
    "BUILD_ENV_NAMES",
    "BUILD_SETTINGS_VERSION",
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "Declared",
    "InputsConfigError",
    "collect_inputs",
    "compute_key",
    "declared_inputs",
    "digest_file",
    "iter_input_files",
    "stat_cache_path",
]

EXCLUDED_DIRS = frozenset(
    {
        ".web",
        "node_modules",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".states",
        "uploaded_files",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".idea",
        ".vscode",
        ".hypothesis",
        ".direnv",
    }
)

EXCLUDED_FILES = (
    "*.pyc",
    "*.pyo",
    "*.db",
    "*.sqlite",
    "*.sqlite3",
    "*.db-journal",
    "*-wal",
    "*-shm",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    ".DS_Store",
    "*.tmp",
    "4913",
)

# A directory holding one of these is a virtual environment, whatever its name.
_VENV_MARKERS = ("pyvenv.cfg", "conda-meta")

# Directories whose whole content a build reads, .gitignore or not.
_ALWAYS_DIRS = ("assets", "reflex.lock")

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

# The files whose content defines how we build; their digest is a key input so
# that a change to the frontend patch invalidates every artifact.
_RECIPE_FILES = ("plugin.py", "build.py", "assets.py", "app.py")

# Distributions that never change a build's output (ours is in the recipe).
_NOT_BUILD_DISTS = frozenset({"reflex-buildd", "reflex-hosting-cli"})

_READ_CHUNK = 1 << 20
_WHOLE_READ = 16 << 20


@dataclass(frozen=True)
class Declared:
    """Extra inputs a user declared.

    Attributes:
        globs: Project-relative glob patterns of extra input files (``**`` allowed).
        env: Names (or fnmatch patterns such as ``FEATURE_*``) of extra input
            environment variables.
    """

    globs: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


class _Walk(NamedTuple):
    """One file the walk found (before hashing).

    A named tuple: a warm key makes one per input file, and this is the
    cheapest record Python has.
    """

    rel: str
    path: str
    stat: os.stat_result


@dataclass
class _Collected:
    files: dict[str, str] = field(default_factory=dict)
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- declarations


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _string_list(table: Mapping[str, object], name: str, source: Path) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputsConfigError(f"{source}: [tool.reflex-buildd] {name} must be a list of strings")
    return tuple(value)


def _check_glob(pattern: str) -> str:
    posix = pattern.replace("\\", "/")
    if posix.startswith("/") or ".." in posix.split("/") or not posix:
        raise InputsConfigError(
            f"declared input {pattern!r} must be a relative glob inside the project"
        )
    return posix


def declared_inputs(
    root: Path,
    *,
    extra_inputs: Iterable[str] = (),
    extra_env: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Declared:
    """The extra inputs declared for the project at ``root``.

    Sources, all added together: ``[tool.reflex-buildd] inputs`` and ``env`` in
    ``root/pyproject.toml``, the comma-separated ``REFLEX_BUILDD_INPUTS`` and
    ``REFLEX_BUILDD_ENV`` variables, and the arguments.

    Raises:
        InputsConfigError: If the table or a pattern is malformed.
    """
    environ = os.environ if environ is None else environ
    globs: list[str] = []
    env: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputsConfigError(f"cannot read {pyproject}: {exc}") from exc
        table = data.get("tool", {}).get("reflex-buildd", {})
        if not isinstance(table, dict):
            raise InputsConfigError(f"{pyproject}: [tool.reflex-buildd] must be a table")
        globs += _string_list(table, "inputs", pyproject)
        env += _string_list(table, "env", pyproject)
    globs += _split(environ.get("REFLEX_BUILDD_INPUTS")) + tuple(extra_inputs)
    env += _split(environ.get("REFLEX_BUILDD_ENV")) + tuple(extra_env)
    return Declared(
        globs=tuple(sorted({_check_glob(g) for g in globs})),
        env=tuple(sorted(set(env))),
    )


# ----------------------------------------------------------------------- walk


# One alternation instead of a loop of fnmatch calls: this runs once per file
# of every key, warm ones included.
_EXCLUDED_FILE_RE = re.compile("|".join(fnmatch.translate(p) for p in EXCLUDED_FILES))


def _is_excluded_file(name: str) -> bool:
    return _EXCLUDED_FILE_RE.match(name) is not None


def _is_excluded_dir(path: str, name: str) -> bool:
    return name in EXCLUDED_DIRS or any(
        os.path.exists(os.path.join(path, marker)) for marker in _VENV_MARKERS
    )


def _env_files(project: Project, environ: Mapping[str, str]) -> list[str]:
    # Reflex joins several env files with os.pathsep (config.env_file and
    # REFLEX_ENV_FILE); only those inside the project can be inputs by path.
    value = environ.get("REFLEX_ENV_FILE") or config_literal(project.root, "env_file") or ""
    found: list[str] = []
    for part in value.split(os.pathsep):
        if not part.strip():
            continue
        path = (project.root / part.strip()).resolve()
        if path.is_relative_to(project.root):
            found.append(path.relative_to(project.root).as_posix())
    return found


def _walk(
    root: Path,
    *,
    always_files: frozenset[str],
    always_dirs: frozenset[str],
    skip_dirs: frozenset[str],
) -> Iterator[_Walk]:
    """Yield the input files under ``root`` (see the module doc for the rule)."""
    # Entries: (directory, its relative path, ignore stack, gitignore applies).
    stack: list[tuple[str, str, tuple[IgnoreRules, ...], bool]] = [(str(root), "", (), True)]
    seen_dirs: set[tuple[int, int]] = set()
    while stack:
        directory, rel_dir, ignores, ignoring = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        if ignoring:
            ignore_file = os.path.join(directory, ".gitignore")
            try:
                with open(ignore_file, encoding="utf-8", errors="replace") as f:
                    ignores = (*ignores, parse_ignore(f.read(), rel_dir))
            except OSError:
                pass
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks: a linked dir is read
            except OSError:
                continue
            if is_dir:
                if rel in skip_dirs or _is_excluded_dir(entry.path, entry.name):
                    continue
                forced = (
                    not ignoring
                    or rel in always_dirs
                    or os.path.exists(os.path.join(entry.path, "__init__.py"))
                )
                if not forced and is_ignored(rel, is_dir=True, stack=ignores):
                    continue
                stack.append((entry.path, rel, ignores, ignoring and not forced))
                continue
            if _is_excluded_file(entry.name):
                continue
            if (
                ignores  # no ignore file above: nothing to check
                and ignoring
                and rel not in always_files
                and not entry.name.endswith(".py")
                and is_ignored(rel, is_dir=False, stack=ignores)
            ):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue  # a dangling symlink or a file deleted under us
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, FIFOs, devices
            yield _Walk(rel, entry.path, st)


def _declared_files(root: Path, globs: Iterable[str], skip_dirs: frozenset[str]) -> Iterator[_Walk]:
    for pattern in globs:
        for path in root.glob(pattern):
            rel = path.relative_to(root).as_posix()
            parts = rel.split("/")
            if any(p in EXCLUDED_DIRS for p in parts[:-1]):
                continue
            if any("/".join(parts[:i]) in skip_dirs for i in range(1, len(parts))):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            if path.is_file():
                yield _Walk(rel, str(path), st)


def iter_input_files(root: Path) -> Iterator[Path]:
    """Yield every input file under ``root``, in no particular order.

    Only the walk: declared inputs, the env file and the cache directory are
    taken into account by :func:`collect_inputs`.
    """
    for found in _walk(
        root,
        always_files=frozenset({"rxconfig.py"}),
        always_dirs=frozenset(_ALWAYS_DIRS),
        skip_dirs=frozenset(),
    ):
        yield Path(found.path)


# -------------------------------------------------------------------- hashing


def _imports_of(source: bytes) -> tuple[str, ...]:
    """Top-level names a Python source imports (absolute imports only)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return tuple(sorted(names))


def _hash(found: _Walk) -> tuple[_Walk, CacheEntry | None, str, tuple[str, ...] | None]:
    """Hash one file; return an entry for the stat cache if the read was stable."""
    hasher = blake3.blake3()
    wants_source = found.rel.endswith(".py")
    chunks: list[bytes] = []
    # One read for a typical file (size + 1 so the read that sees EOF is the
    # same call); bounded chunks for big ones.
    chunk_size = found.stat.st_size + 1 if found.stat.st_size < _WHOLE_READ else _READ_CHUNK
    with open(found.path, "rb", buffering=0) as f:
        while chunk := f.read(chunk_size):
            hasher.update(chunk)
            if wants_source:
                chunks.append(chunk)
        after = os.fstat(f.fileno())
    digest = hasher.hexdigest()
    imports = _imports_of(b"".join(chunks)) if wants_source else None
    # Changed while we read it: the digest is of some bytes it held, but the
    # stat identity does not vouch for them; don't remember it.
    stable = stat_identity(after) == stat_identity(found.stat)
    entry = CacheEntry(stat_identity(found.stat), 0, digest, imports) if stable else None
    return found, entry, digest, imports


def digest_file(path: Path) -> str:
    """blake3 of a file's content (no caching)."""
    return _hash(_Walk(path.name, str(path), path.stat()))[2]


def _digest_all(found: list[_Walk], cache: StatCache, recorded_ns: int) -> _Collected:
    out = _Collected()
    misses: list[_Walk] = []
    files, imports_of, trusted = out.files, out.imports, cache.trusted
    for item in found:
        hit = trusted(item.rel, stat_identity(item.stat))
        if hit is None:
            misses.append(item)
            continue
        files[item.rel] = hit[0]
        if hit[1] is not None:
            imports_of[item.rel] = tuple(hit[1])
    # Serial on purpose: measured on 2 cores with 5,000 files, a thread pool
    # made a cold key 1.7-2.4x slower (GIL hand-offs cost more than the reads
    # they overlap when the files are in the page cache).
    for item, entry, digest, imports in map(_hash, misses):
        out.files[item.rel] = digest
        if imports is not None:
            out.imports[item.rel] = imports
        if entry is not None:
            cache.record(item.rel, CacheEntry(entry.identity, recorded_ns, digest, imports))
    cache.retain(set(out.files))
    return out


# ----------------------------------------------------------- everything else


def _site_state() -> tuple[tuple[str, int], ...]:
    # Installing, upgrading or removing a distribution adds or removes a
    # *.dist-info directory, which changes its parent directory's mtime.
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def _dist_name(dist: metadata.Distribution) -> str:
    return (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")


def _scan_installed() -> tuple[dict[str, str], dict[str, list[str]]]:
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        versions.setdefault(_dist_name(dist), dist.version)
    tops = {
        name: sorted({n.lower().replace("_", "-").replace(".", "-") for n in dists})
        for name, dists in metadata.packages_distributions().items()
    }
    return versions, tops


@functools.lru_cache(maxsize=4)
def _installed(
    state: tuple[tuple[str, int], ...], index_dir: Path | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(distribution -> version, top-level import name -> distributions).

    Parsing every distribution's metadata costs tens of milliseconds, more than
    keying a warm project, so the result is kept on disk per site state (the
    paths and mtimes of ``sys.path``): a host re-reads one small file.
    """
    if index_dir is None:
        return _scan_installed()
    digest = blake3.blake3(json.dumps([sys.executable, state]).encode()).hexdigest()[:24]
    path = index_dir / f"site-{digest}.json"
    try:
        data = json.loads(path.read_text())
        return dict(data["versions"]), {k: list(v) for k, v in data["tops"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # a missing or damaged index only means "scan"
    versions, tops = _scan_installed()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"versions": versions, "tops": tops}))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache still keys correctly, only slower
    return versions, tops


def _local_modules(files: Iterable[str]) -> dict[str, list[str]]:
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


def _external_imports(
    project: Project, files: Iterable[str], imports: Mapping[str, tuple[str, ...]]
) -> set[str]:
    """Top-level names outside the project that the app's import graph reaches."""
    local = _local_modules(files)
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


def _versions(
    external: Iterable[str], environ: Mapping[str, str], index_dir: Path | None = None
) -> dict[str, str]:
    installed, tops = _installed(_site_state(), index_dir)
    wanted = {name for name in installed if name.startswith("reflex")}
    plugin_modules = [
        p.strip().split(".")[0] for p in environ.get("REFLEX_EXTRA_PLUGINS", "").split(",")
    ]
    for name in [*external, *plugin_modules]:
        wanted.update(tops.get(name, ()))
    return {
        name: installed[name] for name in sorted(wanted - _NOT_BUILD_DISTS) if name in installed
    }


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


@functools.lru_cache(maxsize=1)
def _recipe_digest() -> str:
    # The recipe files belong to the installed package: they change only with it.
    hasher = blake3.blake3()
    builder = Path(__file__).resolve().parent.parent / "reflex_buildd"
    for name in _RECIPE_FILES:
        data = (builder / name).read_bytes()
        encoded = name.encode()
        hasher.update(len(encoded).to_bytes(8, "big") + encoded)
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()


def stat_cache_path(cache_dir: Path, project: Project) -> Path:
    """Where the stat cache of ``project`` lives in ``cache_dir``.

    One file per project location: stat identities are only meaningful there.
    """
    project_id = blake3.blake3(str(project.root).encode()).hexdigest()[:16]
    return Path(cache_dir) / "v1" / "statcache" / f"{project_id}.json"


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
) -> KeyInputs:
    """Read everything the key of ``project`` depends on.

    Args:
        project: The project.
        cache_dir: The cache whose stat cache to use and update (default: the
            default cache directory, as for builds).
        stat_cache: False to hash every file without reading or writing a stat cache.
        extra_inputs: Glob patterns of extra input files, beyond the declared ones.
        extra_env: Names or patterns of extra input variables.

    Raises:
        InputsConfigError: If the declared extra inputs are malformed.
    """
    from .store import default_cache_dir  # store imports keys; keep imports acyclic

    environ = os.environ
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    declared = declared_inputs(
        project.root, extra_inputs=extra_inputs, extra_env=extra_env, environ=environ
    )
    env_files = _env_files(project, environ)
    skip = _skip_dirs(project, cache_root)
    recorded_ns = time.time_ns()  # before any stat: see statcache's racy rule
    found: dict[str, _Walk] = {}
    walk = _walk(
        project.root,
        always_files=frozenset({"rxconfig.py", *env_files}),
        always_dirs=frozenset({*_ALWAYS_DIRS, project.app_name}),
        skip_dirs=skip,
    )
    for item in walk:
        found[item.rel] = item
    for item in _declared_files(project.root, declared.globs, skip):
        found.setdefault(item.rel, item)
    cache = StatCache(stat_cache_path(cache_root, project) if stat_cache else None)
    collected = _digest_all(list(found.values()), cache, recorded_ns)
    cache.save()
    external = _external_imports(project, collected.files, collected.imports)
    return KeyInputs(
        files=dict(sorted(collected.files.items())),
        versions=_versions(
            external, environ, stat_cache_path(cache_root, project).parent if stat_cache else None
        ),
        js_runtime=runtime_identity(),
        env=_build_env(environ, declared.env),
        settings={
            "version": BUILD_SETTINGS_VERSION,
            "sentinel": SENTINEL,
            "recipe": _recipe_digest(),
        },
    )


def compute_key(
    project: Project,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    stat_cache: bool = True,
    extra_inputs: Iterable[str] = (),
    extra_env: Iterable[str] = (),
) -> tuple[str, KeyInputs]:
    """The key of ``project``'s current sources, and the inputs behind it.

    Keyword arguments as for :func:`collect_inputs`.
    """
    inputs = collect_inputs(
        project,
        cache_dir=cache_dir,
        stat_cache=stat_cache,
        extra_inputs=extra_inputs,
        extra_env=extra_env,
    )
    return key_of(inputs), inputs
