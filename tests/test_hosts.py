"""Each documented host example, end to end in Chromium (the full check)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser_checks import check_showcase
from conftest import Built, run_host

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_starlette_host(browser: object, showcase_build: Built, cache_dir: Path, tmp_path: Path) -> None:
    with run_host(
        "examples.hosts.starlette_host:app",
        cache_dir=cache_dir,
        log_dir=tmp_path,
        REFLEX_BUILDD_POLICY="fail",  # the session's build must be found, not redone
        REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
    ) as host:
        check_showcase(browser, host.url, "/admin", tmp_path)
        with urllib.request.urlopen(host.url + "/health", timeout=5) as resp:
            assert json.loads(resp.read())["events"] == ["host startup"]
        # The host's catch-all still answers outside the mount.
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(host.url + "/elsewhere/x", timeout=5)
        assert json.loads(info.value.read())["host"] == "catch-all"
