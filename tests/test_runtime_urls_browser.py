"""Root-absolute URLs an app computes at run time follow the prefix, in Chromium.

The fixture app (tests/fixtures/runtime_urls) holds ``"/logo.png"``,
``"/other"``, ``"/_upload/dot.png"`` ... in state, the way a ``reflex run``
app does, and uses them as image sources (``src``, ``srcSet``, ``poster``, a
Radix avatar, a CSS ``url()``), form actions, downloads, redirects and
navigations from scripts. One build, mounted under a prefix and at ``/``:
every request stays under the mount, every file loads, and an external URL
and a route of the host stay as they are.
"""

from __future__ import annotations

import contextlib
import struct
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from browser_checks import TIMEOUT_MS, _record
from conftest import FixtureApp, build_fixture_app, run_host

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORT = b"name,value\nruntime,urls\n"
HELLO = b"hello from the upload directory\n"


def _png(width: int) -> bytes:
    """A 10 px high PNG of ``width`` (each image's width tells which one decoded)."""
    raw = b"".join(b"\x00" + b"\x10\x80\x20" * width for _ in range(10))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, 10, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def runtime_urls_app(apps_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> FixtureApp:
    """tests/fixtures/runtime_urls, built once per session."""
    return build_fixture_app("runtime_urls", apps_cache, tmp_path_factory.mktemp("runtime-urls"))


def _natural_width(page: Any, selector: str) -> int:
    try:
        page.wait_for_function(
            "(s) => { const i = document.querySelector(s);"
            " return i && i.complete && i.naturalWidth > 0; }",
            arg=selector,
            timeout=TIMEOUT_MS,
        )
    except Exception as exc:
        html = page.evaluate("(s) => document.querySelector(s)?.outerHTML", selector)
        raise AssertionError(f"{selector} never decoded: {html}") from exc
    return int(page.evaluate("(s) => document.querySelector(s).naturalWidth", selector))


def _loaded(page: Any, url: str) -> None:
    page.wait_for_function(
        "(u) => performance.getEntriesByType('resource').some(e => e.name === u)", arg=url
    )


@dataclass(frozen=True)
class Mounted:
    """The fixture app served by a real host under ``prefix`` ("" for the root)."""

    origin: str
    prefix: str

    @property
    def base(self) -> str:
        return self.origin + self.prefix


@pytest.fixture(
    scope="module",
    params=[("/tools/rx", "inprocess"), ("", "inprocess"), ("/tools/rx", "process")],
    ids=["prefix", "root", "prefix-process"],
)
def mounted(
    request: pytest.FixtureRequest,
    runtime_urls_app: FixtureApp,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mounted]:
    """One host per mount path (and backend mode) for the module; uploads hold a
    text file and an image."""
    prefix, mode = request.param
    tmp = tmp_path_factory.mktemp("runtime-urls-host")
    uploads = tmp / "uploads"
    uploads.mkdir()
    (uploads / "hello.txt").write_bytes(HELLO)
    (uploads / "dot.png").write_bytes(_png(68))
    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=runtime_urls_app.cache,
        log_dir=tmp,
        SHOWCASE_PROJECT=str(runtime_urls_app.project),
        SHOWCASE_MOUNT_PATH=prefix or "/",
        REFLEX_BUILDD_POLICY="fail",  # the session's one build must be enough
        REFLEX_BUILDD_BACKEND=mode,
        REFLEX_UPLOADED_FILES_DIR=str(uploads),
        REFLEX_STATES_WORKDIR=str(tmp / "states"),
    ) as host:
        with urllib.request.urlopen(f"{host.url}{prefix}/report.csv", timeout=10) as resp:
            assert resp.read() == REPORT
        yield Mounted(host.url, prefix)


@contextlib.contextmanager
def app_page(browser: Any, mounted: Mounted) -> Iterator[Any]:
    """The index page, loaded and hydrated (``on_load`` ran); afterwards, no request
    may have left the mount, every file must have loaded, and nothing failed."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    rec = _record(page)
    try:
        page.goto(mounted.base + "/")
        expect(page.locator("#title")).to_have_text("Runtime URLs")
        # on_load has run: the backend's values are there.
        expect(page.locator("#link-dynamic")).to_have_attribute("href", f"{mounted.prefix}/post/7")
        yield page
        escaped = [u for u in rec.requests if not u.startswith(mounted.base + "/")]
        assert not escaped, f"requests outside {mounted.base}: {escaped}"
        bad = {u: s for u, s in rec.statuses.items() if s >= 400}
        assert not bad, bad
        # A navigation may abort the loads of the page it leaves.
        failed = [f for f in rec.failed if not f.endswith("net::ERR_ABORTED")]
        assert not failed, failed
        assert not rec.console_errors, rec.console_errors
    except Exception as exc:
        raise AssertionError(
            f"{exc}\nrequests: {rec.requests}\nstatuses: {rec.statuses}\n"
            f"failed: {rec.failed}\nconsole: {rec.console_errors}"
        ) from exc
    finally:
        context.close()


def test_state_held_images_load_under_the_prefix(browser: object, mounted: Mounted) -> None:
    prefix = mounted.prefix
    with app_page(browser, mounted) as page:
        # Set by on_load, so never in the prerendered page: src, srcset (the 1x
        # candidate), an uploaded file; then state defaults: a Radix avatar (a
        # component's prop) and a video poster. Each decodes (its own width).
        assert _natural_width(page, "#img-late") == 62
        assert page.get_attribute("#img-late", "src") == f"{prefix}/photo.png"
        assert _natural_width(page, "#img-srcset") == 63
        current = page.evaluate("document.querySelector('#img-srcset').currentSrc")
        assert current == f"{mounted.base}/small.png"
        assert _natural_width(page, "#img-upload") == 68
        assert page.get_attribute("#img-upload", "src") == f"{prefix}/_upload/dot.png"
        assert _natural_width(page, "#avatar-radix") == 67
        assert page.get_attribute("#avatar-radix", "src") == f"{prefix}/avatar.png"
        assert page.get_attribute("#video-poster", "poster") == f"{prefix}/poster.png"
        _loaded(page, f"{mounted.base}/poster.png")
        # A default reaches the prerendered HTML with the prefix; the helper's
        # value (already prefixed) gets no second one.
        assert _natural_width(page, "#img-default") == 61
        assert page.get_attribute("#img-default", "src") == f"{prefix}/logo.png"
        assert _natural_width(page, "#img-helper") == 67
        assert page.get_attribute("#img-helper", "src") == f"{prefix}/avatar.png"


def test_inline_style_url_loads_under_the_prefix(browser: object, mounted: Mounted) -> None:
    with app_page(browser, mounted) as page:
        style = "getComputedStyle(document.querySelector('#styled')).backgroundImage"
        page.wait_for_function(f"{style}.includes('bg.png')")
        assert f'"{mounted.base}/bg.png"' in page.evaluate(style)
        _loaded(page, f"{mounted.base}/bg.png")


def test_form_actions_follow_only_for_the_apps_routes(browser: object, mounted: Mounted) -> None:
    prefix = mounted.prefix
    with app_page(browser, mounted) as page:
        assert page.get_attribute("#form", "action") == f"{prefix}/other"
        # Left alone: an external URL and a route of the host, not of the app.
        assert page.get_attribute("#form-ext", "action") == "https://example.invalid/logo.png"
        assert page.get_attribute("#form-host", "action") == "/health"
        # Router links (React Router adds the prefix) keep exactly one.
        assert page.get_attribute("#link-page", "href") == f"{prefix}/other"
        assert page.get_attribute("#link-router", "href") == f"{prefix}/other"
        assert page.get_attribute("#link-upload", "href") == f"{prefix}/_upload/hello.txt"
        assert page.get_attribute("#link-ext", "href") == "https://example.invalid/logo.png"


def test_downloads_follow_the_prefix(browser: object, mounted: Mounted) -> None:
    with app_page(browser, mounted) as page:
        for button, url, body in (
            ("#download", f"{mounted.base}/report.csv", REPORT),
            ("#download-upload", f"{mounted.base}/_upload/hello.txt", HELLO),
        ):
            with page.expect_download(timeout=TIMEOUT_MS) as info:
                page.locator(button).click()
            download = info.value
            assert download.url == url, download.url
            assert Path(download.path()).read_bytes() == body


def test_redirects_follow_the_prefix(browser: object, mounted: Mounted) -> None:
    from playwright.sync_api import expect

    with app_page(browser, mounted) as page:
        # An external redirect opens a window on the app's file.
        with page.context.expect_page(timeout=TIMEOUT_MS) as opened:
            page.locator("#redirect-external").click()
        popup = opened.value
        popup.wait_for_load_state()
        assert popup.url == f"{mounted.base}/logo.png", popup.url
        popup.close()
        # A redirect to a page (React Router's navigate).
        page.locator("#redirect").click()
        expect(page.locator("#title")).to_have_text("Other")
        assert page.url == f"{mounted.base}/other", page.url


@pytest.mark.parametrize(
    ("button", "path", "title"),
    [("#script-nav", "/post/7", "Post"), ("#script-static", "/other", "Other")],
)
def test_call_script_navigations_follow_the_prefix(
    browser: object, mounted: Mounted, button: str, path: str, title: str
) -> None:
    from playwright.sync_api import expect

    # Sent by the backend (to a dynamic route), and compiled into the page.
    with app_page(browser, mounted) as page:
        page.locator(button).click()
        expect(page.locator("#title")).to_have_text(title)
        assert page.url == mounted.base + path, page.url


def test_a_script_navigation_to_a_host_route_leaves_the_app(
    browser: object, mounted: Mounted
) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(mounted.base + "/")
        page.locator("#title").wait_for()
        page.locator("#script-host").click()
        page.wait_for_url(f"{mounted.origin}/health")
        assert '"ok":true' in page.content()
    finally:
        context.close()
