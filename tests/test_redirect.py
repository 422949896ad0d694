"""The bare-path redirect (``/admin`` -> ``/admin/``) follows the prefix rule (issue 11, defect 4).

Pure: :func:`slash_redirect` on scopes as Starlette's router hands them to the
route. Over real HTTP: ``test_static_http.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflex_buildd_client.serve.prefix import proxy_config
from reflex_buildd_client.serve.redirect import slash_redirect

PROXY = "10.0.0.1"
CONFIG = proxy_config(trusted_proxies=PROXY)


def scope(
    headers: dict[str, str], *, client: str = "8.8.8.8", root: str = "", query: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "root_path": root,
        "path": root + "/admin",
        "query_string": query,
        "client": (client, 40000),
        "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
    }


def location(found: dict[str, Any], config: Any = CONFIG) -> bytes:
    response = slash_redirect(found, config, "/admin")
    assert response.status == 307, response
    return dict(response.headers)[b"location"]


HOSTILE = {
    "host": "evil.com",
    "x-forwarded-host": "evil.com",
    "x-forwarded-proto": "https",
    "x-forwarded-prefix": "/ext/evil",
}


def test_host_header_is_never_the_target() -> None:
    assert location(scope(HOSTILE)) == b"/admin/"


def test_trusted_proxy_prefix() -> None:
    headers = {"host": "127.0.0.1", "x-forwarded-prefix": "/ext/tools"}
    assert location(scope(headers, client=PROXY)) == b"/ext/tools/admin/"
    # Even a trusted proxy's X-Forwarded-Host stays out: a path is right anywhere.
    assert location(scope({**HOSTILE}, client=PROXY)) == b"/ext/evil/admin/"
    # Empty segments are dropped by the segment rule: never "//host".
    assert (
        location(scope({"x-forwarded-prefix": "//evil.com"}, client=PROXY)) == b"/evil.com/admin/"
    )


def test_public_url_and_root_path() -> None:
    public = proxy_config(public_url="https://example.com/tools/admin")
    assert location(scope(HOSTILE), public) == b"/tools/admin/"
    assert location(scope(HOSTILE, root="/outer")) == b"/outer/admin/"


def test_query_is_kept_when_it_is_plain() -> None:
    assert location(scope({}, query=b"a=1&b=%20")) == b"/admin/?a=1&b=%20"
    assert location(scope({}, query=b"a=\xff\r\nSet-Cookie: x")) == b"/admin/"


def test_malformed_header_from_a_trusted_proxy_is_400() -> None:
    response = slash_redirect(
        scope({"x-forwarded-prefix": "/a/../evil"}, client=PROXY), CONFIG, "/admin"
    )
    assert response.status == 400 and b"evil" not in response.body


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["host", "x-forwarded-host", "x-forwarded-prefix", "x-forwarded-proto"]),
        st.text(max_size=40).map(lambda t: t.encode("utf-8").decode("latin-1")),
    ),
    client=st.sampled_from([PROXY, "8.8.8.8"]),
    root=st.sampled_from(["", "/outer", "/a/b"]),
)
def test_target_is_always_a_path_under_the_prefix_rule(
    values: dict[str, str], client: str, root: str
) -> None:
    response = slash_redirect(scope(values, client=client, root=root), CONFIG, "/admin")
    if response.status == 400:
        assert client == PROXY  # only a trusted proxy's header can be refused
        return
    target = dict(response.headers)[b"location"]
    # A path: one leading slash (never "//host"), no scheme, ends with the mount.
    assert target.startswith(b"/") and not target.startswith(b"//") and b":" not in target[:8]
    assert target.endswith(root.encode() + b"/admin/")
    if client != PROXY:
        assert target == root.encode() + b"/admin/"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_asgi_app(method: str) -> None:
    from reflex_buildd_client.serve.redirect import SlashRedirect

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = SlashRedirect("/admin", CONFIG)
    # Driven by hand: nothing in it waits, and asyncio.run() refuses to run
    # where the session browser (Playwright's sync API) keeps a loop running.
    with pytest.raises(StopIteration):
        app({**scope(HOSTILE), "method": method}, None, send).send(None)  # type: ignore[arg-type]
    assert sent[0]["status"] == 307 and (b"location", b"/admin/") in sent[0]["headers"]
