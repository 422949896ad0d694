"""Root-absolute asset references of a real app, one build, two prefixes, in Chromium.

The fixture app (tests/fixtures/asset_refs) writes ``"/logo.png"`` the way
Reflex's documentation teaches, in every place a real app does; its ``/late``
page holds values only the run time sees, and one that is no file of the app,
which ``doctor`` must name.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from browser_checks import TIMEOUT_MS, _record
from conftest import REPO, run_cli, run_host

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROJECT = REPO / "tests" / "fixtures" / "asset_refs"


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (
            p.read_bytes() if p.is_file() else b"",
            p.stat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


@dataclass(frozen=True)
class FixtureBuild:
    key: str
    path: Path
    stderr: str
    tree_before: dict[str, tuple[bytes, int]]


@pytest.fixture(scope="module")
def fixture_build(tmp_path_factory: pytest.TempPathFactory) -> FixtureBuild:
    """The fixture app, built once for this module in a cache of its own (a real build)."""
    cache = tmp_path_factory.mktemp("asset-refs-cache")
    before = _tree(PROJECT)
    result = run_cli("build", str(PROJECT), "--json", cache_dir=cache)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["built"] is True
    return FixtureBuild(data["key"], Path(data["path"]), result.stderr, before)


def _natural_width(page: Any, selector: str) -> int:
    page.wait_for_function(
        "(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=TIMEOUT_MS,
    )
    return int(page.evaluate("(s) => document.querySelector(s).naturalWidth", selector))


def _check_page(browser: Any, origin: str, prefix: str) -> None:
    from playwright.sync_api import expect

    base = origin + prefix
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    rec = _record(page)
    try:
        page.goto(base + "/")
        expect(page.locator("#title")).to_have_text("Asset refs")

        # Every image decodes (natural size, each PNG has its own width): a
        # string prop, one with a sub-directory and a query, a run-time value.
        assert _natural_width(page, "#img-prop") == 41
        assert _natural_width(page, "#img-query") == 42
        assert _natural_width(page, "#img-runtime") == 46
        assert page.get_attribute("#img-prop", "src") == f"{prefix}/logo.png"
        assert page.get_attribute("#img-query", "src") == f"{prefix}/img/deep.png?v=2"
        assert page.get_attribute("#img-runtime", "src") == f"{prefix}/avatar.png"

        # rx.script ran; the head_components stylesheet applied (its own
        # colour, and its url() under the prefix); the bundled stylesheet's
        # url() and an inline style's url() too.
        page.wait_for_function("window.__assetRefsScript === 'ran'")
        style = "([s, p]) => getComputedStyle(document.querySelector(s))[p]"
        page.wait_for_function(f"({style})(['#extra', 'outlineColor']) === 'rgb(1, 2, 3)'")
        assert f'{base}/bg2.png"' in page.evaluate(style, ["#extra", "backgroundImage"])
        assert f'{base}/bg.png"' in page.evaluate(style, ["#styled", "backgroundImage"])
        assert f'{base}/bg.png"' in page.evaluate(style, ["#inline-bg", "backgroundImage"])
        for name in ("bg.png", "bg2.png"):
            page.wait_for_function(
                "(u) => performance.getEntriesByType('resource').some(e => e.name === u)",
                arg=f"{base}/{name}",
            )

        # Page meta and head links carry the prefix.
        assert page.get_attribute('meta[property="og:image"]', "content") == f"{prefix}/hero.png"
        assert page.get_attribute('link[rel="icon"]', "href") == f"{prefix}/icon.png"
        with urllib.request.urlopen(f"{base}/icon.png", timeout=10) as resp:
            assert resp.headers["content-type"] == "image/png"

        # A link to a file gets the prefix; external and protocol-relative ones
        # are untouched; a route named like an asset's stem stays a route.
        assert page.get_attribute("#link-file", "href") == f"{prefix}/logo.png"
        assert page.get_attribute("#link-cdn", "href") == "//cdn.example.invalid/logo.png"
        assert page.get_attribute("#link-ext", "href") == "https://example.invalid/logo.png"
        assert page.get_attribute("#link-route", "href") == f"{prefix}/logo"
        page.locator("#link-route").click()
        expect(page.locator("#title")).to_have_text("Logo page")
        assert page.url == f"{base}/logo"

        # Nothing escaped the prefix, nothing failed.
        escaped = [u for u in rec.requests if not u.startswith(base + "/")]
        assert not escaped, f"requests outside {base}: {escaped}"
        assert any(u.startswith(f"{base}/app.js") for u in rec.requests), rec.requests
        assert not rec.failed, rec.failed
        bad = {u: s for u, s in rec.statuses.items() if s >= 400}
        assert not bad, bad
        assert not rec.console_errors, rec.console_errors
    except Exception as exc:
        raise AssertionError(
            f"{exc}\nrequests: {rec.requests}\nfailed: {rec.failed}\nconsole: {rec.console_errors}"
        ) from exc
    finally:
        context.close()


@pytest.mark.parametrize("prefix", ["/admin", "/a/b"])
def test_every_asset_loads_under_the_prefix(
    prefix: str, fixture_build: FixtureBuild, browser: object, tmp_path: Path
) -> None:
    cache = fixture_build.path.parent.parent.parent
    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=tmp_path,
        SHOWCASE_PROJECT=str(PROJECT),
        SHOWCASE_MOUNT_PATH=prefix,
        REFLEX_BUILDD_POLICY="fail",  # the one build above must be enough
        REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
    ) as host:
        _check_page(browser, host.url, prefix)
    assert [p.name for p in fixture_build.path.parent.iterdir()] == [fixture_build.key]


def test_build_warns_and_doctor_names_what_cannot_be_fixed(fixture_build: FixtureBuild) -> None:
    assert "will leave the mount prefix" in fixture_build.stderr
    assert "/missing.png" in fixture_build.stderr
    cache = fixture_build.path.parent.parent.parent
    result = run_cli("doctor", str(PROJECT), "--json", cache_dir=cache)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    # The /late page's state default and its URL assembled in the frontend name
    # files of assets/: the run-time rule fixes them. What is no file of the
    # app is left, and named.
    assert {(f["kind"], f["url"]) for f in findings} == {("not-an-asset", "/missing.png")}
    assert all("late" in f["file"] for f in findings), findings
    assert any("#img-missing" in f["context"] for f in findings), findings
    assert all(f["sources"] == ["asset_refs/asset_refs.py:63"] for f in findings), findings
    # It says what it cannot see.
    assert "not seen by this scan: URLs your own JavaScript builds" in result.stderr
    strict = run_cli("doctor", str(PROJECT), "--strict", cache_dir=cache)
    assert strict.returncode == 4, strict.stdout + strict.stderr
    assert "not-an-asset: /missing.png" in strict.stdout and "fix:" in strict.stdout


def test_the_project_is_never_modified(fixture_build: FixtureBuild) -> None:
    # After the build, two hosts and doctor: the same files, bytes and mtimes.
    assert _tree(PROJECT) == fixture_build.tree_before
