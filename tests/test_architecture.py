"""The map of the code holds: import direction and one owner for the cache layout.

- ``reflex_buildd_client`` (the host side and the shared contract) never
  imports ``reflex_buildd`` (the builder); the builder is found through an
  entry point and its recipe through ``find_spec``.
- Only ``reflex_buildd_client/cache/store.py`` knows where anything lives in the
  cache: no other module names a layout directory in a path join, reaches for
  ``Cache.base``, or spells the layout's version or file names.

Both checks read the source (AST), so they cost milliseconds and name the
line that breaks the rule. Each is also run on a snippet that breaks it, so
the checks themselves cannot silently pass everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
CLIENT = SRC / "reflex_buildd_client"
LAYOUT_OWNER = CLIENT / "cache" / "store.py"

# Names of the layout (docs/cache.md). In a path join outside the owner they
# mean someone else decided where a cache file lives.
LAYOUT_NAMES = frozenset(
    {
        "v1",
        "artifacts",
        "blobs",
        "daemons",
        "dev",
        "journal.jsonl",
        "leases",
        "locks",
        "logs",
        "manifest.json",
        "QUARANTINE.json",
        "quarantine",
        "statcache",
        "status",
        "tmp",
        "public",
        "web",
        "used",
        "work",
    }
)
# These never mean anything but the layout, wherever they appear.
LAYOUT_LITERALS = frozenset(
    {"v1", "manifest.json", "journal.jsonl", "QUARANTINE.json", "public/", "web/backend"}
)
# Methods of Cache that return a directory whose entries' names the store decides.
NAMING_DIRS = frozenset({"tmp_dir", "leases_dir"})


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module a tree imports, with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def layout_violations(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a tree builds or names a cache path itself."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in LAYOUT_NAMES:
                    found.append((node.lineno, f"joins {side.value!r} onto a path"))
            left = node.left
            if (
                isinstance(left, ast.Call)
                and isinstance(left.func, ast.Attribute)
                and left.func.attr in NAMING_DIRS
            ):
                found.append((node.lineno, f"names an entry of {left.func.attr}() itself"))
        elif isinstance(node, ast.Attribute) and node.attr == "base" and _names_a_cache(node.value):
            found.append((node.lineno, "reaches for Cache.base"))
        elif isinstance(node, ast.Constant) and node.value in LAYOUT_LITERALS:
            found.append((node.lineno, f"spells {node.value!r}"))
    return found


def _names_a_cache(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return "cache" in name.lower()


def _sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_client_never_imports_the_builder() -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line}: imports {module}"
        for path in _sources(CLIENT)
        for line, module in imports_of(ast.parse(path.read_text()))
        if module == "reflex_buildd" or module.startswith("reflex_buildd.")
    ]
    assert not bad, "\n".join(bad)


def test_only_the_store_knows_the_cache_layout() -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line}: {why}"
        for path in _sources(SRC)
        if path != LAYOUT_OWNER
        for line, why in layout_violations(ast.parse(path.read_text()))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("snippet", "count"),
    [
        ("from reflex_buildd.build import run_build", 1),
        ("import reflex_buildd.plugin", 1),
        ("from .build import run_build", 0),  # relative: inside its own package
    ],
)
def test_the_import_check_sees_builder_imports(snippet: str, count: int) -> None:
    found = [m for _, m in imports_of(ast.parse(snippet)) if m.startswith("reflex_buildd.")]
    assert len(found) == count


@pytest.mark.parametrize(
    "snippet",
    [
        'path = cache.base / "artifacts" / key',
        'path = root / "v1" / "statcache"',
        'name = "manifest.json"',
        'marker = entry / "QUARANTINE.json"',
        'scratch = cache.tmp_dir() / scratch_name("build", key)',
        'lease = cache.leases_dir(key) / f"{host}-{pid}.json"',
        'shutil.copytree(out, staging / "public")',
        'rel = "public/" + name',
    ],
)
def test_the_layout_check_sees_paths_built_elsewhere(snippet: str) -> None:
    assert layout_violations(ast.parse(snippet))


# The entry points that read the environment into their one Settings: the CLI's group,
# ReflexMount, and the dev servers' processes (their plugin). Everything else is handed it.
SETTINGS_ENTRY_POINTS = frozenset(
    {
        SRC / "reflex_buildd" / "cli.py",
        SRC / "reflex_buildd" / "devplugin.py",
        CLIENT / "mount.py",
        # metrics_app(): a host's second entry point, beside mount().
        CLIENT / "exposition.py",
    }
)


def settings_loads(tree: ast.AST) -> list[int]:
    """Lines that call ``Settings.load(...)``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "Settings"
    ]


def test_settings_are_loaded_only_by_entry_points() -> None:
    found = {
        path: lines
        for path in _sources(SRC)
        if (lines := settings_loads(ast.parse(path.read_text())))
    }
    bad = [
        f"{p.relative_to(SRC)}:{n}"
        for p, lines in found.items()
        if p not in SETTINGS_ENTRY_POINTS
        for n in lines
    ]
    assert not bad, "Settings.load() below an entry point (take a Settings instead):\n" + "\n".join(
        bad
    )
    assert sum(len(lines) for lines in found.values()) <= 4


@pytest.mark.parametrize(
    ("snippet", "count"),
    [
        ("settings = Settings.load()", 1),
        ("x = (settings or Settings.load(environ=env)).override()", 1),
        ("settings.load()", 0),
    ],
)
def test_the_settings_check_sees_loads(snippet: str, count: int) -> None:
    assert len(settings_loads(ast.parse(snippet))) == count


# The parts of the client, lowest first: a part imports only parts below it (the rooms of
# docs/concepts.md's map). A new part goes into this list, where its imports put it.
LAYERS = (
    ("errors", "types", "units", "children", "hostlog", "metrics"),
    ("project",),
    ("keys",),
    ("cache",),
    ("serve",),
    ("remote",),
    ("dev",),
    ("settings",),
    ("backend",),
    ("inputs",),
    ("startup",),
    ("mount", "exposition"),
    ("dispatch",),
    ("__init__",),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(path: Path) -> str:
    """The part of the client a file belongs to: its sub-package, or its own module."""
    rel = path.relative_to(CLIENT).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def imported_parts(path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    """The client parts a file of ``path``'s package imports (relative and absolute)."""
    package = list(path.relative_to(CLIENT).parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            names = [*base, *(node.module or "").split(".")]
            target = [n for n in names if n]
            if target:
                found.append((node.lineno, target[0]))
            else:  # from . import x
                found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "reflex_buildd_client."
        ):
            found.append((node.lineno, node.module.split(".")[1]))  # type: ignore[union-attr]
    return found


def layer_violations(path: Path, tree: ast.AST) -> list[str]:
    """Imports of ``path`` that go sideways or up the layers."""
    me = part_of(path)
    if me not in RANK:
        return [f"{path.relative_to(SRC)}: part {me!r} is not in LAYERS"]
    return [
        f"{path.relative_to(SRC)}:{line}: {me} imports {target} (not below it)"
        for line, target in imported_parts(path, tree)
        if target != me and target in RANK and RANK[target] >= RANK[me]
    ]


def test_imports_only_go_down_the_layers() -> None:
    bad = [
        problem
        for path in _sources(CLIENT)
        for problem in layer_violations(path, ast.parse(path.read_text()))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("where", "snippet", "count"),
    [
        ("cache/store.py", "from ..settings import default_cache_dir", 1),
        ("cache/store.py", "from .manifest import Manifest", 0),
        ("keys/schema.py", "from reflex_buildd_client.inputs.sources import compute_key", 1),
        ("mount.py", "from .startup.demand import Demand", 0),
        ("serve/static.py", "from ..backend.routes import routes_of", 1),
    ],
)
def test_the_layer_check_sees_upward_imports(where: str, snippet: str, count: int) -> None:
    assert len(layer_violations(CLIENT / where, ast.parse(snippet))) == count


# The one module that reads the environment (the entry points hand its Settings down).
ENVIRONMENT_READER = CLIENT / "settings.py"


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read a variable of the process environment themselves.

    Setting, popping (a child's own hand-over) and copying the whole environment for a
    child process are not reads of a setting.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "getenv" and getattr(node.func.value, "id", "") == "os":
                found.append(node.lineno)
            elif node.func.attr in ("get", "__getitem__") and _is_os_environ(node.func.value):
                found.append(node.lineno)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_os_environ(node.value)
        ):
            found.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            found.append(node.lineno)  # "X" in os.environ
    return found


def test_only_settings_reads_the_environment() -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line}"
        for path in _sources(SRC)
        if path != ENVIRONMENT_READER
        for line in environment_reads(ast.parse(path.read_text()))
    ]
    assert not bad, "read the environment in settings.py and pass it down:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("snippet", "count"),
    [
        ('x = os.environ.get("XDG_RUNTIME_DIR")', 1),
        ('x = os.environ["HOME"]', 1),
        ('x = os.getenv("HOME")', 1),
        ('ok = "HOME" in os.environ', 1),
        ('os.environ["REFLEX_WEB_WORKDIR"] = str(path)', 0),
        ("secret = os.environ.pop(SECRET_ENV)", 0),
        ("env = dict(os.environ)", 0),
        ('x = settings.environ.get("PATH")', 0),
    ],
)
def test_the_environment_check_sees_reads(snippet: str, count: int) -> None:
    assert len(environment_reads(ast.parse(snippet))) == count
