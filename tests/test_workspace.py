"""The warm workspace's trust rules, with real files and real processes (no build).

What survives between builds is ``node_modules``, and only when it is exactly
as the last successful build left it; leftovers of a killed build's process
tree are killed before the next tenant builds.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from reflex_buildd.workspace import (
    TENANT_ENV,
    Workspace,
    WorkspaceBusyError,
    fingerprint,
    processes_with_token,
    reap,
)

FACTS = {"reflex": "0.10.1", "js_runtime": "bun@1.4.4"}


def _workspace(tmp_path: Path) -> Workspace:
    work = tmp_path / "work"
    return Workspace(
        web_dir=work / "p" / "web", record=work / "p" / "workspace.json", lock=work / "p.lock"
    )


def _fill(ws: Workspace) -> None:
    """What builds leave in .web: packages, compiled files, a copied asset, a bad name."""
    web = ws.web_dir
    (web / "node_modules" / "react").mkdir(parents=True, exist_ok=True)
    (web / "node_modules" / "react" / "index.js").write_text("react")
    (web / "public").mkdir(exist_ok=True)
    (web / "public" / "s.txt").write_text("SECRET")
    (web / "reflex.json").write_text("{}")
    with open(os.fsencode(web / "public") + b"/bad-\xff.txt", "wb") as out:
        out.write(b"x")


def _build(ws: Workspace, *, succeed: bool, facts: dict[str, str] = FACTS) -> tuple[str, ...]:
    """Occupy the workspace as a build does; return its notes."""
    with ws.occupy(facts=facts) as tenancy:
        _fill(ws)
        tenancy.succeeded = succeed
    return tenancy.notes


def _left(ws: Workspace) -> set[str]:
    return {os.fsdecode(name) for name in os.listdir(os.fsencode(ws.web_dir))}


def test_everything_but_trusted_node_modules_goes(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.web_dir.mkdir(parents=True)
    _fill(ws)
    # No record: nothing is trusted, not even node_modules.
    assert _build(ws, succeed=True)[-1].endswith("node_modules removed")
    with ws.occupy(facts=FACTS) as tenancy:
        assert _left(ws) == {"node_modules"}, "stale files or a bad name survived"
        assert tenancy.notes[-1].endswith("node_modules kept")


def test_node_modules_changed_since_the_last_success_goes(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _build(ws, succeed=True)
    # A build killed half-way through an install: the files differ from the record.
    with ws.occupy(facts=FACTS):
        (ws.web_dir / "node_modules" / "half-installed").mkdir(parents=True)
    with ws.occupy(facts=FACTS) as tenancy:
        assert tenancy.notes[-1].endswith("node_modules removed")
        assert _left(ws) == set()


def test_a_failed_build_that_left_node_modules_alone_keeps_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _build(ws, succeed=True)
    for _ in range(2):
        with ws.occupy(facts=FACTS) as tenancy:
            # Failed in the app's Python, before the install touched anything.
            assert tenancy.notes[-1].endswith("node_modules kept")
            (ws.web_dir / "backend").mkdir()


def test_another_runtime_or_reflex_resets_node_modules(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _build(ws, succeed=True)
    notes = _build(ws, succeed=True, facts={**FACTS, "js_runtime": "node@24.1.0"})
    assert notes[-1].endswith("node_modules removed")


def test_an_unreadable_record_trusts_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _build(ws, succeed=True)
    ws.record.write_text("{not json")
    with ws.occupy(facts=FACTS) as tenancy:
        assert tenancy.notes[-1].endswith("node_modules removed")


def test_fingerprint_sees_size_mtime_and_new_entries(tmp_path: Path) -> None:
    root = tmp_path / "nm"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.js").write_text("1")
    first = fingerprint(root)
    assert first == fingerprint(root)
    (root / "a" / "f.js").write_text("22")
    second = fingerprint(root)
    assert second != first
    os.utime(root / "a" / "f.js", ns=(1, 1))
    assert fingerprint(root) != second
    (root / "a" / "g.js").write_text("")
    assert fingerprint(root) not in (first, second)
    assert fingerprint(tmp_path / "missing") is None


def _spawn_tree(token: str) -> subprocess.Popen[bytes]:
    """A shell with two background sleepers, all carrying the tenant token, in a session."""
    return subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60 & wait"],
        env={**os.environ, TENANT_ENV: token},
        start_new_session=True,
    )


def _wait_count(token: str, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while len(pids := processes_with_token(token)) < count:
        assert time.monotonic() < deadline, pids
        time.sleep(0.02)
    return pids


def test_reap_kills_every_process_with_the_token(tmp_path: Path) -> None:
    token = "t" + os.urandom(8).hex()
    shell = _spawn_tree(token)
    try:
        pids = _wait_count(token, 3)
        assert reap(token, timeout=10) == len(pids)
        assert processes_with_token(token) == []
        shell.wait(timeout=10)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()


def test_the_next_tenant_kills_leftovers_before_it_builds(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    token = "t" + os.urandom(8).hex()
    # As a SIGKILLed builder leaves it: its record names a tenant, whose tree still runs.
    ws.write_record({"tenant": {"pid": 1, "host": "elsewhere", "token": token}})
    shell = _spawn_tree(token)
    try:
        _wait_count(token, 3)
        with ws.occupy(facts=FACTS) as tenancy:
            assert processes_with_token(token) == []
            assert any("killed 3 leftover" in note for note in tenancy.notes), tenancy.notes
        assert ws.read_record()["tenant"] is None
    finally:
        if shell.poll() is None:
            shell.kill()
        shell.wait(timeout=10)


def test_reap_gives_up_on_a_process_it_cannot_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process in uninterruptible sleep cannot be produced on demand: this
    # one only pretends to be alive.
    monkeypatch.setattr("reflex_buildd.workspace.processes_with_token", lambda token: [2**22 + 7])
    with pytest.raises(WorkspaceBusyError, match="still alive"):
        reap("x", timeout=0.05)
