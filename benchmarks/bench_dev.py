"""Save -> change visible in Chromium: ``reflex-buildd dev`` against ``reflex run``.

The same app (a copy of the showcase each) and the same two edits, measured in
one run:

- **text**: the heading's text in the page function; timed until the open
  page shows it (no reload: both go through Vite's HMR);
- **handler**: the body of ``State.increment`` (``+= 1`` -> ``+= k``); timed
  until a click on the open page adds ``k`` (the backend reloaded). Clicks
  are repeated every 0.1 s until one does.

``reflex run`` serves the app at the root of its own Vite port; ``dev`` serves
it at ``/admin`` of the FastAPI example host. Both run at once and the edits
alternate between them, who goes first alternating too (a shared machine's load
then hits both alike); each
edit is made ``ROUNDS`` times per mode and medians are compared. Goal: dev at
most 1.5x ``reflex run``.

Run: ``.venv/bin/python benchmarks/bench_dev.py`` (about two minutes).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOWCASE,
    free_port,
    tool_env,
    wait_for,
    wait_listening,
)
from reflex_buildd_client.inputs.runtime import resolve_runtime  # noqa: E402
from reflex_buildd_client.settings import Settings  # noqa: E402

ROUNDS = 5
_DEV_READY = re.compile(r"reflex-buildd dev: \S+ at (http://\S+)/ ")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def reflex_run(project: Path, tmp: Path) -> Iterator[str]:
    """Plain ``reflex run`` in the project (bun from the venv, as the build uses)."""
    frontend, backend = free_port(), free_port()
    log = tmp / "reflex-run.log"
    env = tool_env(
        **resolve_runtime(settings=Settings.load()).env,
        REFLEX_WEB_WORKDIR=str(tmp / "web-reflex-run"),
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex",
                "run",
                "--frontend-port",
                str(frontend),
                "--backend-port",
                str(backend),
                "--backend-host",
                "127.0.0.1",
            ],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_listening(frontend, process, timeout=300, what="reflex run's frontend")
        wait_listening(backend, process, timeout=300, what="reflex run's backend")
        yield f"http://localhost:{frontend}"
    finally:
        _stop_group(process)


@contextlib.contextmanager
def buildd_dev(project: Path, tmp: Path) -> Iterator[str]:
    """``reflex-buildd dev`` with the FastAPI example host, the app at /admin."""
    port = free_port()
    log = tmp / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reflex_buildd",
                "dev",
                str(project),
                "--app",
                "examples.hosts.fastapi_host:app",
                "--path",
                "/admin",
                "--port",
                str(port),
                "--app-dir",
                str(REPO),
                "--cache-dir",
                str(tmp / "cache"),
            ],
            cwd=tmp,
            env=tool_env(SHOWCASE_PROJECT=str(project), SHOWCASE_MOUNT_PATH="/admin"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> str | None:
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            match = _DEV_READY.search(log.read_text(errors="replace"))
            return match.group(1) if match else None

        yield wait_for(ready, timeout=300, what="reflex-buildd dev", interval=0.1)
    finally:
        _stop_group(process)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _count(page: Any) -> int:
    return int(page.locator("#count").inner_text())


class Session:
    """One open page of one mode, and the state of its edits."""

    def __init__(self, browser: Any, url: str, project: Path) -> None:
        self.source = project / "showcase" / "showcase.py"
        self.page = browser.new_page()
        self.page.set_default_timeout(60_000)
        self.page.goto(url + "/")
        self.page.wait_for_function("document.querySelector('#title')?.textContent === 'Showcase'")
        self.page.wait_for_function(
            "document.querySelector('#lifespan')?.textContent !== 'unknown'"
        )
        self.title, self.step = "Showcase", 1
        self.times: dict[str, list[float]] = {"text": [], "handler": []}

    def text_edit(self, round_: int) -> None:
        new = f"Edited {round_}"
        _edit(
            self.source,
            f'rx.heading("{self.title}", id="title")',
            f'rx.heading("{new}", id="title")',
        )
        saved = time.perf_counter()
        self.page.wait_for_function(
            f"document.querySelector('#title')?.textContent === '{new}'", polling=20
        )
        self.times["text"].append(time.perf_counter() - saved)
        self.title = new

    def handler_edit(self) -> None:
        new = self.step + 10
        _edit(self.source, f"self.count += {self.step}", f"self.count += {new}")
        saved = time.perf_counter()
        deadline = saved + 60
        while True:
            before = _count(self.page)
            self.page.locator("#increment").click()
            with contextlib.suppress(Exception):
                self.page.wait_for_function(
                    f"document.querySelector('#count').textContent !== '{before}'",
                    timeout=100,
                    polling=10,
                )
            if _count(self.page) - before == new:
                self.times["handler"].append(time.perf_counter() - saved)
                break
            if time.perf_counter() > deadline:
                raise TimeoutError("handler edit not live after 60 s")
        self.step = new


def measure(sessions: list[Session]) -> None:
    """Alternate the modes edit by edit (and who goes first, round by round), so
    that load on a shared machine hits both alike."""
    for round_ in range(1, ROUNDS + 1):
        order = sessions if round_ % 2 else sessions[::-1]
        for session in order:
            session.text_edit(round_)
            time.sleep(1.0)  # let this mode's reloads settle before the next save
        for session in order:
            session.handler_edit()
            time.sleep(1.0)


def main() -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-dev-"))
    try:
        plain, mounted = tmp / "plain" / "showcase", tmp / "mounted" / "showcase"
        shutil.copytree(SHOWCASE, plain)
        shutil.copytree(SHOWCASE, mounted)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                with reflex_run(plain, tmp) as plain_url, buildd_dev(mounted, tmp) as dev_url:
                    sessions = [
                        Session(browser, plain_url, plain),
                        Session(browser, dev_url, mounted),
                    ]
                    measure(sessions)
                    baseline, dev = sessions[0].times, sessions[1].times
            finally:
                browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"save -> visible in Chromium, median of {ROUNDS} (seconds)")
    print(f"{'edit':<10}{'reflex run':>12}{'dev':>10}{'ratio':>9}")
    for edit in ("text", "handler"):
        base, ours = statistics.median(baseline[edit]), statistics.median(dev[edit])
        print(f"{edit:<10}{base:>12.3f}{ours:>10.3f}{ours / base:>8.2f}x  (goal <= 1.5x)")
    print("all rounds:", {"reflex run": baseline, "dev": dev})


if __name__ == "__main__":
    main()
