"""The app behind real reverse proxies that add a prefix (the header-derived prefix rule).

One host process mounts the showcase at ``/admin`` and trusts 127.0.0.1 (uvicorn's
defaults otherwise); two proxies strip a prefix and say so: ``tests/proxy.py``
strips ``/ext/tools`` (with ``X-Forwarded-Prefix/Proto/Host``), Debian's nginx
strips ``/other`` with the config of ``docs/serving.md``, its
``X-Forwarded-For`` naming a browser on another machine, so uvicorn hands the
mount that address, not the proxy's (issue 11, defect 9). The browser sees
``/ext/tools/admin`` or ``/other/admin``: everything (documents, assets,
upload, websocket) must stay under it.
"""

from __future__ import annotations

import html
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_checks import check_showcase
from conftest import Built, Host, run_host
from nginx import Nginx, run_nginx
from proxy import RunningProxy, run_proxy

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def trusting_host(
    showcase_build: Built, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    tmp = tmp_path_factory.mktemp("proxied-host")
    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache_dir,
        log_dir=tmp,
        SHOWCASE_MOUNT_PATH="/admin",
        REFLEX_BUILDD_TRUSTED_PROXIES="127.0.0.1",
        REFLEX_UPLOADED_FILES_DIR=str(tmp / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp / "states"),
    ) as host:
        yield host


@pytest.fixture(scope="module")
def proxies(
    trusting_host: Host, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningProxy, Nginx]]:
    tmp = tmp_path_factory.mktemp("proxies")
    upstream = int(trusting_host.url.rsplit(":", 1)[1])
    with (
        run_proxy(trusting_host.url, "/ext/tools", log_dir=tmp) as one,
        run_nginx(upstream, "/other", tmp=tmp / "nginx", forwarded_for="203.0.113.9") as two,
    ):
        yield one, two


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def _meta(page: bytes) -> tuple[str, str]:
    match = re.search(
        rb'<meta name="reflex-buildd" data-prefix="([^"]*)" data-backend="([^"]*)">', page
    )
    assert match, page[:500]
    return html.unescape(match.group(1).decode()), html.unescape(match.group(2).decode())


def test_browser_through_proxy(
    proxies: tuple[RunningProxy, Nginx], browser: object, tmp_path: Path
) -> None:
    one, _ = proxies
    check_showcase(browser, one.url, "/ext/tools/admin", tmp_path)


def test_two_proxies_one_host(proxies: tuple[RunningProxy, Nginx], trusting_host: Host) -> None:
    """One project, two external prefixes, one process: each gets its own pages."""
    for proxy, origin in zip(proxies, (proxies[0].url, ""), strict=True):
        external = proxy.prefix + "/admin"
        status, page = _get(proxy.url + external + "/about")
        assert status == 200
        # Only tests/proxy.py sends X-Forwarded-Host; without it the page's own origin.
        assert _meta(page) == (external, origin + external if origin else "")
        assets = re.findall(rb'href="([^"]+/assets/[^"]+\.js)"', page)
        assert assets and all(a.startswith(external.encode() + b"/assets/") for a in assets)
        assert b"__RXBUILDD_PREFIX__" not in page
        status, script = _get(proxy.url + assets[0].decode())
        assert status == 200 and script
    # Direct access (no forwarded headers) still gets the host's own prefix.
    status, page = _get(trusting_host.url + "/admin/")
    assert _meta(page) == ("/admin", "")


def test_browser_through_nginx(
    proxies: tuple[RunningProxy, Nginx], browser: object, tmp_path: Path
) -> None:
    _, two = proxies
    check_showcase(browser, two.url, "/other/admin", tmp_path)
