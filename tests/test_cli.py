"""The CLI as a whole: every command walked through the click group.

Each command has ``-h`` and the logging options, prints JSON with ``--json``
(when it prints facts), and is documented in docs/reference.md with every one
of its options, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conftest import REPO, SHOWCASE, Built, run_cli, tool_env
from reflex_buildd.cli import main

REFERENCE = REPO / "docs" / "reference.md"
# Options every command has, documented once in the reference's introduction.
SHARED = {"--cache-dir", "--log-level", "--verbose", "--quiet", "-v", "-q", "-h", "--help"}
PROJECT_SHARED = {"--input", "--input-env"}
# Commands that print no facts to read back, with the reason.
NO_JSON: dict[str, str] = {
    "dev": "a server in the foreground, like uvicorn: it prints the URL to open, and "
    "test_dev_browser reads it from there",
}
# Project commands that never key the project, with the reason.
NO_INPUTS: dict[str, str] = {
    "dev": "runs Reflex's own dev loop: no key, no artifact",
}
_CLI = (sys.executable, "-m", "reflex_buildd")


def _commands() -> dict[str, click.Command]:
    return dict(main.commands)


def _options(command: click.Command) -> set[str]:
    return {
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    }


def _takes_project(command: click.Command) -> bool:
    return any(p.name == "project" for p in command.params if isinstance(p, click.Argument))


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_and_logging_options_on_every_command(name: str) -> None:
    runner = CliRunner()
    for flag in ("-h", "--help"):
        result = runner.invoke(main, [name, flag])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: main {name}") or "Usage:" in result.output
    options = _options(_commands()[name])
    assert {"--log-level", "-v", "--verbose", "-q", "--quiet", "--cache-dir"} <= options
    if _takes_project(_commands()[name]) and name not in NO_INPUTS:
        assert PROJECT_SHARED <= options, f"{name} lacks --input/--input-env"
    assert name in NO_JSON or "--json" in options, f"{name} prints facts but has no --json"


def test_group_help_and_logging_options() -> None:
    result = CliRunner().invoke(main, ["-h"])
    assert result.exit_code == 0 and "Commands:" in result.output
    assert {"--log-level", "-v", "-q", "--version"} <= _options(main)


def _row(name: str) -> str:
    """The reference's rows of a command (``ls`` has one for ``ls --remote`` too), joined."""
    rows = [
        line
        for line in REFERENCE.read_text().splitlines()
        if re.match(rf"\| `reflex-buildd {re.escape(name)}[ `]", line)
    ]
    assert rows, f"docs/reference.md has no row for {name}"
    return "\n".join(rows)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_reference_documents_every_option(name: str) -> None:
    row = _row(name)
    own = _options(_commands()[name]) - SHARED - PROJECT_SHARED
    missing = sorted(opt for opt in own if not re.search(rf"{re.escape(opt)}(?![\w-])", row))
    assert not missing, f"docs/reference.md's row of {name} lacks {missing}"
    # The shared options are documented once, above the table.
    intro = REFERENCE.read_text().split("| command | what it does |")[0]
    for opt in SHARED | PROJECT_SHARED:
        assert f"`{opt}" in intro or f"/`{opt}`" in intro, opt


def test_reference_has_no_row_for_a_missing_command() -> None:
    documented = re.findall(r"^\| `reflex-buildd ([a-z-]+)", REFERENCE.read_text(), re.M)
    assert set(documented) - {"--version"} == set(_commands())


def _watch_json(built: Built, cache_dir: Path, tmp_path: Path) -> list[dict[str, object]]:
    # The daemon on a cached key: watching, key, already_built; then SIGTERM.
    process = subprocess.Popen(
        [*_CLI, "watch", str(SHOWCASE), "--json", "--cache-dir", str(cache_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tool_env(),
        cwd=tmp_path,
    )
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    try:
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
            if events[-1]["event"] == "already_built":
                process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert [e["event"] for e in events] == ["watching", "key", "already_built", "stopped"]
    assert events[2]["key"] == built.key
    return events


def _push_json(built: Built, cache_dir: Path, tmp_path: Path, s3: Any) -> object:
    url = s3.url(f"cli-{tmp_path.name}")
    data = _json_lines(
        "push", built.key, "--remote", url, "--json", cache_dir=cache_dir, **s3.env()
    )
    return data[-1]


def _pull_json(built: Built, cache_dir: Path, tmp_path: Path, s3: Any) -> object:
    url = s3.url(f"cli-{tmp_path.name}")
    _json_lines("push", built.key, "--remote", url, "--json", cache_dir=cache_dir, **s3.env())
    data = _json_lines(
        "pull", built.key, "--remote", url, "--json", cache_dir=tmp_path / "other", **s3.env()
    )
    assert Path(data[-1]["path"]).is_dir()  # type: ignore[index]
    return {"key": data[-1]["key"]}  # type: ignore[index]


def _promote_json(built: Built, cache_dir: Path, tmp_path: Path, s3: Any) -> object:
    url = s3.url(f"cli-{tmp_path.name}")
    pr, main = (
        _json("keygen", str(tmp_path / n), "--json", cache_dir=cache_dir) for n in ("pr", "main")
    )
    pr_env = {**s3.env(), "REFLEX_BUILDD_SIGNING_KEY_FILE": pr["private"]}  # type: ignore[index]
    _json_lines(
        "push",
        built.key,
        "--remote",
        url,
        "--json",
        cache_dir=cache_dir,
        REFLEX_BUILDD_REMOTE_NAMESPACE="pr-1",
        **pr_env,
    )
    data = _json_lines(
        *("promote", built.key, "--from", "pr-1", "--to", "main", "--remote", url, "--json"),
        *("--trusted-keys", pr["public"]),  # type: ignore[index]
        cache_dir=cache_dir,
        **s3.env(),
        REFLEX_BUILDD_SIGNING_KEY_FILE=main["private"],  # type: ignore[index]
    )
    return data[-1]


# Commands that talk to the remote tier get the session's S3 server (moto).
REMOTE_RUNS: dict[str, Callable[[Built, Path, Path, Any], object]] = {
    "push": _push_json,
    "pull": _pull_json,
    "promote": _promote_json,
}
JSON_RUNS: dict[str, Callable[[Built, Path, Path], object]] = {
    "build": lambda b, c, t: _json_lines("build", str(SHOWCASE), "--json", cache_dir=c)[-1],
    "key": lambda b, c, t: _json_lines("key", str(SHOWCASE), "--json", cache_dir=c)[-1],
    "explain": lambda b, c, t: _json("explain", str(SHOWCASE), "--json", cache_dir=c),
    "watch": _watch_json,
    "ls": lambda b, c, t: _json("ls", "--json", cache_dir=c),
    "status": lambda b, c, t: _json("status", "--json", cache_dir=c),
    "verify": lambda b, c, t: _json("verify", b.key, "--json", cache_dir=c),
    "gc": lambda b, c, t: _json("gc", "--dry-run", "--json", cache_dir=c),
    "doctor": lambda b, c, t: _json("doctor", str(SHOWCASE), "--json", cache_dir=c),
    "stats": lambda b, c, t: _json("stats", "--json", cache_dir=c),
    "keygen": lambda b, c, t: _json("keygen", str(t / "k"), "--json", cache_dir=c),
}


def _json(*args: str, cache_dir: Path) -> object:
    result = run_cli(*args, cache_dir=cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _json_lines(*args: str, cache_dir: Path, **env: str) -> list[Any]:
    result = run_cli(*args, cache_dir=cache_dir, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(_commands()) - set(NO_JSON)))
def test_json_output_of_every_command(
    name: str,
    showcase_build: Built,
    cache_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if name in REMOTE_RUNS:
        data = REMOTE_RUNS[name](showcase_build, cache_dir, tmp_path, request.getfixturevalue("s3"))
    else:
        assert name in JSON_RUNS, f"add a --json run of the new command {name!r} here"
        data = JSON_RUNS[name](showcase_build, cache_dir, tmp_path)
    assert data is not None
    if name in ("build", "key", "push", "pull", "promote"):
        assert data["key"] == showcase_build.key  # type: ignore[index]
    if name == "explain":
        assert data["diff"]["same"] is True and data["against"] == showcase_build.key  # type: ignore[index]


def test_project_found_upward_from_a_subdirectory(tmp_path: Path) -> None:
    sub = SHOWCASE / "showcase"
    here = subprocess.run(
        [sys.executable, "-m", "reflex_buildd", "key", "--json", "--cache-dir", str(tmp_path)],
        cwd=sub,
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(),
        check=False,
    )
    assert here.returncode == 0, here.stderr
    assert json.loads(here.stdout)["project"] == str(SHOWCASE)
    explicit = run_cli("key", str(SHOWCASE), cache_dir=tmp_path)
    assert json.loads(here.stdout)["key"] == explicit.stdout.strip()
    # Outside any project: a clear error, exit 2.
    outside = subprocess.run(
        [sys.executable, "-m", "reflex_buildd", "key", "--cache-dir", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=tool_env(),
        check=False,
    )
    assert outside.returncode == 2 and "no rxconfig.py in" in outside.stderr, outside.stderr


def test_quiet_and_log_level_before_or_after_the_command(
    showcase_build: Built, cache_dir: Path
) -> None:
    for args in (("-q", "build"), ("build", "-q"), ("--log-level", "warning", "build")):
        result = subprocess.run(
            [*_CLI, *args, str(SHOWCASE), "--cache-dir", str(cache_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            env=tool_env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", (args, result.stderr)
        assert result.stdout.strip() == showcase_build.key
    loud = run_cli("build", str(SHOWCASE), cache_dir=cache_dir)
    assert f"cached {showcase_build.key}" in loud.stderr
