"""The ``reflex-buildd`` command line (click + rich, like Reflex's own CLI).

Every project command takes the project directory (default: the nearest
directory at or above the current one holding ``rxconfig.py``), ``--input``
and ``--input-env``; every command takes ``--cache-dir`` (env
``REFLEX_BUILDD_CACHE_DIR``), ``-h``, ``--log-level``/``-v``/``-q``, and
``--json`` where it prints facts.

Commands raise; the group (:mod:`.exits`) turns every error into one line
and its exit code: 0 success, 1 a build failed, 2 bad input (no project, an
unreadable project file, bad option, unknown key), 3 busy (another daemon
or dev session already runs the project, a lock not free in time), 4 problems found:
``verify`` (a corrupt artifact, quarantined; a rebuild that differs),
``doctor --strict`` (URLs that leave the prefix) or a remote artifact refused
(unsigned, wrongly signed, tampered), 5 the cache cannot be used (no space,
permissions, a file in the way; the remote unreachable or failing).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Unpack

import click

from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.errors import ArtifactMissingError
from reflex_buildd_client.inputs.sources import compute_key
from reflex_buildd_client.project import Project, find_project, find_project_upward
from reflex_buildd_client.remote.bucket import RemoteSettings
from reflex_buildd_client.settings import LOG_LEVELS, Overrides, Settings

from . import __version__, logsetup
from .exits import ErrorHandlingGroup, remember_cache_dir
from .progress import Progress

__all__ = ["main"]


class _LazyConsole:
    """rich's stderr console, made on first use: most commands print plain lines,
    and importing rich costs more than computing a warm key."""

    _console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            type(self)._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return getattr(self._console, name)


_err: Any = _LazyConsole()
F = TypeVar("F", bound=Callable[..., Any])

project_argument = click.argument(
    "project",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)


def _project(path: Path | None) -> Project:
    """PROJECT as given, or the project around the current directory (like git)."""
    app_name = _settings().app_name
    if path is not None:
        return find_project(path, app_name=app_name)
    return find_project_upward(Path.cwd(), app_name=app_name)


def _set_level(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        logsetup.configure(value)


# Accepted before the command and after it alike, as the last one given wins:
# `reflex-buildd -q build` and `reflex-buildd build -q`.
_logging_options = (
    click.Option(
        ["--log-level"],
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        expose_value=False,
        callback=_set_level,
        help="How much to say on stderr [env: REFLEX_BUILDD_LOG_LEVEL; default: info].",
    ),
    click.Option(
        ["-v", "--verbose"],
        flag_value="debug",
        default=None,
        expose_value=False,
        callback=_set_level,
        help="Same as --log-level debug.",
    ),
    click.Option(
        ["-q", "--quiet"],
        flag_value="warning",
        default=None,
        expose_value=False,
        callback=_set_level,
        help="Same as --log-level warning: no progress, only problems.",
    ),
)


class _Group(ErrorHandlingGroup):
    """Gives every command the logging options, whoever adds it (errors: :mod:`.exits`)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        have = {opt for param in cmd.params for opt in getattr(param, "opts", ())}
        cmd.params.extend(o for o in _logging_options if not have & set(o.opts))
        super().add_command(cmd, name)


def _quiet() -> bool:
    return not logsetup.enabled(logging.INFO)


def _say(text: str) -> None:
    """An informative line on stderr, unless -q."""
    if not _quiet():
        _err.print(text)


cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="REFLEX_BUILDD_CACHE_DIR",
    default=None,
    callback=remember_cache_dir,
    help="Cache directory [env: REFLEX_BUILDD_CACHE_DIR; default: the per-user cache].",
)
remote_option = click.option(
    "--remote",
    metavar="s3://BUCKET/PREFIX",
    envvar="REFLEX_BUILDD_REMOTE",
    default=None,
    help="The remote cache (endpoint and credentials from AWS_* variables) "
    "[env: REFLEX_BUILDD_REMOTE; 'none': no remote].",
)
_extra_inputs_options = (
    click.option(
        "--input",
        "extra_inputs",
        multiple=True,
        metavar="GLOB",
        help="Extra input files (project-relative glob), beyond [tool.reflex-buildd] inputs.",
    ),
    click.option(
        "--input-env",
        "extra_env",
        multiple=True,
        metavar="NAME",
        help="Extra input environment variable (name or pattern), beyond [tool.reflex-buildd] env.",
    ),
)


def extra_inputs_options(command: F) -> F:
    """Add ``--input`` and ``--input-env`` to a command."""
    for option in reversed(_extra_inputs_options):
        command = option(command)
    return command


def _settings(**given: Unpack[Overrides]) -> Settings:
    """The settings of this invocation (loaded once, by the group), with a command's options.

    The CLI is an entry point: its group reads the environment into one :class:`Settings`,
    and every command hands that down, overriding only what its options say.
    """
    ctx = click.get_current_context()
    loaded: Settings = ctx.find_root().ensure_object(dict)["settings"]
    return loaded.override(**given)


def _cache(cache_dir: Path | None) -> Cache:
    """The cache of ``--cache-dir``, else of the settings."""
    return Cache(_settings(cache_dir=cache_dir).cache_dir)


def _remote(
    url: str | None, *, required: bool = False, trusted_keys: str | None = None
) -> RemoteSettings | None:
    """The remote of ``--remote`` (or its env), with a clear error when it is malformed."""
    settings = _settings(remote=url, trusted_keys=trusted_keys).remote_tier
    if settings is None and required:
        raise click.UsageError(
            "no remote: pass --remote s3://BUCKET/PREFIX or set REFLEX_BUILDD_REMOTE"
        )
    return settings


def _address(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:9100`` for IPv6), checked."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:9100", param=param)
    return host, int(port)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Bare `reflex-buildd` shows the help and succeeds, as pip does (click's
    # default for a group without a command is exit status 2).
    invoke_without_command=True,
)
@click.version_option(__version__, message="%(version)s")
@click.option(
    "--debug",
    is_flag=True,
    help="Print the traceback of an error, not only its one line [env: REFLEX_BUILDD_DEBUG].",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Build Reflex apps once into a shared cache; mount them on any path."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    # The one Settings of this invocation: commands take it with their options over it.
    settings = Settings.load()
    ctx.obj = {**(ctx.obj or {}), "debug": debug, "settings": settings}
    # After the group's own options (`reflex-buildd -q build`), before the command's.
    logsetup.configure_default(settings.log_level)


main.params.extend(_logging_options)


@main.command(short_help="Build PROJECT into the cache unless its key is already there.")
@project_argument
@cache_dir_option
@remote_option
@extra_inputs_options
@click.option("--json", "as_json", is_flag=True, help="Print {key, path, built, seconds, push}.")
def build(
    project: Path | None,
    cache_dir: Path | None,
    remote: str | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    as_json: bool,
) -> None:
    """Build PROJECT into the cache unless its key is already there.

    If another process is building the same key, wait for it instead. With a
    remote, a local miss is pulled from it when it has the key, and the
    artifact is pushed to it (unless it is there already). The last line of
    output is the key.
    """
    from .build import ensure_built
    from .push import push_artifact

    settings = _settings(cache_dir=cache_dir, remote=remote)
    proj = _project(project)
    cache = Cache(settings.cache_dir)
    with Progress(_err, proj.root.name, quiet=_quiet()) as progress:
        outcome = ensure_built(
            proj,
            cache,
            settings=settings,
            extra_inputs=extra_inputs,
            extra_env=extra_env,
            progress=progress.set_phase,
        )
    verb = "built" if outcome.built else "cached"
    _say(f"{verb} {outcome.key} in {outcome.seconds:.2f}s -> {outcome.artifact.path}")
    remote_tier = settings.remote_tier
    pushed = None
    if remote_tier is not None and (refusal := remote_tier.trust.push_refusal()) is not None:
        _err.print(f"not pushed: {refusal}", markup=False)
    elif remote_tier is not None:
        pushed = push_artifact(cache, outcome.artifact, remote_tier)
        _say(pushed.summary())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "key": outcome.key,
                    "path": str(outcome.artifact.path),
                    "built": outcome.built,
                    "seconds": round(outcome.seconds, 3),
                    "push": pushed.to_json() if pushed else None,
                }
            )
        )
    else:
        click.echo(outcome.key)


@main.command(short_help="Print the key of PROJECT's current build inputs.")
@project_argument
@cache_dir_option
@extra_inputs_options
@click.option("--json", "as_json", is_flag=True, help="Print {key, project, cached}.")
def key(
    project: Path | None,
    cache_dir: Path | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    as_json: bool,
) -> None:
    """Print the key of PROJECT's current build inputs, without building."""
    proj = _project(project)
    settings = _settings(cache_dir=cache_dir)
    cache = Cache(settings.cache_dir)
    found, _inputs = compute_key(
        proj, settings=settings, extra_inputs=extra_inputs, extra_env=extra_env
    )
    if as_json:
        cached = cache.read_manifest(found) is not None
        click.echo(json.dumps({"key": found, "project": str(proj.root), "cached": cached}))
    else:
        click.echo(found)


@main.command(short_help="Explain why PROJECT's current key differs from a cached one.")
@project_argument
@cache_dir_option
@click.option("--against", metavar="KEY", help="Key (or unique prefix) to compare with.")
@extra_inputs_options
@click.option("--json", "as_json", is_flag=True, help="Print the difference as one JSON object.")
def explain(
    project: Path | None,
    cache_dir: Path | None,
    against: str | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    as_json: bool,
) -> None:
    """Explain why PROJECT's current key differs from a cached one.

    Compares the current inputs with those recorded for KEY, or by default
    with the most recent artifact of PROJECT in the cache.
    """
    from .explain import explain as explain_inputs
    from .explain import explain_json

    proj = _project(project)
    settings = _settings(cache_dir=cache_dir)
    cache = Cache(settings.cache_dir)
    current, inputs = compute_key(
        proj, settings=settings, extra_inputs=extra_inputs, extra_env=extra_env
    )
    if as_json:
        data = explain_json(proj, cache, key=current, inputs=inputs, against=against)
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(explain_inputs(proj, cache, key=current, inputs=inputs, against=against), nl=False)


@main.command(short_help="Watch PROJECT and keep its build in the cache current.")
@project_argument
@cache_dir_option
@remote_option
@extra_inputs_options
@click.option(
    "--poll/--no-poll",
    default=None,
    help="Poll the filesystem instead of inotify (network mounts, some container "
    "volumes) [env: REFLEX_BUILDD_POLL].",
)
@click.option(
    "--debounce",
    type=click.FloatRange(0.0, 60.0),
    default=0.1,
    show_default=True,
    help="Seconds of quiet that end a burst of saves (a change during a build cancels it).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print each event as one JSON line on stdout."
)
@click.option(
    "--metrics",
    "metrics_address",
    metavar="HOST:PORT",
    callback=_address,
    default=None,
    help="Serve the daemon's Prometheus metrics on http://HOST:PORT/metrics "
    "(needs the metrics extra).",
)
def watch(
    project: Path | None,
    cache_dir: Path | None,
    remote: str | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    poll: bool | None,
    debounce: float,
    as_json: bool,
    metrics_address: tuple[str, int] | None,
) -> None:
    """Watch PROJECT and keep its build current in the cache (a foreground daemon).

    Builds the current key if missing, then rebuilds on every change to a
    build input; with a remote, pulls a key from it instead of building when
    it has it, and pushes what it builds. Logs to stderr (with --json: JSON
    lines on stdout); stops cleanly on SIGTERM or SIGINT.
    """
    from .daemon import DaemonOptions, run_daemon
    from .report import JsonReporter, Reporter

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    settings = _settings(cache_dir=cache_dir, remote=remote, poll=poll)
    options = DaemonOptions(
        settings=settings,
        debounce=debounce,
        extra_inputs=extra_inputs,
        extra_env=extra_env,
    )
    reporter = JsonReporter() if as_json else Reporter(_err, quiet=_quiet())
    cache = Cache(settings.cache_dir)
    server = None
    if metrics_address is not None:
        from reflex_buildd_client.exposition import serve_daemon_metrics

        server = serve_daemon_metrics(*metrics_address)
        _say(f"metrics: http://{metrics_address[0]}:{metrics_address[1]}/metrics")
    try:
        run_daemon(_project(project), cache, stop=stop, options=options, reporter=reporter)
    finally:
        if server is not None:
            server.shutdown()


@main.command(short_help="Run the host with PROJECT in Reflex's dev loop (hot reload).")
@project_argument
@click.option(
    "--app",
    "app_path",
    required=True,
    metavar="MODULE:ATTR",
    help="The host ASGI app that mounts PROJECT, as uvicorn takes it (e.g. host:app).",
)
@click.option(
    "--path",
    "mount_path",
    required=True,
    help="The path the host mounts PROJECT at (e.g. /admin).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface of the host.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port of the host.")
@click.option(
    "--app-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Directory put on sys.path to import --app (as uvicorn's --app-dir).",
)
@click.option("--access-log/--no-access-log", default=False, help="Log each host request.")
@cache_dir_option
def dev(
    project: Path,
    app_path: str,
    mount_path: str,
    host: str,
    port: int,
    app_dir: Path,
    access_log: bool,
    cache_dir: Path | None,
) -> None:
    """Run the host app with PROJECT in Reflex's dev loop, under its mount path.

    Instead of `reflex run` while working on a mounted app: the host serves its
    own routes as usual, and the mount of PROJECT forwards to Vite's dev server
    and Reflex's reloading backend. A save updates the open page (Vite's HMR)
    and reloads the backend; the host keeps running. Nothing is written to the
    cache's artifacts. Stops on Ctrl-C or SIGTERM.
    """
    from reflex_buildd_client.serve.prefix import normalize_mount_path

    from .dev import DevOptions, run_dev

    options = DevOptions(
        app=app_path,
        prefix=normalize_mount_path(mount_path),
        host=host,
        port=port,
        app_dir=app_dir,
        access_log=access_log,
        settings=_settings(cache_dir=cache_dir),
    )
    code = run_dev(_project(project), _cache(cache_dir), options)
    sys.exit(code)


# -- cache lifecycle: ls, status, verify, gc (see docs/cache.md) -------------


def _parse_with(name: str) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    """A click callback parsing with ``units.<name>`` (imported when used)."""

    def callback(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from reflex_buildd_client import units

        if value is None:
            return None
        try:
            return getattr(units, name)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param=param) from None

    return callback


@main.command(name="ls", short_help="List the artifacts in the cache, most recently used first.")
@cache_dir_option
@click.option(
    "--remote",
    "remote_url",
    metavar="s3://BUCKET/PREFIX",
    default=None,
    flag_value="",
    is_flag=False,
    help="List the remote cache instead (URL optional: default REFLEX_BUILDD_REMOTE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of artifacts.")
def ls_command(cache_dir: Path | None, remote_url: str | None, as_json: bool) -> None:
    """List the artifacts in the cache, most recently used first.

    For each: key, project, size (every file counted, and the bytes no other
    artifact shares: what evicting it frees), when it was created and last
    used, and how many live hosts hold a lease on it. With --remote: the
    remote's artifacts, newest first, each checked as a host checks it
    (signature, key, paths).
    """
    from .inventory import list_artifacts, render_artifacts

    if remote_url is not None:
        _ls_remote(remote_url or None, as_json)
        return

    cache = _cache(cache_dir)
    rows = list_artifacts(cache)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=1))
    elif not rows:
        _err.print(f"no artifacts in {cache.root}")
    else:
        click.echo(render_artifacts(rows))


def _ls_remote(url: str | None, as_json: bool) -> None:
    from .remote_inventory import list_remote, render_remote

    settings = _remote(url, required=True)
    assert settings is not None
    rows = list_remote(settings)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    elif not rows:
        _err.print(f"no artifacts in {settings.url}")
    else:
        click.echo(render_remote(rows))


@main.command(short_help="Show daemons, builds, leases, disk use and the remote.")
@cache_dir_option
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status(cache_dir: Path | None, remote: str | None, as_json: bool) -> None:
    """Show daemons, builds in progress or failed, leases, disk use, and the remote cache."""
    from .inventory import cache_status, render_status
    from .remote_inventory import remote_status, render_remote_status

    cache = _cache(cache_dir)
    info = cache_status(cache)
    rem = remote_status(cache, _remote(remote))
    if as_json:
        click.echo(json.dumps({**info.to_json(), "remote": rem.to_json()}, indent=1))
        return
    click.echo(render_status(info))
    click.echo(render_remote_status(rem))


@main.command(short_help="Re-hash artifacts against their manifests.")
@click.argument("key", required=False)
@cache_dir_option
@click.option(
    "--rebuild",
    is_flag=True,
    help="Build KEY (a key, a unique prefix or a project directory; default: the current "
    "directory) again in a fresh workspace and compare its files with the artifact's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of verdicts.")
def verify(key: str | None, cache_dir: Path | None, rebuild: bool, as_json: bool) -> None:
    """Re-hash artifacts against their manifests (all, or the one KEY names).

    KEY may be a unique prefix. A corrupt artifact is moved into
    <cache>/v1/quarantine/ (so the next demand rebuilds it) and the command
    exits with code 4. With --rebuild, the warm build is checked against a
    clean one instead (exit code 4 if their files differ).
    """
    from .inventory import resolve_key, verify_cache

    cache = _cache(cache_dir)
    if rebuild:
        _verify_rebuild(cache, key or ".", as_json)
        return
    keys = [resolve_key(cache, key)] if key else None
    results = verify_cache(cache, keys)
    if as_json:
        click.echo(json.dumps([vars(r) for r in results], indent=1))
    for r in results:
        if r.ok:
            if not as_json:
                click.echo(f"ok       {r.key}")
            continue
        if not as_json:
            click.echo(f"CORRUPT  {r.key}")
        for rel, why in r.problems.items():
            _err.print(f"  {rel} {why}", markup=False)
        _err.print(
            f"  quarantined: {r.quarantined or 'already moved by another process'}", markup=False
        )
    if any(not r.ok for r in results):
        sys.exit(4)


def _verify_rebuild(cache: Cache, target: str, as_json: bool) -> None:
    """``verify --rebuild``: TARGET is a project directory, or a key of the cache."""
    from .inventory import resolve_key
    from .rebuild import verify_rebuild

    key: str | None = None
    if Path(target).is_dir():
        proj = _project(Path(target))
    else:
        key = resolve_key(cache, target)
        artifact = cache.open(key)
        if artifact is None:
            raise ArtifactMissingError(f"no artifact {key} in {cache.root}", key=key)
        proj = _project(Path(artifact.manifest.project["root"]))
    with _err.status(f"rebuilding {proj.root.name} in a fresh workspace", spinner="dots"):
        report = verify_rebuild(proj, cache, settings=_settings(cache_dir=cache.root), key=key)
    if as_json:
        click.echo(json.dumps([report.to_json()], indent=1))
    elif report.ok:
        click.echo(f"same     {report.key} ({report.files} files, as built in a fresh workspace)")
    else:
        click.echo(f"DIFFERS  {report.key}")
        for label, paths in (
            ("only in the artifact", report.only_published),
            ("only in the fresh build", report.only_fresh),
            ("other bytes", report.differ),
        ):
            for rel in paths:
                _err.print(f"  {label}: {rel}", markup=False)
    if not report.ok:
        sys.exit(4)


@main.command(short_help="Evict least recently used artifacts and unshared blobs.")
@cache_dir_option
@click.option(
    "--max-size",
    metavar="SIZE",
    callback=_parse_with("parse_size"),
    help="Evict least recently used artifacts until the cache fits (500M, 2G, 1.5GiB). "
    "Without --max-size and --max-age: REFLEX_BUILDD_GC_MAX_SIZE / REFLEX_BUILDD_GC_MAX_AGE, "
    "else 2 GiB.",
)
@click.option(
    "--max-age",
    metavar="AGE",
    callback=_parse_with("parse_age"),
    help="Evict artifacts not used for longer than AGE (30m, 12h, 7d, 2w).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def gc(
    cache_dir: Path | None,
    max_size: int | None,
    max_age: float | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Collect garbage: evict least recently used artifacts, then unshared blobs.

    Never removes an artifact leased by a live host or the current key of a
    live daemon, nor a temp directory a live process may still write. Also
    removes blobs no artifact links, scratch of dead builders, stale leases
    and quarantined artifacts older than a week.
    """
    from reflex_buildd_client.units import format_size

    from .gc import DEFAULT_MAX_SIZE, GcPolicy, auto_policy, collect

    if max_size is None and max_age is None:
        try:
            policy = auto_policy(_settings()) or GcPolicy(max_size=DEFAULT_MAX_SIZE)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    else:
        policy = GcPolicy(max_size=max_size, max_age=max_age)
    report = collect(_cache(cache_dir), policy, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
        return
    verb = "would evict" if dry_run else "evicted"
    done = report.plan.evict if dry_run else report.evicted
    for key in done:
        click.echo(f"{verb} {key} ({report.plan.reasons[key]})")
    for key, why in report.skipped.items():
        click.echo(f"kept {key}: {why}")
    for key in report.plan.kept_pinned:
        click.echo(f"kept {key}: pinned (leased by a live host or a live daemon's key)")
    click.echo(
        f"artifacts: {format_size(report.plan.size_before)} -> {format_size(report.plan.size_after)}"
        f"{' (planned)' if dry_run else ''}; blobs {'to remove' if dry_run else 'removed'}: "
        f"{report.blobs_removed} ({format_size(report.blob_bytes)}); scratch dirs: "
        f"{len(report.scratch_removed)}; stale leases: {report.leases_removed}"
    )


@main.command(short_help="Upload a local artifact to the remote cache.")
@click.argument("key")
@cache_dir_option
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print the push report as JSON.")
def push(key: str, cache_dir: Path | None, remote: str | None, as_json: bool) -> None:
    """Upload the local artifact KEY (a unique prefix will do) to the remote cache.

    Into this machine's namespace (REFLEX_BUILDD_REMOTE_NAMESPACE, default
    main). Blobs the remote has are skipped; the manifest goes last,
    create-only, signed with REFLEX_BUILDD_SIGNING_KEY_FILE (Ed25519) or
    REFLEX_BUILDD_SIGNING_KEY (HMAC) when set. A key the remote already has is
    a success. A machine holding only public keys refuses (exit 2).
    """
    from .inventory import resolve_key
    from .push import push_artifact

    settings = _remote(remote, required=True)
    assert settings is not None
    cache = _cache(cache_dir)
    artifact = cache.open(resolve_key(cache, key))
    if artifact is None:
        raise ArtifactMissingError(f"no artifact {key} in {cache.root}", key=key)
    report = push_artifact(cache, artifact, settings)
    _err.print(report.summary())
    click.echo(json.dumps(report.to_json()) if as_json else report.key)


@main.command(short_help="Download an artifact from the remote cache.")
@click.argument("key")
@cache_dir_option
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print {key, path}.")
def pull(key: str, cache_dir: Path | None, remote: str | None, as_json: bool) -> None:
    """Download the artifact KEY (the full key) from the remote into the local cache.

    From the first namespace of REFLEX_BUILDD_READ_NAMESPACES (default main)
    that has it. The manifest is checked (signature by a key of
    REFLEX_BUILDD_TRUSTED_KEYS, or REFLEX_BUILDD_SIGNING_KEY's HMAC; key,
    inputs, paths) and every file against its digest before anything is
    installed. Exit status 2 if the remote has no such key, 4 if it is
    refused, 5 if the remote cannot be reached.
    """
    from reflex_buildd_client.remote.pull import pull as pull_artifact

    settings = _remote(remote, required=True)
    assert settings is not None
    cache = _cache(cache_dir)
    artifact = pull_artifact(cache, settings, key)
    if artifact is None:
        raise ArtifactMissingError(f"no artifact {key} in {settings.url}", key=key)
    _say(f"pulled {key} -> {artifact.path}")
    if as_json:
        click.echo(json.dumps({"key": key, "path": str(artifact.path)}))
    else:
        click.echo(key)


@main.command(short_help="Make an Ed25519 key pair for signing remote artifacts.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print {private, public, fingerprint}.")
def keygen(path: Path, cache_dir: Path | None, as_json: bool) -> None:
    """Make an Ed25519 key pair: the private key in PATH (mode 0600), the public in PATH.pub.

    Builders sign with PATH (REFLEX_BUILDD_SIGNING_KEY_FILE); hosts verify with
    PATH.pub (REFLEX_BUILDD_TRUSTED_KEYS) and never see PATH. Both files are
    new: an existing file (or link) is never overwritten. Prints the key's
    fingerprint (as `ssh-keygen -lf PATH.pub` does). The cache is not used.
    """
    from reflex_buildd_client.remote.keyfiles import generate_key_pair

    made = generate_key_pair(path)
    _say(f"private key: {made.source} (keep it secret: CI's secret store only)")
    _say(f"public key:  {made.source}.pub (give it to hosts: REFLEX_BUILDD_TRUSTED_KEYS)")
    if as_json:
        info = {"private": made.source, "public": made.source + ".pub"}
        click.echo(json.dumps({**info, "fingerprint": made.fingerprint}))
    else:
        click.echo(made.fingerprint)


@main.command(short_help="Verify an artifact, then sign and push it to another namespace.")
@click.argument("key")
@click.option("--from", "source", required=True, metavar="NS", help="Namespace to take KEY from.")
@click.option("--to", "target", required=True, metavar="NS", help="Namespace to sign it for.")
@click.option(
    "--trusted-keys",
    metavar="KEYS",
    default=None,
    help="Public keys trusted for the --from namespace (files or inline, comma-separated) "
    "[default: REFLEX_BUILDD_TRUSTED_KEYS].",
)
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also require KEY to be the key of this checkout's current sources.",
)
@cache_dir_option
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print the push report as JSON.")
def promote(
    key: str,
    source: str,
    target: str,
    trusted_keys: str | None,
    project_dir: Path | None,
    cache_dir: Path | None,
    remote: str | None,
    as_json: bool,
) -> None:
    """Verify KEY in namespace --from, then sign it for --to and push it there.

    Checks the signature against the keys trusted for --from, the manifest
    (key, inputs, paths), the recipe (built by this reflex-buildd's builder),
    and every file's digest; then pushes the verified bytes into --to, signed
    with REFLEX_BUILDD_SIGNING_KEY_FILE for that namespace. Exit status 4 if
    the artifact fails a check (nothing is pushed), 2 if --from has no KEY.
    The download goes to a scratch folder in the cache's tmp/, never into
    the cache itself.
    """
    from reflex_buildd_client.remote.namespaces import namespace

    from .promote import PromoteRequest
    from .promote import promote as promote_artifact

    settings = _remote(remote, required=True, trusted_keys=trusted_keys)
    assert settings is not None
    project_key = None
    if project_dir is not None:
        project_key, _inputs = compute_key(find_project(project_dir), settings=_settings())
    request = PromoteRequest(
        key=key,
        source=namespace(source, "--from"),
        target=namespace(target, "--to"),
        project_key=project_key,
    )
    report = promote_artifact(_cache(cache_dir), settings, request)
    _say(f"promoted {key} from {request.source}: {report.summary()}")
    click.echo(json.dumps(report.to_json()) if as_json else key)


@main.command(short_help="List URLs in PROJECT's build that leave the mount prefix.")
@project_argument
@cache_dir_option
@extra_inputs_options
@click.option("--strict", is_flag=True, help="Exit with status 4 when anything is found (for CI).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
def doctor(
    project: Path | None,
    cache_dir: Path | None,
    extra_inputs: tuple[str, ...],
    extra_env: tuple[str, ...],
    strict: bool,
    as_json: bool,
) -> None:
    """List root-absolute URLs in PROJECT's build that will leave the mount prefix.

    Builds the current key first if it is missing. Each finding names the
    file, the component or element and the source line when it can, and what
    to do (see docs/assets.md). Exit status: 0, or 4 with --strict when
    anything was found; 1 if the build fails, 2 on bad input.
    """
    from .build import ensure_built
    from .doctor import BLIND_SPOTS, diagnose, format_findings

    proj = _project(project)
    with Progress(_err, proj.root.name, quiet=_quiet()) as progress:
        outcome = ensure_built(
            proj,
            _cache(cache_dir),
            settings=_settings(cache_dir=cache_dir),
            extra_inputs=extra_inputs,
            extra_env=extra_env,
            progress=progress.set_phase,
        )
    findings = diagnose(outcome.artifact, proj.root)
    if as_json:
        click.echo(json.dumps([f.to_json() for f in findings], indent=1))
    elif findings:
        click.echo(format_findings(findings))
    _err.print(
        f"{len(findings)} reference(s) will leave the mount prefix in {outcome.key}"
        if findings
        else f"nothing leaves the mount prefix in {outcome.key}"
    )
    _err.print(f"not seen by this scan: {BLIND_SPOTS} (see docs/assets.md)")
    if strict and findings:
        sys.exit(4)


def _parse_since(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``--since``: an age (``12h``, ``7d``) or a date (``2026-12-01``, ISO 8601)."""
    import datetime
    import time

    from reflex_buildd_client.units import parse_age

    if value is None:
        return None
    try:
        return time.time() - parse_age(value)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected an age (30m, 12h, 7d) or a date (2026-12-01, 2026-12-01T09:00)",
            param=param,
        ) from None
    return when.timestamp()


@main.command(short_help="Cache statistics per project: hits, misses, time saved.")
@cache_dir_option
@click.option(
    "--since",
    metavar="AGE|DATE",
    callback=_parse_since,
    help="Count only events after this: an age (12h, 7d) or a date (2026-12-01).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
def stats(cache_dir: Path | None, since: float | None, as_json: bool) -> None:
    """Cache statistics per project: hits, misses, builds, failures, time saved.

    Counted from the cache's journal: every host start, build, doctor and
    daemon key is one lookup (a hit or a miss); time saved adds up, over
    hits, what building that key took.
    """
    from reflex_buildd_client.cache.status import read_journal

    from .stats import render, summarize

    summary = summarize(read_journal(_cache(cache_dir)), since=since)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=1))
    else:
        click.echo(render(summary), nl=False)
