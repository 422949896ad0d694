"""What a new user reads in their second hour: every message, with its text, from real processes.

One test per message of issue 23's list (the tutorial's install and dev step:
tests/test_install.py; links that work offline: tests/test_packaging.py).
Each drives the real CLI, uvicorn or granian in a subprocess, and checks the
words a user sees, not only the exit code.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    FIXTURES,
    REPO,
    SHOWCASE,
    Built,
    FixtureApp,
    free_port,
    run_cli,
    spawn_host,
    stop_process,
    tool_env,
    wait_for,
)

_CLI = (sys.executable, "-m", "reflex_buildd")
FASTAPI_HOST = "examples.hosts.fastapi_host:app"
_HOST = """
import os
from fastapi import FastAPI
from reflex_buildd_client import mount

app = FastAPI()


@app.get("/health")
def health():
    return {"ok": True}


mount(app, "/admin", project=os.environ.get("MESSAGES_PROJECT", "no/such/project"))
"""


def _cli(
    *args: str, cwd: Path = REPO, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tool_env(**env),
        cwd=cwd,
        check=False,
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's one error line (the last line of stderr)."""
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]


# -- 1, 2, 13: dev checks before it starts anything ----------------------------


def test_dev_refuses_a_path_the_host_does_not_mount(tmp_path: Path) -> None:
    result = _cli(
        "dev", str(SHOWCASE), "--app", FASTAPI_HOST, "--path", "/tools",
        "--port", str(free_port()), "--cache-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert _error_line(result) == (
        f"error: the host app {FASTAPI_HOST} mounts showcase at /admin, not /tools: "
        "pass --path /admin"
    )
    assert "starting Reflex's dev servers" not in result.stderr  # nothing was started


def test_dev_fails_for_a_project_the_host_does_not_mount(tmp_path: Path) -> None:
    other = FIXTURES / "second_app" / "project"
    result = _cli(
        "dev", str(other), "--app", FASTAPI_HOST, "--path", "/admin",
        "--port", str(free_port()), "--cache-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert _error_line(result) == (
        f"error: the host app {FASTAPI_HOST} does not mount {other}; it mounts {SHOWCASE} at "
        "/admin: pass the project it mounts, or mount this one (mount(app, PATH, project=...))"
    )
    assert " at http://" not in result.stderr  # no URL printed for it


def test_dev_checks_the_port_first_and_suggests_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = _cli(
            "dev", str(SHOWCASE), "--app", FASTAPI_HOST, "--path", "/admin",
            "--port", str(port), "--cache-dir", str(tmp_path),
        )  # fmt: skip
        seconds = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    match = re.fullmatch(
        rf"error: port {port} on 127\.0\.0\.1 is in use \(another server\?\) or needs "
        r"privileges: pass --port (\d+)",
        _error_line(result),
    )
    assert match and int(match[1]) > port, result.stderr
    # Before anything else: no dev servers, no compile (a compile alone takes seconds).
    assert "starting Reflex's dev servers" not in result.stderr
    assert "Compiling" not in result.stdout + result.stderr
    assert seconds < 20, seconds


def test_dev_cannot_import_the_host(tmp_path: Path) -> None:
    result = _cli(
        "dev", str(SHOWCASE), "--app", "no_such_host:app", "--path", "/admin",
        "--port", str(free_port()), "--cache-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert _error_line(result) == (
        "error: cannot import the host app --app no_such_host:app: "
        'Could not import module "no_such_host".'
    )


# -- 11: stopping dev is quiet ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_stopping_dev_prints_no_error(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [*_CLI, "dev", str(SHOWCASE), "--app", FASTAPI_HOST, "--path", "/admin",
             "--port", str(port), "--cache-dir", str(tmp_path / "cache")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(),
            cwd=REPO,
        )  # fmt: skip
    try:
        wait_for(
            lambda: (
                dev.poll() is not None or f"at http://127.0.0.1:{port}/admin/" in log.read_text()
            ),
            timeout=360,
            what="the dev URL",
        )
        assert dev.poll() is None, log.read_text()
        time.sleep(1.0)  # Vite's own startup lines are out
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0, log.read_text()
    finally:
        stop_process(dev)
    said = log.read_text()
    assert "showcase at http://127.0.0.1" in said, said
    assert "terminated by signal" not in said and "vite: error" not in said, said


# -- 4, 5: a startup error of the mount is one line, under uvicorn and granian -------


_RAW_HOST = """
from reflex_buildd_client import ReflexMount

app = ReflexMount("no/such/project")
"""


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
@pytest.mark.parametrize("kind", ["mount", "raw"])
def test_a_startup_error_is_one_line_with_the_directory_it_resolved_against(
    server: str, kind: str, tmp_path: Path
) -> None:
    # mount(): a FastAPI host; raw: ReflexMount as the whole ASGI app.
    (tmp_path / "badhost.py").write_text(_HOST if kind == "mount" else _RAW_HOST)
    port = str(free_port())
    command = {
        "uvicorn": ["uvicorn", "badhost:app", "--host", "127.0.0.1", "--port", port],
        "granian": ["granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", port,
                    "badhost:app"],
    }[server]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(REFLEX_BUILDD_CACHE_DIR=str(tmp_path / "cache")),
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    where = "the Reflex app mounted at /admin" if kind == "mount" else "the Reflex app"
    line = (
        f"reflex-buildd: {where} did not start: ProjectNotFoundError: "
        "Reflex project not found: no/such/project is not a directory (relative to the "
        f"working directory {tmp_path})"
    )
    assert line in output, output
    assert "Traceback" not in output and "starlette/routing.py" not in output, output


# -- 6: the relative-paths warning, only when it can matter, once ---------------------


def _host_log(project: Path, cache: Path, tmp_path: Path, *extra: str) -> str:
    """Start the little host on ``project`` from ``tmp_path`` until every worker
    started its backend; return its log."""
    (tmp_path / "relhost.py").write_text(_HOST)
    host = spawn_host(
        "relhost:app",
        cache_dir=cache,
        log_dir=tmp_path,
        extra_args=extra,
        MESSAGES_PROJECT=str(project),
        REFLEX_BUILDD_BACKEND_START="startup",  # the backend loads before startup completes
        REFLEX_BUILDD_POLICY="fail",
        PYTHONPATH=f"{tmp_path}:{REPO}",
    )
    workers = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
    try:
        wait_for(
            lambda: (
                host.process.poll() is not None
                or host.output().count("Application startup complete") >= workers
            ),
            timeout=180,
            what="every worker started",
        )
        assert host.process.poll() is None, host.output()
    finally:
        stop_process(host.process)
    return host.output()


@pytest.mark.slow
def test_no_relative_paths_warning_for_an_app_that_uses_none(
    second_app_copy: FixtureApp, tmp_path: Path
) -> None:
    log = _host_log(second_app_copy.project, second_app_copy.cache, tmp_path)
    assert "Application startup complete" in log
    assert "relative paths" not in log and "working directory" not in log, log


@pytest.mark.slow
def test_relative_paths_warning_once_for_two_workers_naming_what_can_break(
    rows_app: FixtureApp, tmp_path: Path
) -> None:
    log = _host_log(rows_app.project, rows_app.cache, tmp_path, "--workers", "2")
    warnings = [line for line in log.splitlines() if "relative paths resolve there" in line]
    assert len(warnings) == 1, log
    assert warnings[0].startswith("WARNING:"), warnings
    # What can go wrong, named: its uploads and the data beside its code.
    assert (
        f"whose working directory is {tmp_path}, not its project {rows_app.project}"
        in (warnings[0])
    )
    assert (
        "the app uses some: uploads into uploaded_files/; data/ beside its code." in (warnings[0])
    )
    assert "data/" in warnings[0] and "beside its code" in warnings[0]
    assert "rows.env" not in warnings[0]  # the env_file is loaded from the project


# -- 7: a host waiting for another process's build says so once, at INFO -------------


def test_a_waiting_host_says_once_what_it_waits_for(tmp_path: Path) -> None:
    from reflex_buildd_client.cache.status import BuildState, write_record
    from reflex_buildd_client.cache.store import Cache

    project = tmp_path / "showcase"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    key = run_cli("key", str(project), cache_dir=cache).stdout.strip()
    # This process "builds" the key: a live writer, as another worker would be.
    write_record(Cache(cache), key, BuildState.BUILDING, phase="compiling pages")
    host = spawn_host(
        FASTAPI_HOST,
        cache_dir=cache,
        log_dir=tmp_path,
        SHOWCASE_PROJECT=str(project),
        REFLEX_BUILDD_POLICY="wait",
    )
    try:
        wait_for(lambda: "waiting for key" in host.output(), timeout=60, what="the wait line")
        time.sleep(11)  # the old code said it again every 5 s
        waits = [line for line in host.output().splitlines() if "waiting for key" in line]
        assert len(waits) == 1, host.output()
        assert re.match(
            rf"INFO: .*reflex-buildd: waiting for key {key} \(\d+s so far\): the build by pid "
            r"\d+ on [^,]+, compiling pages$",
            waits[0],
        ), waits
        # The builder's next phase: one more line, saying so.
        write_record(Cache(cache), key, BuildState.BUILDING, phase="bundling the frontend")
        wait_for(lambda: "bundling the frontend" in host.output(), timeout=30, what="phase 2")
        # Then it fails: the host fails at once with the recorded cause.
        write_record(
            Cache(cache), key, BuildState.FAILED, exit_code=1, log="x.log", tail="...",
            cause=": RuntimeError: boom",
        )  # fmt: skip
        host.process.wait(timeout=30)
    finally:
        stop_process(host.process)
    output = host.output()
    assert sum("waiting for key" in line for line in output.splitlines()) == 2, output
    assert "WARNING" not in output, output
    assert "exit code 1): RuntimeError: boom; log: x.log" in output, output


# -- 8, 9: a typo in app_name; status after a fix and a clean stop ---------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_app_name_typo_is_named_then_status_marks_the_failure_stale(tmp_path: Path) -> None:
    project = tmp_path / "showcase"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    config = project / "rxconfig.py"
    good = config.read_text()
    config.write_text(good.replace('app_name="showcase"', 'app_name="showcasee"'))
    cache = tmp_path / "cache"

    failed = run_cli("build", str(project), cache_dir=cache)
    assert failed.returncode == 1, failed.stderr
    line = _error_line(failed)
    assert line.startswith("error: build of "), line
    assert (
        "failed (reflex export exited 1): ModuleNotFoundError: Module showcasee.showcasee "
        "not found. Ensure app_name='showcasee' in rxconfig.py matches your folder structure; "
        "log: "
    ) in line, line
    bad_key = line.split()[3]

    # A host of the broken project fails fast with the same cause, in its one line.
    host = spawn_host(
        FASTAPI_HOST, cache_dir=cache, log_dir=tmp_path, SHOWCASE_PROJECT=str(project)
    )
    try:
        host.process.wait(timeout=60)
    finally:
        stop_process(host.process)
    (said,) = [line for line in host.output().splitlines() if "did not start" in line]
    assert "exit code 1): ModuleNotFoundError: Module showcasee.showcasee not found" in said, said

    # The fix: a new key, built. The old failure is history now, and says so.
    config.write_text(good)
    built = run_cli("build", str(project), cache_dir=cache, timeout=500)
    assert built.returncode == 0, built.stderr
    new_key = built.stdout.strip()
    status = run_cli("status", cache_dir=cache)
    assert f"  {bad_key} failed, stale: {new_key[:12]} built since (pid" in status.stdout, status
    data = json.loads(run_cli("status", "--json", cache_dir=cache).stdout)
    assert [(b["key"], b["superseded_by"]) for b in data["builds"]] == [(bad_key, new_key)]


def test_a_daemon_stopped_cleanly_leaves_no_record(
    showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    daemon = subprocess.Popen(
        [*_CLI, "watch", str(SHOWCASE), "--json", "--cache-dir", str(cache_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=tool_env(),
        cwd=tmp_path,
    )
    try:
        assert daemon.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = daemon.stdout.readline()
            if not line or json.loads(line)["event"] == "already_built":
                break
        running = json.loads(run_cli("status", "--json", cache_dir=cache_dir).stdout)
        assert [d["pid"] for d in running["daemons"]] == [daemon.pid]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        stop_process(daemon)
    status = run_cli("status", cache_dir=cache_dir)
    assert "daemons: none" in status.stdout, status.stdout
    assert "(dead)" not in status.stdout


# -- 10: explain across two projects says so ------------------------------------------


def test_explain_against_another_projects_key_says_so(
    showcase_build: Built, cache_dir: Path
) -> None:
    other = FIXTURES / "second_app" / "project"
    result = run_cli("explain", str(other), "--against", showcase_build.key, cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"note: {showcase_build.key[:12]} is an artifact of another project, {SHOWCASE}, not "
        f"of {other}: the differences below are between two projects"
    )
    data = json.loads(
        run_cli(
            "explain", str(other), "--against", showcase_build.key, "--json", cache_dir=cache_dir
        ).stdout
    )
    assert data["same_project"] is False and data["against_project"] == str(SHOWCASE)
    own = json.loads(run_cli("explain", str(SHOWCASE), "--json", cache_dir=cache_dir).stdout)
    assert own["same_project"] is True


# -- 12: bare reflex-buildd, and command descriptions that fit ---------------------------


def test_bare_command_prints_help_and_succeeds() -> None:
    result = _cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ") and "Commands:" in result.stdout


def test_help_shows_every_command_description_whole() -> None:
    from reflex_buildd.cli import main

    result = _cli("--help", COLUMNS="80")
    assert result.returncode == 0
    rows = result.stdout.split("Commands:\n", 1)[1].splitlines()
    shown = {row.split()[0]: row.split(None, 1)[1] for row in rows if row.strip()}
    assert set(shown) == set(main.commands)
    for name, text in shown.items():
        assert not text.endswith("..."), f"{name}: {text}"
        assert text == main.commands[name].short_help, (name, text)
        assert text.endswith("."), (name, text)


def test_what_counts_as_a_relative_path_use(tmp_path: Path) -> None:
    from reflex_buildd_client.backend.workdir import relative_path_uses

    for name in ("rxconfig.py", "requirements.txt", "README.md", "app.db"):
        (tmp_path / name).write_text("")
    for name in ("app", "assets", "helpers", "word_lists"):
        (tmp_path / name).mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("")
    uses = relative_path_uses(
        tmp_path,
        app_package="app.app",
        db_url="sqlite:///reflex.db",
        env_file=None,
        uploads_dir=None,
    )
    assert uses == ["the database sqlite:///reflex.db", "app.db, word_lists/ beside its code"]
    # Code, assets, metadata and an absolute database: nothing the working directory changes.
    (tmp_path / "word_lists").rmdir()
    assert (
        relative_path_uses(
            tmp_path,
            app_package="app",
            db_url=f"sqlite:///{tmp_path / 'app.db'}",
            env_file=None,
            uploads_dir=Path("/srv/uploads"),
        )
        == []
    )
