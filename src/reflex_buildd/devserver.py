"""The Reflex side of ``reflex-buildd dev``: what ``reflex run`` does, behind a host.

Run as ``python -m reflex_buildd.devserver --frontend-port F --backend-port B``
with the project as the working directory (as ``reflex run`` is), by
:mod:`reflex_buildd.dev`, which sets ``REFLEX_FRONTEND_PATH`` to the mount
prefix, ``REFLEX_WEB_WORKDIR`` to a dev workspace outside the project and the
build's plugin in ``REFLEX_EXTRA_PLUGINS`` (the frontend then finds its backend
through the ``<meta>`` tag the host's proxy injects, under the prefix).

It mirrors Reflex 0.10.1's own dev loop (``reflex.reflex._run_dev``), so the
edit-and-look loop is Reflex's and nothing else:

1. compile the app once into ``.web`` and write ``env.json``;
2. start the Vite dev server (``react-router dev``) on 127.0.0.1 only, with the
   prefix as Vite's ``base``;
3. run Reflex's dev backend (``reflex.utils.exec.run_backend``: granian or
   uvicorn with their reloader on the project's files). Every reload imports
   the app again and compiles it into ``.web``; Vite sees the changed page
   modules and pushes them to the open page over its HMR websocket. A reload
   that fails (a syntax error) prints the traceback here and keeps the
   reloader waiting for the next save.

Differences from ``reflex run``, each on purpose: Vite listens on 127.0.0.1
instead of every interface (only the host's proxy talks to it); nothing but
run-time files lands in the project: no ``requirements.txt`` or
``.gitignore`` (only ``.web`` is initialised), and ``reflex.lock/`` is read
from the project but written to the dev workspace
(:func:`~reflex_buildd.devplugin.keep_lockfiles_in`); Vite's own output is
shown only for its warnings and errors (``reflex run`` hides it all below
``--loglevel debug``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from reflex_buildd_client.children import dies_with_parent

__all__ = ["main", "vite_command"]

# Vite lines worth showing: its errors and warnings (transform failures,
# missing imports). Its banner names Vite's own port, which nobody should open.
_SHOWN = re.compile(r"error|warn|failed|cannot|unable", re.IGNORECASE)
# How the package manager reports Vite stopped by our own SIGTERM/SIGINT at
# the end of a session (npm: "exited with code 143"; bun: 'error: script "dev"
# was terminated by signal SIGTERM (Polite quit request)'): not an error worth a line.
_STOPPED = re.compile(r"exited with code (?:143|130)\b|terminated by signal (?:SIGTERM|SIGINT)\b")


def vite_command(executor: Sequence[str], *, npm: bool, port: int) -> list[str]:
    """The command that starts Reflex's ``dev`` script on 127.0.0.1:``port``.

    Reflex's script is ``react-router dev --host`` (every interface). A package
    manager appends extra arguments to the script, so a bare ``127.0.0.1``
    right after it becomes the value of that ``--host``.
    """
    extra = ["127.0.0.1", "--port", str(port), "--strictPort"]
    return [*executor, "run", "dev", *(["--"] if npm else []), *extra]


def _relay(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if _SHOWN.search(line) and not _STOPPED.search(line):
            sys.stdout.write(f"vite: {line}")
            sys.stdout.flush()


def _start_vite(port: int) -> subprocess.Popen[str]:
    from reflex.utils import js_runtimes, prerequisites
    from reflex.utils.exec import _with_development_condition, frontend_env

    js_runtimes.validate_frontend_dependencies(init=False)
    executor = js_runtimes.get_js_package_executor(raise_on_none=True)[0]
    npm = Path(executor[0]).name.startswith("npm")
    process = subprocess.Popen(
        vite_command(executor, npm=npm, port=port),
        cwd=prerequisites.get_web_dir(),
        env=_with_development_condition(frontend_env(os.environ)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        preexec_fn=dies_with_parent(signal.SIGTERM),
    )
    threading.Thread(target=_relay, args=(process,), daemon=True, name="vite-output").start()
    return process


def _prepare(frontend_port: int, backend_port: int) -> None:
    """Initialise ``.web`` if needed and compile the app once (as ``reflex run``)."""
    from reflex.istate.manager import reset_disk_state_manager
    from reflex.reflex import _compile_app
    from reflex.utils import build, prerequisites
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    from .devplugin import dev_target, keep_lockfiles_in

    environment.REFLEX_ENV_MODE.set(constants.Env.DEV)
    prerequisites.assert_in_reflex_dir()
    # Before .web is set up: initialising it reads the persisted lockfiles.
    target = dev_target()
    if target is not None and target.lockfiles_dir is not None:
        keep_lockfiles_in(target.lockfiles_dir)
    if prerequisites.needs_reinit():
        # The part of `reflex init` a run needs: Reflex's user directory and
        # .web (templates, package.json, vite config); not the project files.
        prerequisites.initialize_reflex_user_directory()
        prerequisites.initialize_frontend_dependencies()
    # `reflex run` starts every session with empty disk states.
    reset_disk_state_manager()
    get_config()._set_persistent(
        frontend_port=frontend_port, backend_port=backend_port, backend_host="127.0.0.1"
    )
    _compile_app()
    build.setup_frontend(Path.cwd())


def main(argv: Sequence[str] | None = None) -> int:
    """Compile, start Vite, then run Reflex's reloading dev backend until stopped."""
    parser = argparse.ArgumentParser(prog="python -m reflex_buildd.devserver")
    parser.add_argument("--frontend-port", type=int, required=True)
    parser.add_argument("--backend-port", type=int, required=True)
    args = parser.parse_args(argv)

    _prepare(args.frontend_port, args.backend_port)
    from reflex.utils import exec
    from reflex_base.config import get_config

    vite = _start_vite(args.frontend_port)
    try:
        exec.run_backend(
            "127.0.0.1",
            args.backend_port,
            get_config().loglevel.subprocess_level(),
            frontend_present=True,
        )
    finally:
        if vite.poll() is None:
            vite.terminate()
            try:
                vite.wait(timeout=10)
            except subprocess.TimeoutExpired:
                vite.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
