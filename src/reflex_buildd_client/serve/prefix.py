"""The one prefix rule, as pure functions.

Where a mounted app is, seen from the browser, is decided here and nowhere
else (every mounting system before this one grew double or missing prefixes by
combining ``root_path``, forwarded headers and a public URL in several places):

1. An explicit **public URL** (``public_url=`` or ``REFLEX_BUILDD_PUBLIC_URL``)
   is the full external URL of the mount and overrides everything below.
2. Otherwise the **prefix** is the ASGI ``root_path`` the host gives the mounted
   app (Starlette's ``Mount`` sets it to the parent's ``root_path`` plus the
   mount path; uvicorn's ``--root-path`` adds what a proxy strips), and when
   the request comes from a **trusted proxy** (``trusted_proxies=`` or
   ``REFLEX_BUILDD_TRUSTED_PROXIES``), ``X-Forwarded-Prefix`` is put in front
   of it: a proxy that strips ``/ext`` and forwards ``/admin/x`` serves the
   page at ``/ext/admin/x``. Tell the host about a stripped prefix once: with
   ``--root-path`` or with ``X-Forwarded-Prefix``, not both.
3. ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (trusted proxies only) give
   the public origin; the backend URL of the ``<meta>`` tag follows from it.

Who sent the request is the ASGI ``client``, unless the server has already
replaced it from ``X-Forwarded-For``: uvicorn does so by default for peers in
its ``--forwarded-allow-ips`` (``FORWARDED_ALLOW_IPS``, default 127.0.0.1), so
behind nginx on the same machine the mount sees the browser's address, never
the proxy's. Such an address has port 0 (no TCP peer has), and the server only
made it for a peer it trusts; the mount honours the forwarded headers then if
the server trusts no proxy the mount does not (``ProxyConfig.follow_server``)
and every hop the server skipped in ``X-Forwarded-For`` is trusted too. An
untrusted client reaching the server directly keeps its own address and port,
whatever headers it sends.

Forwarded values are validated with the same segment rule as mount paths
(:func:`normalize_mount_path`); an invalid one is an :class:`InvalidPathError`
(the host answers 400), never a prefix. The rule's characters cannot end an
HTML attribute or a JS string (no quotes, ``<``, ``>``, backslash, ``&``,
whitespace), so a prefix is safe in every place the sentinel sits.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import InvalidConfigError, InvalidPathError

__all__ = [
    "Location",
    "ProxyConfig",
    "is_safe_path",
    "normalize_mount_path",
    "prefix_of",
    "proxy_config",
    "relative_path",
    "resolve_location",
]

# uvicorn's default --forwarded-allow-ips (it reads FORWARDED_ALLOW_IPS first).
SERVER_PROXIES_DEFAULT = "127.0.0.1"

# RFC 3986 path characters without '%' (a prefix is compared and embedded
# decoded, so escapes would only hide what it is), "'" (it would end a
# single-quoted attribute or JS string where the sentinel is replaced) and '&'
# (an HTML parser would read "&amp;" in an attribute as another path).
_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$()*+,;=:@-]+$")
# Long enough for any real mount; short enough that a prefix (a cache key of
# prepared sites, written ~30 times into every page) stays small.
_MAX_PREFIX = 512
# host or host:port, host a DNS name, an IPv4 address or a bracketed IPv6 one.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
# Longest request path a page can have: Reflex's routes are short, and no
# artifact file comes close; longer ones are refused before any lookup.
_MAX_PATH = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# "." or ".." as a whole segment (paths start with "/").
_DOT_SEGMENT = re.compile(r"/\.{1,2}(?:/|$)")
_FORWARDED = (b"x-forwarded-prefix", b"x-forwarded-proto", b"x-forwarded-host")
_FORWARDED_FOR = b"x-forwarded-for"
# A DNS name is at most 253 characters, a port 6 more: anything longer is no host.
_MAX_HOST = 259
_MAX_PROTO = 8  # "https" with room for spaces
# Hops of X-Forwarded-For looked at from the right: real chains have one to
# three; a longer one is not followed (the request counts as untrusted).
_MAX_HOPS = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalize_mount_path(path: str, *, what: str = "mount path") -> str:
    """Validate a mount path (or a forwarded prefix); ``"/"`` becomes ``""``.

    Raises:
        InvalidPathError: If it is not absolute, too long, or has empty, dot or
            odd segments.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPathError(f"{what} must start with '/': {path!r:.80}")
    if len(path) > _MAX_PREFIX:
        raise InvalidPathError(f"{what} is longer than {_MAX_PREFIX} characters")
    stripped = path.strip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidPathError(f"invalid segment {segment!r:.80} in {what} {path!r:.80}")
    return "/" + stripped


def prefix_of(scope: Mapping[str, Any]) -> str:
    """The prefix of a request: its ``root_path``, as ``""`` or ``"/a/b"``."""
    stripped = str(scope.get("root_path", "")).strip("/")
    return "/" + stripped if stripped else ""


def relative_path(scope: Mapping[str, Any]) -> str:
    """The request path below the prefix (``""`` for the prefix itself).

    Hosts differ: Starlette keeps the full path in ``path``; others strip the
    prefix. Like Starlette's ``get_route_path``, strip it only when present.
    """
    path = str(scope.get("path", ""))
    root = prefix_of(scope)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


def is_safe_path(path: str) -> bool:
    """Whether a (decoded) request path below the prefix may be looked up at all.

    No file is ever opened by path (the static site is a dictionary), so this
    is not what keeps files outside the artifact out of reach; it makes every
    hostile form an early, uniform 400 instead of a route match: dot segments,
    also when encoded twice (``%252e%252e`` arrives as ``%2e%2e``), backslashes,
    NUL and other control characters, and overlong paths.
    """
    if len(path) > _MAX_PATH or (path and path[0] != "/") or "\\" in path or _CONTROL.search(path):
        return False
    if "/." in path and _DOT_SEGMENT.search(path):
        return False
    if "%" in path:
        for segment in path.split("/"):
            decoded = unquote(unquote(segment))
            if decoded in (".", "..") or any(c in decoded for c in "/\\\x00"):
                return False
    return True


@dataclass(frozen=True)
class ProxyConfig:
    """How the outside reaches a mount: the host's settings, validated once.

    Attributes:
        trusted: Networks whose ``X-Forwarded-*`` headers are honoured.
        trust_all: ``"*"`` was given: every client is a trusted proxy (for a
            host reachable only through its proxy, e.g. on a unix socket).
        public_url: The mount's external URL split into (scheme, host, prefix),
            or None.
        backend_url: Where the frontend reaches the backend when that is not
            the page's own origin and prefix ("" for the default).
        follow_server: Every proxy the ASGI server trusts (uvicorn's
            ``--forwarded-allow-ips``) is trusted here too, so a client address
            the server took from ``X-Forwarded-For`` came through a trusted proxy.
    """

    trusted: tuple[Network, ...] = ()
    trust_all: bool = False
    public_url: tuple[str, str, str] | None = None
    backend_url: str = ""
    follow_server: bool = False

    @property
    def plain(self) -> bool:
        """Whether only ``root_path`` matters (no proxies, no public URL)."""
        return not (self.trusted or self.trust_all or self.public_url)


def _parse_proxies(value: str | Iterable[str]) -> tuple[tuple[Network, ...], bool]:
    items = value.split(",") if isinstance(value, str) else list(value)
    networks: list[Network] = []
    trust_all = False
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item == "*":
            trust_all = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidConfigError(
                f"trusted proxy {item!r:.80} is not an IP address or CIDR"
            ) from None
    return tuple(networks), trust_all


def _parse_url(url: str, what: str, schemes: Iterable[str]) -> tuple[str, str, str]:
    """(scheme, host, path) of an absolute URL, validated for use in a page."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise InvalidConfigError(f"{what} is not a URL: {url!r:.80}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not _HOST.match(parts.netloc) or parts.query or parts.fragment:
        raise InvalidConfigError(
            f"{what} must be {'/'.join(schemes)}://host[:port][/path] without "
            f"user, query or fragment: {url!r:.80}"
        )
    del port
    return scheme, parts.netloc.lower(), normalize_mount_path(parts.path or "/", what=what)


def _parse_backend_url(url: str) -> str:
    if not url:
        return ""
    if url.startswith("/") and not url.startswith("//"):
        return normalize_mount_path(url, what="backend URL")
    scheme, host, path = _parse_url(url, "backend URL", ("http", "https", "ws", "wss"))
    return f"{scheme}://{host}{path}"


def _server_trusts_only_ours(
    server_proxies: str, trusted: tuple[Network, ...], trust_all: bool
) -> bool:
    """Whether every proxy in the server's list (uvicorn's syntax) is one of ours."""
    if trust_all:
        return True
    items = [item.strip() for item in server_proxies.split(",") if item.strip()]
    if not items or "*" in items:
        return False
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue  # a name, not an address (a unix socket): no TCP peer has it
        if not any(
            network.version == ours.version and network.subnet_of(ours)  # type: ignore[arg-type]
            for ours in trusted
        ):
            return False
    return True


def proxy_config(
    *,
    trusted_proxies: str | Iterable[str] = "",
    public_url: str = "",
    backend_url: str = "",
    server_proxies: str = SERVER_PROXIES_DEFAULT,
) -> ProxyConfig:
    """Validate a mount's proxy settings (:mod:`.settings` supplies their variables).

    Args:
        trusted_proxies: IPs and CIDRs (a list, or one comma-separated string)
            whose forwarded headers are honoured; ``"*"`` trusts every client.
            Default: none.
        public_url: The mount's full external URL (``https://example.com/tools``).
            Default: none. It names one mount:
            with several mounts in a process, give each its own.
        backend_url: The backend's URL (absolute, or a path on the page's origin).
        server_proxies: The proxies the ASGI server itself trusts (uvicorn's
            ``--forwarded-allow-ips``; :mod:`.settings` reads uvicorn's own
            ``FORWARDED_ALLOW_IPS``). Default: uvicorn's default, ``127.0.0.1``.

    Raises:
        InvalidPathError: If a value is malformed (loudly, at startup).
    """
    trusted, trust_all = _parse_proxies(trusted_proxies)
    public = _parse_url(public_url, "public URL", ("http", "https")) if public_url else None
    follow = _server_trusts_only_ours(server_proxies, trusted, trust_all)
    return ProxyConfig(trusted, trust_all, public, _parse_backend_url(backend_url), follow)


@dataclass(frozen=True)
class Location:
    """Where the browser sees a mount, for one request.

    Attributes:
        prefix: What the sentinel becomes: ``""`` or ``"/a/b"``.
        backend: The ``data-backend`` of the ``<meta>`` tag: ``""`` (the page's
            own origin and prefix, which the browser knows best) or a URL.
        origin: ``"https://example.com"`` when known from the public URL or a
            trusted ``X-Forwarded-Host``, else ``""``.
    """

    prefix: str
    backend: str = ""
    origin: str = ""


@functools.lru_cache(maxsize=64)
def _checked_root(root: str) -> str:
    # root_path is usually the host's configuration, but a host route with a
    # parameter (Mount("/t/{tenant}", ...)) puts request text there: it lands
    # in pages like any forwarded prefix, so it passes the same rule.
    # Memoized: a host has few roots, and the bound caps hostile ones.
    return normalize_mount_path(root or "/", what="root_path")


@functools.lru_cache(maxsize=64)
def _plain_location(root: str, scheme: str, backend_url: str) -> Location:
    prefix = _checked_root(prefix_of({"root_path": root}))
    return Location(prefix, _backend(ProxyConfig(backend_url=backend_url), scheme, "", prefix))


def _first(value: bytes, limit: int) -> str:
    # Proxies append to these lists: the first item is what the client used.
    # Only its first limit+1 bytes are looked at: a longer item is invalid
    # either way, and the rest of a hostile value is never decoded or split.
    return value[: limit + 1].decode("latin-1").split(",", 1)[0].strip()


def _is_proxy(address: str, config: ProxyConfig) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in config.trusted)


def _trusted(client: Any, forwarded_for: bytes | None, config: ProxyConfig) -> bool:
    """Whether the request's forwarded headers were set by a trusted proxy."""
    if config.trust_all:
        return True
    try:
        address, port = str(client[0]), client[1]
    except (TypeError, IndexError, KeyError):
        return False  # no client (unix socket, test client): not a known proxy
    if port == 0 and forwarded_for is not None:
        # The server took this address from X-Forwarded-For: the peer was one
        # of its trusted proxies, which are ours if follow_server; every hop
        # it skipped to reach this address must be ours too.
        return config.follow_server and _skipped_hops_trusted(address, forwarded_for, config)
    return _is_proxy(address, config)


def _skipped_hops_trusted(address: str, forwarded_for: bytes, config: ProxyConfig) -> bool:
    # Proxies append: walk from the right, as the server did, to its choice.
    hops = forwarded_for.decode("latin-1").rsplit(",", _MAX_HOPS)
    for hop in reversed(hops):
        hop = hop.strip()
        if hop.startswith("[") and hop.endswith("]"):
            hop = hop[1:-1]  # "[::1]" is how the server writes "::1"
        if hop == address:
            return True
        if not _is_proxy(hop, config):
            return False
    return False


def _backend(config: ProxyConfig, scheme: str, origin: str, prefix: str) -> str:
    backend = config.backend_url
    if not backend:
        return origin + prefix if origin else ""
    if backend.startswith("/"):
        return origin + backend
    if scheme == "https":
        # A page served over TLS may not use ws: or http: (mixed content).
        for insecure, secure in (("http://", "https://"), ("ws://", "wss://")):
            if backend.startswith(insecure):
                return secure + backend[len(insecure) :]
    return backend


def resolve_location(scope: Mapping[str, Any], config: ProxyConfig) -> Location:
    """Apply the prefix rule to one request (see the module's docstring).

    Args:
        scope: ASGI-scope-like data: ``root_path``, ``headers`` (lowercase
            names, as ASGI gives them), ``client``, ``scheme``.
        config: The mount's validated settings.

    Raises:
        InvalidPathError: If a trusted proxy sent a malformed forwarded header,
            or the ``root_path`` breaks the segment rule.
    """
    scheme = _SCHEMES.get(str(scope.get("scheme", "http")), "http")
    if config.public_url is not None:
        scheme, host, prefix = config.public_url
        origin = f"{scheme}://{host}"
        return Location(prefix, _backend(config, scheme, origin, prefix), origin)
    if config.plain:
        # The common case, memoized: a host has few roots.
        return _plain_location(str(scope.get("root_path", "")), scheme, config.backend_url)
    prefix = _checked_root(prefix_of(scope))
    forwarded: dict[bytes, bytes] = {}
    forwarded_for: list[bytes] = []
    for name, value in scope.get("headers", ()):
        if name in _FORWARDED and name not in forwarded and value.strip():
            forwarded[name] = value
        elif name == _FORWARDED_FOR:
            forwarded_for.append(value)
    if not forwarded or not _trusted(
        scope.get("client"), b", ".join(forwarded_for) if forwarded_for else None, config
    ):
        return Location(prefix, _backend(config, scheme, "", prefix))
    origin = ""
    if (value := forwarded.get(b"x-forwarded-prefix")) is not None:
        outer = normalize_mount_path(value.decode("latin-1").strip(), what="X-Forwarded-Prefix")
        prefix = normalize_mount_path(outer + prefix or "/", what="X-Forwarded-Prefix")
    if (value := forwarded.get(b"x-forwarded-proto")) is not None:
        proto = _first(value, _MAX_PROTO).lower()
        if proto not in _SCHEMES:
            raise InvalidPathError(f"X-Forwarded-Proto {proto!r:.20} is not http or https")
        scheme = _SCHEMES[proto]
    if (value := forwarded.get(b"x-forwarded-host")) is not None:
        host = _first(value, _MAX_HOST).lower()
        if len(host) > _MAX_HOST or not _HOST.match(host):
            raise InvalidPathError(f"X-Forwarded-Host {host!r:.80} is not a host[:port]")
        origin = f"{scheme}://{host}"
    return Location(prefix, _backend(config, scheme, origin, prefix), origin)
