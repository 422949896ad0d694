"""One artifact, three prefixes, checked end to end in Chromium (invariants 1, 2, 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_checks import check_showcase
from conftest import Built, run_host

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def artifact_before(showcase_build: Built) -> dict[str, bytes]:
    return _tree(showcase_build.path)


# Each prefix under uvicorn; under granian the root mount (where the host's
# root_path is all there is; /admin runs under granian in test_hosts.py).
@pytest.mark.parametrize(
    ("prefix", "server"),
    [("/", "uvicorn"), ("/admin", "uvicorn"), ("/a/b/c", "uvicorn"), ("/", "granian")],
)
def test_same_artifact_under_any_prefix(
    prefix: str,
    server: str,
    browser: object,
    showcase_build: Built,
    artifact_before: dict[str, bytes],
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    uploads = tmp_path / "uploads"
    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        server=server,
        SHOWCASE_MOUNT_PATH=prefix,
        REFLEX_UPLOADED_FILES_DIR=str(uploads),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
    ) as host:
        check_showcase(browser, host.url, prefix.rstrip("/"), tmp_path)
        # The host's own route still answers beside the mount.
        import urllib.request

        with urllib.request.urlopen(host.url + "/health", timeout=5) as resp:
            assert b"host startup" in resp.read()
    assert (uploads / "hello.txt").exists()
    # No rebuild: still one artifact in the cache, byte for byte unchanged.
    artifacts = list((cache_dir / "v1" / "artifacts").iterdir())
    assert [a.name for a in artifacts] == [showcase_build.key]
    assert _tree(showcase_build.path) == artifact_before


def test_the_demo_page_explains_itself(
    browser: object, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
    ) as host:
        context = browser.new_context()  # type: ignore[attr-defined]
        try:
            page = context.new_page()
            page.goto(host.url + "/admin/")
            expect(page.locator("#about-demo")).to_contain_text("/admin of a FastAPI host")
            # The host's own routes, linked at the page's origin (built at run time).
            links = page.locator("#host-routes a")
            expect(links).to_have_count(2, timeout=20_000)
            hrefs = [links.nth(i).get_attribute("href") for i in range(2)]
            assert hrefs == [host.url + "/health", host.url + "/docs"], hrefs
            with context.expect_page() as opened:
                links.first.click()
            health = opened.value
            health.wait_for_load_state()
            assert '"ok":true' in health.content()
        finally:
            context.close()
