"""The one prefix rule (prefix.py), property-tested without a server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflex_buildd_client.errors import InvalidConfigError, InvalidPathError
from reflex_buildd_client.serve.prefix import (
    Location,
    is_safe_path,
    normalize_mount_path,
    proxy_config,
    resolve_location,
)
from reflex_buildd_client.settings import Settings

SEGMENT_CHARS = "abcXYZ019._~!$()*+,;=:@-"
segments = st.text(alphabet=SEGMENT_CHARS, min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
prefixes = st.lists(segments, max_size=4).map(lambda parts: "".join("/" + p for p in parts))
proxy_ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.9", "::1", "127.0.0.1"])
client_ips = st.sampled_from(
    ["10.0.0.1", "10.9.9.9", "192.168.1.9", "::1", "2001:db8::5", "8.8.8.8"]
)
anything = st.one_of(
    st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
)
hosts = st.sampled_from(
    ["example.com", "example.com:8443", "127.0.0.1:8000", "[::1]:9000", "a-b.c.d"]
)

# Forwarded-header strategies: mostly plausible, some hostile.
forwarded_prefix = st.one_of(prefixes.map(lambda p: p or "/"), anything)
forwarded_proto = st.one_of(
    st.sampled_from(["http", "https", "HTTPS", "wss", "https, http"]), anything
)
forwarded_host = st.one_of(hosts, anything)

CONFIG = proxy_config(trusted_proxies="10.0.0.0/24, ::1")


def scope(
    root: str, client: str | None, headers: dict[str, str], scheme: str = "http"
) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "root_path": root,
        "client": (client, 12345) if client else None,
        "headers": [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers.items()],
    }


def is_prefix(value: str) -> bool:
    return value == "" or normalize_mount_path(value) == value


def trusted(client: str) -> bool:
    return client.startswith("10.0.0.") or client == "::1"


@settings(max_examples=300, deadline=None)
@given(
    root=prefixes,
    client=client_ips,
    fwd_prefix=st.none() | forwarded_prefix,
    proto=st.none() | forwarded_proto,
    host=st.none() | forwarded_host,
)
def test_the_rule(
    root: str, client: str, fwd_prefix: str | None, proto: str | None, host: str | None
) -> None:
    headers = {
        name: value
        for name, value in (
            ("x-forwarded-prefix", fwd_prefix),
            ("x-forwarded-proto", proto),
            ("x-forwarded-host", host),
        )
        if value is not None
    }
    try:
        location = resolve_location(scope(root, client, headers), CONFIG)
    except InvalidPathError:
        # Only a trusted proxy's malformed header may be refused.
        assert trusted(client)
        return
    assert is_prefix(location.prefix)
    if not trusted(client):
        # Untrusted clients' headers change nothing.
        assert location == Location(root, "", "")
        return
    outer = fwd_prefix.strip().rstrip("/") if fwd_prefix and fwd_prefix.strip() else ""
    # Forwarded prefix in front of root_path, never doubled, never dropped.
    assert location.prefix == outer + root
    if host is not None and host.strip():
        scheme = (
            "https" if (proto or "").split(",")[0].strip().lower() in ("https", "wss") else "http"
        )
        expected_host = host.split(",")[0].strip().lower()
        assert location.origin == f"{scheme}://{expected_host}"
        assert location.backend == location.origin + location.prefix
    else:
        assert location.origin == "" and location.backend == ""


@settings(max_examples=200, deadline=None)
@given(
    public_path=prefixes,
    root=prefixes,
    client=client_ips,
    fwd_prefix=forwarded_prefix,
    host=forwarded_host,
)
def test_public_url_overrides_everything(
    public_path: str, root: str, client: str, fwd_prefix: str, host: str
) -> None:
    config = proxy_config(
        trusted_proxies="10.0.0.0/24", public_url=f"https://Public.example{public_path}"
    )
    headers = {
        "x-forwarded-prefix": fwd_prefix,
        "x-forwarded-host": host,
        "x-forwarded-proto": "http",
    }
    location = resolve_location(scope(root, client, headers), config)
    assert location == Location(
        public_path, "https://public.example" + public_path, "https://public.example"
    )


@given(root=prefixes)
def test_no_proxies_configured_means_root_path_only(root: str) -> None:
    headers = {"x-forwarded-prefix": "/evil", "x-forwarded-host": "evil.com"}
    for client in ("127.0.0.1", "10.0.0.1", None):
        assert resolve_location(scope(root + "/", client, headers), proxy_config()) == Location(
            root
        )


def test_backend_url_forms() -> None:
    def resolve(backend: str, headers: dict[str, str], scheme: str = "http") -> str:
        config = proxy_config(trusted_proxies="10.0.0.1", backend_url=backend)
        return resolve_location(scope("/admin", "10.0.0.1", headers, scheme), config).backend

    tls = {"x-forwarded-proto": "https"}
    # An explicit backend is kept, made secure when the page is served over TLS.
    assert resolve("http://api.local:8000/x/", {}) == "http://api.local:8000/x"
    assert resolve("http://api.local:8000/x", tls) == "https://api.local:8000/x"
    assert resolve("ws://api.local/x", tls) == "wss://api.local/x"
    assert resolve("ws://api.local/x", {}, scheme="https") == "wss://api.local/x"
    # A path is on the page's origin (the public one when a proxy tells it).
    assert resolve("/api", {}) == "/api"
    assert resolve("/api", {**tls, "x-forwarded-host": "example.com"}) == "https://example.com/api"
    # The default: the page's origin and prefix, explicit when the proxy names the host.
    assert resolve("", tls) == ""
    assert resolve("", {**tls, "x-forwarded-host": "example.com"}) == "https://example.com/admin"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trusted_proxies": "10.0.0.1, not-an-ip"},
        {"trusted_proxies": ["10.0.0.0/33"]},
        {"public_url": "ftp://example.com/x"},
        {"public_url": "https://user@example.com/x"},
        {"public_url": "https://example.com/a/../b"},
        {"public_url": "https://example.com/x?q=1"},
        {"public_url": "https://example.com:99999/"},
        {"public_url": "/just/a/path"},
        {"backend_url": "javascript:alert(1)"},
        {"backend_url": "//evil.com/x"},
        {"backend_url": 'https://a.com/"><script>'},
    ],
)
def test_bad_settings_fail_loudly(kwargs: dict[str, Any]) -> None:
    # A malformed setting is an InvalidConfigError; a bad path inside a URL is
    # an InvalidPathError; both are ValueErrors for callers that do not care.
    with pytest.raises((InvalidConfigError, InvalidPathError)):
        proxy_config(**kwargs)


def test_settings_from_environment() -> None:
    env = {
        "REFLEX_BUILDD_TRUSTED_PROXIES": "10.0.0.0/8,*",
        "REFLEX_BUILDD_PUBLIC_URL": "http://h/x",
    }
    config = Settings.load(environ=env).proxy
    assert config.trust_all and config.public_url == ("http", "h", "/x")
    # An argument wins over its variable.
    assert Settings.load(trusted_proxies=[], public_url="", environ=env).proxy.plain


def test_trust_all_and_missing_client() -> None:
    headers = {"x-forwarded-prefix": "/ext"}
    assert resolve_location(scope("/a", None, headers), CONFIG).prefix == "/a"
    everyone = proxy_config(trusted_proxies="*")
    assert resolve_location(scope("/a", "8.8.8.8", headers), everyone).prefix == "/ext/a"


@given(root=anything)
def test_hostile_root_path_never_becomes_a_prefix(root: str) -> None:
    """A host route with a parameter puts request text in root_path: same rule."""
    try:
        location = resolve_location(scope(root, None, {}), proxy_config())
    except InvalidPathError:
        return
    assert is_prefix(location.prefix)


@given(path=st.text(max_size=60))
def test_safe_paths_have_no_dot_segments_or_escapes(path: str) -> None:
    if not is_safe_path(path):
        return
    assert "\\" not in path and "\x00" not in path
    assert not any(ord(c) < 0x20 for c in path)
    from urllib.parse import unquote

    for segment in path.split("/"):
        assert unquote(unquote(segment)) not in (".", "..")


@pytest.mark.parametrize("path", ["/", "/admin", "/a/b/c", "/x:y@z", "/v1.2"])
def test_mount_paths(path: str) -> None:
    assert normalize_mount_path(path) == ("" if path == "/" else path)
    assert normalize_mount_path(path + "/") == normalize_mount_path(path)


@pytest.mark.parametrize(
    "path", ["", "admin", "/a//b", "/a/./b", "/..", "/a b", "/a%20b", "/a'b", "/a&b", '/a"', "/<x>"]
)
def test_bad_mount_paths(path: str) -> None:
    with pytest.raises(InvalidPathError):
        normalize_mount_path(path)


# -- who sent it: the server's own proxy handling (issue 11, defect 9) ---------

LOCAL = proxy_config(trusted_proxies="127.0.0.1")  # uvicorn's default: 127.0.0.1


def rewritten(root: str, client: str, xff: str, port: int, **headers: str) -> dict[str, Any]:
    """A scope as uvicorn hands it on: client taken from X-Forwarded-For (port 0)."""
    found = scope(root, client, {"x-forwarded-for": xff, **headers})
    found["client"] = (client, port)
    return found


def test_nginx_on_localhost_with_uvicorns_defaults() -> None:
    """nginx on 127.0.0.1 adds X-Forwarded-For; uvicorn puts the browser's address in client."""
    assert LOCAL.follow_server
    hop = rewritten("/admin", "203.0.113.7", "203.0.113.7", 0, **{"x-forwarded-prefix": "/ext"})
    assert resolve_location(hop, LOCAL).prefix == "/ext/admin"
    # What the browser said is to the left; the proxy's own entry is what counts.
    hop = rewritten(
        "/admin", "203.0.113.7", "10.9.9.9, 203.0.113.7", 0, **{"x-forwarded-prefix": "/ext"}
    )
    assert resolve_location(hop, LOCAL).prefix == "/ext/admin"


@pytest.mark.parametrize(
    ("config", "client", "xff", "port"),
    [
        # A client reaching the server directly keeps its own port: not rewritten.
        (LOCAL, "203.0.113.7", "203.0.113.7", 41234),
        (LOCAL, "203.0.113.7", "127.0.0.1", 41234),
        # The server skipped a hop the mount does not trust.
        (LOCAL, "203.0.113.7", "203.0.113.7, 8.8.8.8", 0),
        # The chosen address is not in the header at all.
        (LOCAL, "203.0.113.7", "198.51.100.1", 0),
        # The server trusts more proxies than the mount: it cannot tell who the peer was.
        (
            proxy_config(trusted_proxies="127.0.0.1", server_proxies="*"),
            "1.2.3.4",
            "1.2.3.4",
            0,
        ),
        (
            Settings.load(
                environ={
                    "REFLEX_BUILDD_TRUSTED_PROXIES": "10.0.0.1",
                    "FORWARDED_ALLOW_IPS": "10.0.0.0/8",
                },
                cache_dir="/tmp",
            ).proxy,
            "1.2.3.4",
            "1.2.3.4",
            0,
        ),
        # More hops than are followed.
        (LOCAL, "203.0.113.7", "203.0.113.7" + ", 127.0.0.1" * 20, 0),
    ],
)
def test_forwarded_headers_ignored_unless_a_trusted_proxy_set_them(
    config: Any, client: str, xff: str, port: int
) -> None:
    hop = rewritten("/admin", client, xff, port, **{"x-forwarded-prefix": "/evil"})
    assert resolve_location(hop, config).prefix == "/admin"


@pytest.mark.parametrize(
    ("trusted", "server", "follow"),
    [
        ("127.0.0.1", None, True),
        ("127.0.0.0/8, ::1", "127.0.0.1, ::1", True),
        ("10.0.0.0/8", "10.1.0.0/16", True),
        ("10.0.0.1", "10.0.0.0/8", False),
        ("127.0.0.1", "*", False),
        ("*", "*", True),
        ("", None, False),
        ("::1", "127.0.0.1", False),
        ("127.0.0.1", "127.0.0.1, unix-socket-name", True),
    ],
)
def test_follow_server(trusted: str, server: str | None, follow: bool) -> None:
    config = (
        proxy_config(trusted_proxies=trusted, server_proxies=server)
        if server is not None
        else proxy_config(trusted_proxies=trusted)
    )
    assert config.follow_server is follow


def test_server_proxies_from_uvicorns_variable() -> None:
    env = {"REFLEX_BUILDD_TRUSTED_PROXIES": "127.0.0.1", "FORWARDED_ALLOW_IPS": "*"}
    assert not Settings.load(environ=env, cache_dir="/tmp").proxy.follow_server
    assert Settings.load(environ={**env, "FORWARDED_ALLOW_IPS": "127.0.0.1"}).proxy.follow_server
    # Unset: uvicorn's default, 127.0.0.1.
    del env["FORWARDED_ALLOW_IPS"]
    assert Settings.load(environ=env).proxy.follow_server
