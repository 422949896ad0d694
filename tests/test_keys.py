"""The key's contract: it names its inputs, completely, and nothing else (the mutation matrix).

Every case starts from the same small project, keys it, applies one change and
keys it again; each case is its own test. No Reflex build runs: keying does
not build.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.inputs import sources
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.keys.diff import diff_inputs
from reflex_buildd_client.keys.schema import KeyInputs
from reflex_buildd_client.project import find_project
from reflex_buildd_client.settings import Settings

pytestmark = pytest.mark.timeout(60)

PROJECT_FILES: dict[str, str | bytes] = {
    "rxconfig.py": 'import reflex as rx\n\nconfig = rx.Config(app_name="app", env_file=".env")\n',
    "app/__init__.py": "",
    "app/app.py": (
        "import reflex as rx\nimport fakeplugin\nimport helpers\nimport local_settings\n"
        "from app.components import card\n\napp = rx.App()\n"
    ),
    "app/components/__init__.py": "",
    "app/components/card.py": "import reflex as rx\n\ndef card():\n    return rx.box()\n",
    "helpers.py": "TITLE = 'hello'\n",
    "local_settings.py": "DEBUG = False\n",
    "assets/style.css": "body { margin: 0; }\n",
    "assets/logo.png": bytes(range(256)) * 4,
    "reflex.lock/package.json": '{"dependencies": {}}\n',
    ".env": "API_TOKEN=one\n",
    ".gitignore": ".env\nlocal_settings.py\nnotes/\n*.log\ncontent/\n",
    "pyproject.toml": '[tool.reflex-buildd]\ninputs = ["content/**/*.md"]\nenv = ["MY_FLAG"]\n',
    "content/page.md": "# Page\n",
    "notes/todo.txt": "later\n",
    "scripts/.gitignore": "out/\n",
    "scripts/tool.sh": "echo hi\n",
}


def write_tree(root: Path, files: dict[str, str | bytes], order: list[str] | None = None) -> None:
    for rel in order or list(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = files[rel]
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def write_dist(site: Path, name: str, version: str, top_level: str) -> None:
    """A minimal installed distribution (what importlib.metadata reads)."""
    for old in site.glob(f"{name.replace('-', '_')}-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(top_level + "\n")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no build-relevant variables but a pinned runtime."""
    for name in list(os.environ):
        if name.startswith(("REFLEX_", "VITE_")) or name in sources.BUILD_ENV_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.delenv("MY_FLAG", raising=False)
    monkeypatch.setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.4")
    monkeypatch.setenv("VITE_TITLE", "first")
    return monkeypatch


@pytest.fixture
def site(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    """Fake installed distributions: a Reflex component package, a plugin the
    app imports, and one nothing imports."""
    site = tmp_path / "site"
    site.mkdir()
    write_dist(site, "reflex-components-fake", "1.0", "reflex_components_fake")
    write_dist(site, "fake-plugin", "1.0", "fakeplugin")
    write_dist(site, "unrelated-dist", "1.0", "unrelated")
    clean_env.syspath_prepend(str(site))
    return site


@pytest.fixture
def project(tmp_path: Path, site: Path) -> Path:
    root = tmp_path / "project"
    write_tree(root, PROJECT_FILES)
    return root


def key_of_tree(root: Path, cache: Path) -> tuple[str, KeyInputs]:
    return compute_key(find_project(root), settings=Settings.load(), cache_dir=cache)


Mutation = Callable[[Path, pytest.MonkeyPatch, Path], None]


def _edit(rel: str, extra: str = "# edited\n") -> Mutation:
    def apply(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
        with (root / rel).open("a") as f:
            f.write(extra)

    return apply


def _add(rel: str, content: str = "new\n") -> Mutation:
    def apply(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)

    return apply


def _setenv(name: str, value: str) -> Mutation:
    def apply(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
        mp.setenv(name, value)

    return apply


def _flip_byte(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    path = root / "assets/logo.png"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))  # same size


def _remove(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    (root / "app/components/card.py").unlink()


def _rename(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    (root / "assets/style.css").rename(root / "assets/main.css")


def _component_version(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    write_dist(site, "reflex-components-fake", "1.1", "reflex_components_fake")


def _plugin_version(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    write_dist(site, "fake-plugin", "2.0", "fakeplugin")


def _settings_version(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    mp.setattr(sources, "BUILD_SETTINGS_VERSION", "999")


def _unignore(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    (root / ".gitignore").write_text(".env\nlocal_settings.py\n*.log\ncontent/\n")


MUST_CHANGE: dict[str, Mutation] = {
    "app-module-edited": _edit("app/app.py"),
    "app-nested-module-edited": _edit("app/components/card.py"),
    "app-file-added": _add("app/pages.py"),
    "app-file-removed": _remove,
    "asset-renamed": _rename,
    "local-module-beside-package-edited": _edit("helpers.py"),
    "gitignored-local-module-edited": _edit("local_settings.py"),
    "rxconfig-edited": _edit("rxconfig.py"),
    "asset-edited-same-size": _flip_byte,
    "asset-added": _add("assets/extra.css", "a{}"),
    "reflex-lock-edited": _edit("reflex.lock/package.json", " "),
    "env-file-edited": _edit(".env", "API_TOKEN2=two\n"),
    "reflex-config-env-var-set": _setenv("REFLEX_DEPLOY_URL", "https://example.com"),
    "vite-env-var-changed": _setenv("VITE_TITLE", "second"),
    "react-version-env-var-set": _setenv("REACT_VERSION", "19.0.0"),
    "declared-env-var-set": _setenv("MY_FLAG", "1"),
    "declared-env-var-set-empty": _setenv("MY_FLAG", ""),
    "extra-plugin-env-var-set": _setenv("REFLEX_EXTRA_PLUGINS", "fakeplugin.Plugin"),
    "declared-input-glob-file-edited": _edit("content/page.md"),
    "declared-input-glob-file-added": _add("content/sub/other.md"),
    "env-declared-input-glob": _setenv("REFLEX_BUILDD_INPUTS", "notes/*.txt"),
    "gitignore-unignores-a-file": _unignore,
    "reflex-component-package-version": _component_version,
    "imported-plugin-package-version": _plugin_version,
    "js-runtime-version": _setenv("REFLEX_BUILDD_JS_RUNTIME", "bun@1.4.5"),
    "build-settings-version": _settings_version,
    "top-level-data-file-added": _add("data.json", "{}"),
}


def _noop_env(name: str, value: str) -> Mutation:
    return _setenv(name, value)


def _touch(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    path = root / "app/app.py"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _rewrite_same(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    # An editor's save: a new inode with the same bytes.
    path = root / "app/app.py"
    tmp = path.with_name("app.py.new")
    tmp.write_bytes(path.read_bytes())
    os.replace(tmp, path)


def _venv(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    _add(".venv/lib/site.py")(root, mp, site)
    _add("myenv/pyvenv.cfg", "home = /usr\n")(root, mp, site)
    _add("myenv/lib/thing.py")(root, mp, site)


def _editor_files(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    for rel in ("app/.app.py.swp", "app/app.py~", "app/.#app.py", "app/4913", "#notes#"):
        _add(rel)(root, mp, site)


def _databases(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    for rel in ("reflex.db", "data.sqlite3", "reflex.db-journal"):
        _add(rel)(root, mp, site)


def _unrelated_version(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    write_dist(site, "unrelated-dist", "9.9", "unrelated")


def _empty_dir(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    (root / "app" / "empty").mkdir()


def _other_runtime_installed(root: Path, mp: pytest.MonkeyPatch, site: Path) -> None:
    # No pin, and the machine's bun is another version (or there is none): the
    # key names the runtime builds must use, so it stays.
    fake = site / "fakebin" / "bun"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text("#!/bin/sh\necho 1.4.5\n")
    fake.chmod(0o755)
    mp.delenv("REFLEX_BUILDD_JS_RUNTIME")
    mp.setenv("REFLEX_BUILDD_BUN", str(fake))
    mp.setenv("PATH", str(fake.parent))


MUST_NOT_CHANGE: dict[str, Mutation] = {
    "web-dir": _add(".web/app/routes/index.js"),
    "node-modules": _add("node_modules/react/index.js"),
    "pycache": _add("app/__pycache__/app.cpython-311.pyc"),
    "git-dir": _add(".git/objects/ab/cdef"),
    "virtual-environments": _venv,
    "uploaded-files": _add("uploaded_files/photo.jpg"),
    "states-dir": _add(".states/abc"),
    "databases": _databases,
    "editor-temp-and-swap-files": _editor_files,
    "gitignored-directory": _add("notes/more.txt"),
    "gitignored-pattern": _add("server.log"),
    "nested-gitignore": _add("scripts/out/result.txt"),
    "touch-mtime-only": _touch,
    "rewrite-same-content-new-inode": _rewrite_same,
    "empty-directory": _empty_dir,
    "runtime-only-reflex-env": _noop_env("REFLEX_WEB_WORKDIR", "/somewhere"),
    "our-own-env": _noop_env("REFLEX_BUILDD_CACHE_DIR", "/elsewhere"),
    "unrelated-env": _noop_env("SOME_UNRELATED_VAR", "x"),
    "unimported-package-version": _unrelated_version,
    "undeclared-env-file-value-of-env-var": _noop_env("API_TOKEN", "three"),
    "installed-js-runtime-differs-without-pin": _other_runtime_installed,
}


@pytest.mark.parametrize("mutate", MUST_CHANGE.values(), ids=MUST_CHANGE.keys())
def test_key_changes(
    mutate: Mutation, project: Path, site: Path, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before_key, before = key_of_tree(project, tmp_path / "cache")
    mutate(project, clean_env, site)
    after_key, after = key_of_tree(project, tmp_path / "cache")
    assert after_key != before_key
    assert not diff_inputs(before, after).empty  # explain can say why


@pytest.mark.parametrize("mutate", MUST_NOT_CHANGE.values(), ids=MUST_NOT_CHANGE.keys())
def test_key_does_not_change(
    mutate: Mutation, project: Path, site: Path, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before_key, before = key_of_tree(project, tmp_path / "cache")
    mutate(project, clean_env, site)
    after_key, after = key_of_tree(project, tmp_path / "cache")
    assert diff_inputs(before, after).empty
    assert after_key == before_key


def test_different_location_and_listing_order(project: Path, tmp_path: Path) -> None:
    key, _ = key_of_tree(project, tmp_path / "cache")
    elsewhere = tmp_path / "deep" / "er" / "copy"
    write_tree(elsewhere, PROJECT_FILES, order=list(reversed(PROJECT_FILES)))
    assert key_of_tree(elsewhere, tmp_path / "cache")[0] == key
    assert key_of_tree(elsewhere, tmp_path / "other-cache")[0] == key


def test_cache_dir_inside_project_is_not_an_input(project: Path, tmp_path: Path) -> None:
    key, _ = key_of_tree(project, tmp_path / "cache")
    inside = project / "build-cache"
    first, _ = key_of_tree(project, inside)
    (inside / "v1" / "artifacts" / "k").mkdir(parents=True)
    (inside / "v1" / "artifacts" / "k" / "index.html").write_text("<html>")
    assert key_of_tree(project, inside)[0] == first == key


def test_input_set_contents(project: Path, tmp_path: Path) -> None:
    _, inputs = key_of_tree(project, tmp_path / "cache")
    assert set(inputs.files) == {
        ".gitignore",
        "pyproject.toml",
        "rxconfig.py",
        ".env",
        "helpers.py",
        "local_settings.py",
        "app/__init__.py",
        "app/app.py",
        "app/components/__init__.py",
        "app/components/card.py",
        "assets/style.css",
        "assets/logo.png",
        "reflex.lock/package.json",
        "content/page.md",
        "scripts/.gitignore",
        "scripts/tool.sh",
    }
    assert inputs.versions["fake-plugin"] == "1.0"
    assert inputs.versions["reflex-components-fake"] == "1.0"
    assert "unrelated-dist" not in inputs.versions
    assert "reflex-buildd" not in inputs.versions
    assert inputs.env["MY_FLAG"] is None  # declared, unset
    assert inputs.env["VITE_TITLE"] != "first"  # a digest, not the value
    assert "first" not in str(inputs.to_json())


def test_declared_inputs_as_arguments(project: Path, tmp_path: Path) -> None:
    root = find_project(project)
    plain, _ = compute_key(root, settings=Settings.load(), cache_dir=tmp_path / "c")
    extra, inputs = compute_key(
        root,
        settings=Settings.load(),
        cache_dir=tmp_path / "c",
        extra_inputs=["notes/*.txt"],
        extra_env=["HOME"],
    )
    assert extra != plain
    assert "notes/todo.txt" in inputs.files and "HOME" in inputs.env


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside/*", ""])
def test_declared_input_outside_project_is_an_error(
    bad: str, project: Path, tmp_path: Path
) -> None:
    with pytest.raises(sources.InputsConfigError):
        compute_key(
            find_project(project),
            settings=Settings.load(),
            cache_dir=tmp_path / "c",
            extra_inputs=[bad],
        )


def test_malformed_tool_table_is_an_error(project: Path, tmp_path: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.reflex-buildd]\ninputs = "content"\n')
    with pytest.raises(sources.InputsConfigError, match="list of strings"):
        compute_key(find_project(project), settings=Settings.load(), cache_dir=tmp_path / "c")


def _site_indexes(cache: Path) -> set[str]:
    return {p.name for p in Cache(cache).statcache_dir.glob("site-*.json")}


def test_a_written_working_directory_keeps_the_site_index(
    project: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """A host's working directory is on sys.path, gets written (logs, .states/)
    and differs between hosts: none of that may make a start scan every
    distribution again."""
    workdir = tmp_path / "host-workdir"
    workdir.mkdir()
    clean_env.syspath_prepend(str(workdir))
    cache = tmp_path / "cache"
    first = key_of_tree(project, cache)[0]
    indexes = _site_indexes(cache)
    assert len(indexes) == 1
    time.sleep(0.01)  # a later mtime, on filesystems with coarse timestamps too
    (workdir / "host.log").write_text("started\n")
    (workdir / ".states").mkdir()
    assert key_of_tree(project, cache)[0] == first
    assert _site_indexes(cache) == indexes  # the same site state: no new scan
    # Another host, run from another directory: the same installed distributions.
    other = tmp_path / "other-workdir"
    other.mkdir()
    clean_env.syspath_prepend(str(other))
    assert key_of_tree(project, cache)[0] == first
    assert _site_indexes(cache) == indexes


def test_a_distribution_installed_into_a_plain_directory_counts(
    project: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """The other side: a directory on sys.path without metadata that gets some
    (``pip install --target``) changes the site state, and the key."""
    workdir = tmp_path / "host-workdir"
    workdir.mkdir()
    clean_env.syspath_prepend(str(workdir))
    cache = tmp_path / "cache"
    first, inputs = key_of_tree(project, cache)
    assert "reflex-components-late" not in inputs.versions
    write_dist(workdir, "reflex-components-late", "1.0", "reflex_components_late")
    second, inputs = key_of_tree(project, cache)
    assert second != first and inputs.versions["reflex-components-late"] == "1.0"
