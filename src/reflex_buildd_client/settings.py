"""Settings: one frozen object, built once from arguments over ``REFLEX_BUILDD_*`` over defaults.

Every ``REFLEX_BUILDD_*`` variable is read here and nowhere else, so the CLI,
the daemon and the mount agree on what a variable means, a malformed value
fails once at startup (not in the middle of a request or a build), and each
setting's precedence reads top to bottom in :meth:`Settings.load`: an argument
that is not None wins, then the variable, then the default.

The variables:

=================================  ==========================================
``REFLEX_BUILDD_CACHE_DIR``        the cache (default: the per-user cache)
``REFLEX_BUILDD_POLICY``           startup policy: build, wait, fail
``REFLEX_BUILDD_TIMEOUT``          seconds a host waits for its artifact
``REFLEX_BUILDD_TRUSTED_PROXIES``  IPs/CIDRs whose forwarded headers count
``REFLEX_BUILDD_PUBLIC_URL``       the mount's full external URL
``REFLEX_BUILDD_JS_RUNTIME``       the JS runtime builds use, as keyed (``auto``)
``REFLEX_BUILDD_BUN``              the bun binary builds use
``REFLEX_BUILDD_POLL``             watch by polling instead of inotify
``REFLEX_BUILDD_GC_MAX_SIZE``      the daemon's automatic gc cap (``off``)
``REFLEX_BUILDD_GC_MAX_AGE``       ... and age limit
``REFLEX_BUILDD_INPUTS``           extra input globs, comma-separated
``REFLEX_BUILDD_ENV``              extra input variables, comma-separated
``REFLEX_BUILDD_REMOTE``           the remote cache, ``s3://bucket/prefix``
``REFLEX_BUILDD_SIGNING_KEY``      HMAC key of remote manifests (the weaker mode)
``REFLEX_BUILDD_SIGNING_KEY_FILE`` Ed25519 private key builders sign with
``REFLEX_BUILDD_TRUSTED_KEYS``     Ed25519 public keys hosts accept (files or inline)
``REFLEX_BUILDD_REMOTE_NAMESPACE`` the namespace pushes go to (``main``)
``REFLEX_BUILDD_READ_NAMESPACES``  the namespaces pulls read, in order (``main``)
``REFLEX_BUILDD_REMOTE_TIMEOUT``   seconds one pull or push may take
``REFLEX_BUILDD_METRICS_DIR``      where workers share Prometheus counters
``REFLEX_BUILDD_BACKEND``          where a mount's backend runs: inprocess, process
``REFLEX_BUILDD_BACKEND_START``    when it starts: background (default), startup
``REFLEX_BUILDD_BACKEND_WORKERS``  process mode's backend processes: N, auto
``REFLEX_BUILDD_BACKEND_TIMEOUT``  process mode: seconds a request waits for the
                                   backend's answer (default 60)
``REFLEX_BUILDD_DEV``              set by ``reflex-buildd dev`` only: where its
                                   dev servers are (JSON, :mod:`reflex_buildd_client.dev.target`)
``REFLEX_BUILDD_DAEMON_GRACE``     seconds a waiting host gives a daemon to appear
``REFLEX_BUILDD_LOG_LEVEL``        the CLI's and daemon's log level
``FORWARDED_ALLOW_IPS``            uvicorn's own: the proxies *it* trusts
``AWS_ALLOW_HTTP``                 the remote's endpoint may be plain HTTP (AWS_* are
                                   otherwise obstore's own to read)
``REFLEX_DIR``, ``XDG_DATA_HOME``  Reflex's own: where it keeps bun (the JS runtime lookup)
``REFLEX_APP_NAME``                Reflex's own: the app name, over ``rxconfig.py``'s
``REFLEX_BUILDD_DEBUG``            CLI errors with their traceback
=================================  ==========================================
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from .errors import InvalidConfigError
from .remote.bucket import DEFAULT_REMOTE_TIMEOUT, RemoteSettings, remote_settings
from .serve.prefix import SERVER_PROXIES_DEFAULT, ProxyConfig, proxy_config
from .units import parse_age, parse_size

if TYPE_CHECKING:
    from .dev.target import DevTarget

__all__ = [
    "BACKEND_MODES",
    "DEFAULT_BACKEND_TIMEOUT",
    "DEFAULT_DAEMON_GRACE",
    "DEFAULT_GC_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "MAX_BACKEND_WORKERS",
    "GcLimits",
    "Settings",
    "StartupPolicy",
    "debug_enabled",
    "default_cache_dir",
]

ENV_PREFIX = "REFLEX_BUILDD_"
DEFAULT_TIMEOUT = 900.0
# Process mode: a forwarded request's wait for its answer (nginx's proxy_read_timeout).
DEFAULT_BACKEND_TIMEOUT = 60.0
# Policy wait without a live daemon: long enough for a daemon started beside
# the host to record itself (a second or two), short against the timeout.
DEFAULT_DAEMON_GRACE = 10.0
LOG_LEVELS = ("debug", "info", "warning", "error")
# The daemon's automatic gc keeps the cache under this unless told otherwise.
DEFAULT_GC_MAX_SIZE = 2 * 1024**3
_TRUE = ("1", "true", "yes", "on")
# Where a mount runs the Reflex backend: in the host, or in a child process.
BACKEND_MODES = ("inprocess", "process")
# When a mount starts its backend: beside the host's startup, its static files
# answering at once (background), or before the host accepts requests (startup).
BACKEND_STARTS = ("background", "startup")
# A bound against typos (backend_workers=1000 would start a thousand Reflex apps).
MAX_BACKEND_WORKERS = 256
_OFF = ("off", "none", "no", "false")


class StartupPolicy(str, Enum):
    """What a host does when nobody is building the key it needs.

    Attributes:
        BUILD: Build it here, under the lock (the default: development and
            single-machine deployments just work).
        WAIT: Wait for a daemon (or another process) to build it.
        FAIL: Fail at once: production images that must ship prebuilt artifacts.
    """

    BUILD = "build"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class GcLimits:
    """The daemon's automatic gc: a size cap and an age limit (None: no limit of that kind)."""

    max_size: int | None = DEFAULT_GC_MAX_SIZE
    max_age: float | None = None


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``REFLEX_BUILDD_CACHE_DIR``, else the per-user cache folder (XDG)."""
    environ = os.environ if environ is None else environ
    if value := environ.get(f"{ENV_PREFIX}CACHE_DIR"):
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reflex-buildd"


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``REFLEX_BUILDD_DEBUG`` is true: the CLI prints tracebacks with its errors.

    Readable on its own, without loading (and validating) every setting: the
    CLI's error handler asks while reporting what may be a bad setting.
    """
    environ = os.environ if environ is None else environ
    return environ.get(f"{ENV_PREFIX}DEBUG", "").strip().lower() in _TRUE


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything reflex-buildd can be told, validated when the object is made.

    Attributes:
        cache_dir: The cache root (made absolute).
        policy: Startup policy of hosts (and ``obtain`` callers).
        timeout: Seconds a host waits for its artifact.
        trusted_proxies: IPs/CIDRs whose forwarded headers are honoured (``*``: all).
        public_url: The mount's full external URL (``""``: none).
        backend_url: Where the frontend reaches the backend (``""``: same origin).
        js_runtime: The JS runtime builds use, as keyed (``""``: the default,
            ``auto``: whatever this machine has).
        bun: The bun binary builds use (``""``: look for one).
        poll: Watch by polling instead of inotify.
        gc: The daemon's automatic gc, or None when switched off.
        inputs: Extra input globs from the environment.
        env: Extra input variables (names or patterns) from the environment.
        remote: The remote cache (``""``: none).
        signing_key: The HMAC key of remote manifests (``""``: unsigned).
        remote_timeout: Seconds one pull or push may take in all.
        signing_key_file: The Ed25519 private key file this machine signs with.
        trusted_keys: The Ed25519 public keys it accepts (comma-separated
            files or inline ``ssh-ed25519`` keys).
        remote_namespace: The namespace it pushes into (``""``: ``main``).
        read_namespaces: The namespaces it pulls from, comma-separated (``""``: ``main``).
        metrics_dir: Where the worker processes of one host share their
            Prometheus counters: ``REFLEX_BUILDD_METRICS_DIR``, else
            ``PROMETHEUS_MULTIPROC_DIR`` (``""``: a folder of ours in ``runtime_dir``).
        runtime_dir: This user's runtime directory (``XDG_RUNTIME_DIR``, else
            the temp directory).
        backend: Where a mount runs the Reflex backend: ``"inprocess"`` or
            ``"process"`` (a child process in the project directory).
        backend_start: ``"background"``: the host accepts requests as soon as
            the artifact is open (static files answer, backend requests wait
            for the backend); ``"startup"``: the host's startup waits for the
            backend and fails with it.
        backend_workers: How many backend processes process mode runs per
            project (``auto``: the cores this process may run on, resolved here).
        backend_timeout: Process mode: seconds a forwarded request waits for
            the first byte of the backend's answer, and between two reads
            after it (then 504, or a cut stream).
        dev: Where ``reflex-buildd dev`` runs its dev servers, when it runs
            this process (None: production, always served from the cache).
        daemon_grace: Policy ``wait``: seconds without a live daemon before
            startup gives up.
        log_level: The CLI's and the daemon's log level (``--log-level``).
        debug: CLI errors come with their traceback.
        app_name: Reflex's ``REFLEX_APP_NAME``: the app name, over the one in ``rxconfig.py``.
        environ: The environment these settings were read from (a copy): what a key's
            variable inputs, the JS runtime's lookup and Reflex's directories see, so that
            nothing below the entry point reads ``os.environ`` on its own.
        server_proxies: The proxies the ASGI server trusts (uvicorn's
            ``--forwarded-allow-ips``, read from uvicorn's own ``FORWARDED_ALLOW_IPS``):
            whom it lets replace the client address from ``X-Forwarded-For``.
        proxy: The prefix rule's settings, parsed from the proxy settings above.
        remote_tier: The remote's settings parsed from remote, signing_key and
            remote_timeout, or None.
    """

    cache_dir: Path
    policy: StartupPolicy = StartupPolicy.BUILD
    timeout: float = DEFAULT_TIMEOUT
    trusted_proxies: tuple[str, ...] = ()
    public_url: str = ""
    backend_url: str = ""
    js_runtime: str = ""
    bun: str = ""
    poll: bool = False
    gc: GcLimits | None = field(default_factory=GcLimits)
    inputs: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    remote: str = ""
    signing_key: str = field(default="", repr=False)  # a secret: never printed
    remote_timeout: float = DEFAULT_REMOTE_TIMEOUT
    signing_key_file: str = ""
    trusted_keys: str = ""
    remote_namespace: str = ""
    read_namespaces: str = ""
    metrics_dir: str = ""
    runtime_dir: str = field(default_factory=tempfile.gettempdir)
    backend: str = "inprocess"
    backend_start: str = "background"
    backend_timeout: float = DEFAULT_BACKEND_TIMEOUT
    backend_workers: int = 1
    dev: DevTarget | None = None
    daemon_grace: float = DEFAULT_DAEMON_GRACE
    log_level: str = "info"
    server_proxies: str = SERVER_PROXIES_DEFAULT
    debug: bool = False
    app_name: str = ""
    environ: Mapping[str, str] = field(
        default_factory=lambda: dict(os.environ), repr=False, compare=False
    )
    proxy: ProxyConfig = field(init=False, repr=False, compare=False)
    remote_tier: RemoteSettings | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__, once, here.
        set_ = object.__setattr__
        set_(self, "cache_dir", Path(self.cache_dir).expanduser().absolute())
        set_(self, "policy", _policy(self.policy))
        set_(self, "timeout", _seconds("TIMEOUT", self.timeout, DEFAULT_TIMEOUT))
        set_(
            self,
            "remote_timeout",
            _seconds("REMOTE_TIMEOUT", self.remote_timeout, DEFAULT_REMOTE_TIMEOUT),
        )
        grace = _seconds("DAEMON_GRACE", self.daemon_grace, DEFAULT_DAEMON_GRACE, zero=True)
        set_(self, "daemon_grace", grace)
        set_(self, "backend", _backend(self.backend))
        set_(self, "backend_start", _backend_start(self.backend_start))
        set_(self, "backend_workers", _backend_workers(self.backend_workers))
        set_(
            self,
            "backend_timeout",
            _seconds("BACKEND_TIMEOUT", self.backend_timeout, DEFAULT_BACKEND_TIMEOUT),
        )
        proxies = self.trusted_proxies
        set_(
            self, "trusted_proxies", _split(proxies) if isinstance(proxies, str) else tuple(proxies)
        )
        set_(
            self,
            "proxy",
            proxy_config(
                trusted_proxies=self.trusted_proxies,
                public_url=self.public_url,
                backend_url=self.backend_url,
                server_proxies=self.server_proxies,
            ),
        )
        set_(
            self,
            "remote_tier",
            remote_settings(
                self.remote,
                signing_key=self.signing_key or None,
                timeout=self.remote_timeout,
                allow_http=self.environ.get("AWS_ALLOW_HTTP", "").strip().lower() in _TRUE,
                namespace_name=self.remote_namespace,
                read_namespaces=self.read_namespaces,
                signing_key_file=self.signing_key_file,
                trusted_keys=self.trusted_keys,
            ),
        )

    @classmethod
    def load(
        cls, *, environ: Mapping[str, str] | None = None, **given: Unpack[Overrides]
    ) -> Settings:
        """Arguments (None: not given) over ``REFLEX_BUILDD_*`` over defaults.

        Raises:
            InvalidConfigError: If a value is malformed (naming the variable).
            InvalidPathError: If a URL setting holds a bad path.
        """
        env = os.environ if environ is None else environ
        g: dict[str, Any] = {name: value for name, value in given.items() if value is not None}

        def var(name: str) -> str:
            return env.get(ENV_PREFIX + name, "").strip()

        # Raw values: __post_init__ validates and normalises each one, once.
        raw: dict[str, Any] = {
            "cache_dir": Path(g["cache_dir"]) if "cache_dir" in g else default_cache_dir(env),
            "policy": g.get("policy", var("POLICY")),
            "timeout": g.get("timeout", var("TIMEOUT")),
            "trusted_proxies": _proxies(g.get("trusted_proxies", var("TRUSTED_PROXIES"))),
            "public_url": g.get("public_url", var("PUBLIC_URL")),
            "backend_url": g.get("backend_url", ""),
            "js_runtime": var("JS_RUNTIME"),
            "bun": var("BUN"),
            "poll": g["poll"] if "poll" in g else var("POLL").lower() in _TRUE,
            "gc": _gc(var("GC_MAX_SIZE"), var("GC_MAX_AGE")),
            "inputs": _split(var("INPUTS")),
            "env": _split(var("ENV")),
            "remote": g.get("remote", var("REMOTE")),
            "signing_key": var("SIGNING_KEY"),
            "remote_timeout": var("REMOTE_TIMEOUT"),
            "signing_key_file": var("SIGNING_KEY_FILE"),
            "trusted_keys": g.get("trusted_keys", var("TRUSTED_KEYS")),
            "remote_namespace": g.get("remote_namespace", var("REMOTE_NAMESPACE")),
            "read_namespaces": g.get("read_namespaces", var("READ_NAMESPACES")),
            "metrics_dir": var("METRICS_DIR") or env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
            "runtime_dir": env.get("XDG_RUNTIME_DIR", "").strip() or tempfile.gettempdir(),
            "backend": g.get("backend", var("BACKEND")),
            "backend_start": g.get("backend_start", var("BACKEND_START")),
            "backend_timeout": var("BACKEND_TIMEOUT"),
            "backend_workers": g.get("backend_workers", var("BACKEND_WORKERS")),
            "dev": _dev(var("DEV")),
            "daemon_grace": var("DAEMON_GRACE"),
            "log_level": _log_level(var("LOG_LEVEL")),
            # uvicorn's variable and default, so the mount knows whom uvicorn trusts.
            "server_proxies": env.get("FORWARDED_ALLOW_IPS", SERVER_PROXIES_DEFAULT),
            "debug": debug_enabled(env),
            "app_name": env.get("REFLEX_APP_NAME", "").strip(),
            "environ": dict(env),
        }
        return cls(**raw)

    def override(self, **given: Unpack[Overrides]) -> Settings:
        """A copy with the arguments that are not None (validated like the rest)."""
        # An empty backend_url is ReflexMount's default, i.e. not given.
        changes: dict[str, Any] = {
            n: v for n, v in given.items() if v is not None and (n != "backend_url" or v)
        }
        if "cache_dir" in changes:
            changes["cache_dir"] = Path(changes["cache_dir"])
        if "trusted_proxies" in changes:
            changes["trusted_proxies"] = _proxies(changes["trusted_proxies"])
        # policy, backend, ... are normalised and checked by __post_init__.
        return dataclasses.replace(self, **changes) if changes else self


class Overrides(TypedDict, total=False):
    """What a caller may give :meth:`Settings.load` and :meth:`Settings.override`
    (None: not given)."""

    cache_dir: str | os.PathLike[str] | None
    policy: StartupPolicy | str | None
    timeout: float | None
    trusted_proxies: str | Iterable[str] | None
    public_url: str | None
    backend_url: str | None
    poll: bool | None
    remote: str | None
    trusted_keys: str | None
    remote_namespace: str | None
    read_namespaces: str | None
    backend: str | None
    backend_start: str | None
    backend_workers: int | str | None


def _dev(text: str) -> DevTarget | None:
    if not text:
        return None  # production: the dev contract is not even imported
    from .dev.target import DevTarget

    return DevTarget.from_env(text)


def _proxies(value: str | Iterable[str]) -> tuple[str, ...]:
    return _split(value) if isinstance(value, str) else tuple(str(v).strip() for v in value)


def _policy(value: StartupPolicy | str) -> StartupPolicy:
    if isinstance(value, StartupPolicy):
        return value
    text = value.strip().lower()
    if not text:
        return StartupPolicy.BUILD
    try:
        return StartupPolicy(text)
    except ValueError:
        raise InvalidConfigError(
            f"{ENV_PREFIX}POLICY / policy={value!r}: expected one of build, wait, fail"
        ) from None


def _backend(value: str) -> str:
    text = value.strip().lower().replace("-", "").replace("_", "")
    if not text:
        return "inprocess"
    if text not in BACKEND_MODES:
        raise InvalidConfigError(
            f"{ENV_PREFIX}BACKEND / backend={value!r}: expected one of {', '.join(BACKEND_MODES)}"
        )
    return text


def _backend_start(value: str) -> str:
    text = value.strip().lower()
    if not text:
        return "background"
    if text not in BACKEND_STARTS:
        raise InvalidConfigError(
            f"{ENV_PREFIX}BACKEND_START / backend_start={value!r}: expected one of "
            f"{', '.join(BACKEND_STARTS)}"
        )
    return text


def _backend_workers(value: int | str) -> int:
    text = str(value).strip().lower()
    if not text:
        return 1
    if text == "auto":
        # The cores this process may run on (cpusets, taskset), not all the machine's.
        return max(1, min(len(os.sched_getaffinity(0)), MAX_BACKEND_WORKERS))
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_BACKEND_WORKERS:
        raise InvalidConfigError(
            f"{ENV_PREFIX}BACKEND_WORKERS / backend_workers={value!r}: expected a whole "
            f"number from 1 to {MAX_BACKEND_WORKERS}, or auto"
        )
    return workers


def _seconds(name: str, value: str | float, default: float, *, zero: bool = False) -> float:
    """A number of seconds from a variable or an argument: finite, positive (or 0 if allowed).

    ``inf``, ``nan`` and ``1e999`` parse as floats but mean nothing as a bound (and overflow
    timedelta later), so they are refused here with the rest.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return default
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        least = "0 or more" if zero else "more than 0"
        raise InvalidConfigError(
            f"{ENV_PREFIX}{name} / {name.lower()}={value!r}: expected a finite number of "
            f"seconds, {least}"
        )
    return seconds


def _gc(size_text: str, age_text: str) -> GcLimits | None:
    if size_text.lower() in _OFF:
        return None
    try:
        return GcLimits(
            max_size=parse_size(size_text) if size_text else DEFAULT_GC_MAX_SIZE,
            max_age=parse_age(age_text) if age_text else None,
        )
    except ValueError as exc:
        raise InvalidConfigError(f"{ENV_PREFIX}GC_MAX_SIZE/{ENV_PREFIX}GC_MAX_AGE: {exc}") from None


def _log_level(text: str) -> str:
    level = text.lower() or "info"
    if level not in LOG_LEVELS:
        raise InvalidConfigError(
            f"{ENV_PREFIX}LOG_LEVEL={text!r}: expected one of {', '.join(LOG_LEVELS)}"
        )
    return level
