"""The daemon and the waiting hosts, with real processes (invariants 3, 5, 6)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (
    SHOWCASE,
    run_cli,
    run_daemon,
    run_host,
    spawn_host,
    stop_process,
    tool_env,
    wait_for,
    wait_ready,
)
from reflex_buildd_client.cache.status import BuildState, read_journal, read_status
from reflex_buildd_client.cache.store import Cache

pytestmark = pytest.mark.slow

HOST = "examples.hosts.fastapi_host:app"


def _copy(tmp_path: Path, name: str = "proj") -> Path:
    project = tmp_path / name
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def _events(cache: Path, event: str | None = None) -> list[dict[str, object]]:
    return [e for e in read_journal(Cache(cache)) if event is None or e["event"] == event]


def _key(project: Path, cache: Path) -> str:
    result = run_cli("key", str(project), cache_dir=cache)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _host_env(project: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "SHOWCASE_PROJECT": str(project),
        "REFLEX_UPLOADED_FILES_DIR": str(tmp_path / "uploads"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
        **extra,
    }


def _break(project: Path) -> Path:
    page = project / "showcase" / "showcase.py"
    original = page.read_text()
    page.write_text(
        original
        + "\n\ndef broken() -> rx.Component:\n"
        + "    raise ValueError('the broken page says no')\n\n\n"
        + "app.add_page(broken, route='/broken')\n"
    )
    return page


@pytest.mark.browser
def test_edit_publishes_a_new_key_and_non_inputs_build_nothing(
    tmp_path: Path, browser: object
) -> None:
    from playwright.sync_api import expect

    project, cache = _copy(tmp_path), tmp_path / "cache"
    with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log"):
        first = _key(project, cache)
        wait_for(
            lambda: (cache / "v1/artifacts" / first / "manifest.json").exists(),
            timeout=180,
            what="the first build",
        )
        page = project / "showcase" / "showcase.py"
        page.write_text(
            page.read_text().replace('rx.heading("Showcase"', 'rx.heading("Showcase v2"')
        )
        second = _key(project, cache)
        assert second != first
        wait_for(
            lambda: (cache / "v1/artifacts" / second / "manifest.json").exists(),
            timeout=180,
            what="the rebuild after an edit",
        )

        starts = len(_events(cache, "start"))
        (project / "app.db").write_bytes(b"SQLite format 3\0")
        (project / "showcase" / "__pycache__").mkdir(exist_ok=True)
        (project / "showcase" / "__pycache__" / "showcase.cpython-311.pyc").write_bytes(b"\0" * 64)
        (project / "uploaded_files").mkdir(exist_ok=True)
        (project / "uploaded_files" / "avatar.png").write_bytes(b"\x89PNG")
        (project / "showcase" / ".showcase.py.swp").write_bytes(b"swap")
        # The daemon logs each batch it looked at; wait until it has seen these.
        log = tmp_path / "daemon.log"
        wait_for(
            lambda: "ignored" in log.read_text(), timeout=20, what="the daemon to see the changes"
        )
        time.sleep(1.0)
        assert len(_events(cache, "start")) == starts, log.read_text()
        assert _key(project, cache) == second

        # Undo the edit with sed -i (it saves through a temp file), then redo
        # it: each key is already built, and the daemon says so.
        for text, key in (("Showcase", first), ("Showcase v2", second)):
            old = "Showcase v2" if key == first else "Showcase"
            subprocess.run(
                ["sed", "-i", f's/rx.heading("{old}"/rx.heading("{text}"/', str(page)],
                check=True,
                timeout=10,
            )
            wait_for(
                lambda key=key: f"already built: {key}" in log.read_text(),
                timeout=20,
                what=f"the daemon to find {key} built",
            )
        assert len(_events(cache, "start")) == starts, log.read_text()
        lines = log.read_text().splitlines()
        # Only the edited file is named (not sed's temp file), every line has a time.
        assert any(
            line.endswith(f"changed: showcase/showcase.py -> key {first}") for line in lines
        ), lines
        assert not [line for line in lines if "showcase/sed" in line], lines
        assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines if line.strip()), lines

    # A host started afterwards serves the new content.
    with run_host(HOST, cache_dir=cache, log_dir=tmp_path, **_host_env(project, tmp_path)) as host:
        context = browser.new_context()  # type: ignore[attr-defined]
        try:
            tab = context.new_page()
            tab.goto(host.url + "/admin/")
            expect(tab.locator("#title")).to_have_text("Showcase v2", timeout=20_000)
        finally:
            context.close()


def test_a_change_during_a_build_supersedes_it(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    page = project / "showcase" / "showcase.py"
    with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log"):
        first = _key(project, cache)
        wait_for(
            (cache / "v1" / "artifacts" / first / "manifest.json").exists,
            timeout=180,
            what="the first build",
        )
        page.write_text(page.read_text() + "\n# edit one\n")
        second = _key(project, cache)
        wait_for(
            lambda: any(e["key"] == second for e in _events(cache, "start")),
            timeout=60,
            what="the build of the first edit to start",
        )
        page.write_text(page.read_text() + "\n# edit two\n")
        third = _key(project, cache)
        wait_for(
            (cache / "v1" / "artifacts" / third / "manifest.json").exists,
            timeout=180,
            what="the build of the last edit",
        )
    by_key = [(e["event"], e["key"]) for e in _events(cache)]
    assert ("cancelled", second) in by_key, by_key
    assert ("published", second) not in by_key, by_key
    assert not (cache / "v1" / "artifacts" / second).exists()


def test_daemon_rebuilds_its_key_when_the_artifact_vanishes(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log"):
        key = _key(project, cache)
        manifest = cache / "v1" / "artifacts" / key / "manifest.json"
        wait_for(manifest.exists, timeout=180, what="the first build")
        wait_for(lambda: "published" in json.dumps(_events(cache)), timeout=30, what="the journal")
        # What verify's quarantine does: move the artifact out of artifacts/.
        (cache / "v1" / "quarantine").mkdir(parents=True, exist_ok=True)
        (cache / "v1" / "artifacts" / key).rename(cache / "v1" / "quarantine" / key)
        wait_for(manifest.exists, timeout=180, what="the daemon to rebuild the vanished key")
    assert len(_events(cache, "published")) == 2


def test_second_daemon_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    with run_daemon(project, cache_dir=cache, log=tmp_path / "d1.log") as first:
        wait_for(
            lambda: (
                (cache / "v1" / "daemons").exists()
                and any((cache / "v1" / "daemons").glob("*.json"))
            ),
            timeout=60,
            what="the first daemon's record",
        )
        second = run_cli("watch", str(project), cache_dir=cache, timeout=60)
        assert second.returncode == 3, second.stderr
        assert f"pid {first.pid}" in second.stderr


def test_sigterm_stops_the_daemon_and_its_build(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log") as daemon:
        wait_for(lambda: _events(cache, "start"), timeout=60, what="a build to start")
        time.sleep(0.5)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
    # Nothing of the build survives: no process works in the cache's scratch.
    scratch = str(cache / "v1" / "tmp")

    def builders() -> list[str]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(scratch):
                    found.append(proc.name)
            except OSError:
                continue
        return found

    wait_for(lambda: not builders(), timeout=10, what="the build subprocess to exit")
    assert not any((cache / "v1" / "artifacts").iterdir())
    assert [e["event"] for e in _events(cache)][-1] == "cancelled"


def test_eight_hosts_and_two_clis_cause_exactly_one_build(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    env = _host_env(project, tmp_path)
    hosts = [spawn_host(HOST, cache_dir=cache, log_dir=tmp_path, **env) for _ in range(8)]
    clis = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "build",
                str(project),
                "--cache-dir",
                str(cache),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=tool_env(),
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [cli.communicate(timeout=300) for cli in clis]
        for cli, (_out, err) in zip(clis, outputs, strict=True):
            assert cli.returncode == 0, err
        keys = {json.loads(out.splitlines()[-1])["key"] for out, _ in outputs}
        for host in hosts:
            wait_ready(host, "/admin/", timeout=300)
        etags = set()
        for host in hosts:
            with urllib.request.urlopen(host.url + "/admin/", timeout=10) as resp:
                etags.add(resp.headers["etag"])
    finally:
        for host in hosts:
            stop_process(host.process)
    assert len(keys) == 1
    assert len(etags) == 1, etags  # every worker serves the same artifact
    starts = _events(cache, "start")
    assert len(starts) == 1, starts
    assert len(_events(cache, "published")) == 1
    assert [p.name for p in (cache / "v1" / "artifacts").iterdir()] == list(keys)


def test_uvicorn_workers_share_one_build(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    with run_host(
        HOST,
        cache_dir=cache,
        log_dir=tmp_path,
        ready_path="/admin/",
        timeout=300,
        extra_args=("--workers", "4"),
        **_host_env(project, tmp_path),
    ) as host:
        for _ in range(8):
            with urllib.request.urlopen(host.url + "/admin/ping", timeout=10) as resp:
                assert resp.status == 200
    assert len(_events(cache, "start")) == 1
    assert len(_events(cache, "published")) == 1


def test_a_worker_killed_mid_build_is_taken_over(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    env = _host_env(project, tmp_path)
    first = spawn_host(HOST, cache_dir=cache, log_dir=tmp_path, **env)
    try:
        wait_for(
            lambda: _events(cache, "start"), timeout=120, what="the first host to start building"
        )
        first.process.kill()
        first.process.wait(timeout=10)
    finally:
        stop_process(first.process)
    key = _key(project, cache)
    # The killed builder's record is recognised as dead.
    wait_for(
        lambda: read_status(Cache(cache), key).state is BuildState.ABSENT,
        timeout=10,
        what="the dead builder's record to read as absent",
    )
    with run_host(
        HOST, cache_dir=cache, log_dir=tmp_path, ready_path="/admin/", timeout=300, **env
    ):
        pass
    events = [e["event"] for e in _events(cache)]
    assert events.count("start") == 2 and events.count("published") == 1, events


def test_broken_app_fails_the_waiting_host_fast_and_a_fix_recovers(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    page = _break(project)
    env = _host_env(project, tmp_path, REFLEX_BUILDD_POLICY="wait", REFLEX_BUILDD_TIMEOUT="300")
    host = spawn_host(HOST, cache_dir=cache, log_dir=tmp_path, **env)
    try:
        time.sleep(1.0)  # the host is waiting for a daemon before any build exists
        assert host.process.poll() is None, host.output()
        with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log"):
            key = _key(project, cache)
            status = wait_for(
                lambda: (s := read_status(Cache(cache), key)).state is BuildState.FAILED and s,
                timeout=180,
                what="the failure record",
            )
            failed_at = float(status.record["time"])
            wait_for(lambda: host.process.poll() is not None, timeout=15, what="the host to fail")
            exited_at = time.time()
            # Within 2 seconds of the failure record (the bound), not
            # after the 300 s timeout.
            assert exited_at - failed_at < 2.0, (exited_at - failed_at, host.output())
            assert "the broken page says no" in host.output()
            assert host.process.returncode != 0

            # Fix the file: the daemon builds the new key and a host starts.
            page.write_text(page.read_text().split("\n\ndef broken()")[0] + "\n")
            fixed = _key(project, cache)
            wait_for(
                lambda: (cache / "v1/artifacts" / fixed / "manifest.json").exists(),
                timeout=180,
                what="the fixed build",
            )
            with run_host(HOST, cache_dir=cache, log_dir=tmp_path, ready_path="/admin/", **env):
                pass
    finally:
        stop_process(host.process)


def test_policy_fail_and_the_daemon_mismatch_explanation(tmp_path: Path) -> None:
    project, cache = _copy(tmp_path), tmp_path / "cache"
    # Policy fail: no artifact, no build, a clear message with the command.
    host = spawn_host(
        HOST,
        cache_dir=cache,
        log_dir=tmp_path,
        **_host_env(project, tmp_path, REFLEX_BUILDD_POLICY="fail"),
    )
    try:
        assert host.process.wait(timeout=60) != 0
    finally:
        stop_process(host.process)
    assert "startup policy is 'fail'" in host.output()
    assert "reflex-buildd build" in host.output()
    assert not _events(cache, "start")

    # A host whose environment differs from the daemon's waits for a key no
    # daemon builds, and says why the keys differ.
    with run_daemon(project, cache_dir=cache, log=tmp_path / "daemon.log"):
        wait_for(lambda: _events(cache, "published"), timeout=180, what="the daemon's build")
        host = spawn_host(
            HOST,
            cache_dir=cache,
            log_dir=tmp_path,
            **_host_env(
                project,
                tmp_path,
                REFLEX_BUILDD_POLICY="wait",
                REFLEX_BUILDD_TIMEOUT="2",
                VITE_FEATURE_FLAG="on",
            ),
        )
        try:
            assert host.process.wait(timeout=60) != 0
        finally:
            stop_process(host.process)
    output = host.output()
    assert "gave up after 2s" in output, output
    assert "environment variable VITE_FEATURE_FLAG is set here only" in output, output
