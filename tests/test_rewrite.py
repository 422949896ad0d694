"""No prefix or URL can inject markup (rewrite.py with prefix.py), property-tested.

Header-derived values land in pages twice: in the ``<meta>`` tag (escaped) and
wherever the build put the sentinel (attributes, inline scripts, JS strings,
CSS ``url()``), where the prefix rule's character set is the defence.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflex_buildd_client.errors import InvalidPathError
from reflex_buildd_client.serve.prefix import proxy_config, resolve_location
from reflex_buildd_client.serve.rewrite import (
    SENTINEL,
    icon_link,
    inject_meta,
    meta_tag,
    replace_sentinel,
)

# The places the sentinel sits in a real Reflex 0.10.1 build (index.html, the
# route manifest, CSS url()s, rx.asset strings), plus a
# single-quoted attribute and a single-quoted JS string for good measure.
DOCUMENT = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>
<link rel="modulepreload" href="{SENTINEL}/assets/manifest-1.js"/>
<link rel='stylesheet' href='{SENTINEL}/app.css'/>
<style>.b{{background:url({SENTINEL}/bg.png)}}</style>
</head><body><a href="{SENTINEL}/about" data-discover="true">About</a>
<img src="{SENTINEL}/logo.png?v=1"/>
<script>window.__reactRouterContext = {{"basename":"{SENTINEL}/","x":'{SENTINEL}/y'}};</script>
<script type="module" async="">import "{SENTINEL}/assets/manifest-1.js";</script>
</body></html>""".encode()


class Structure(HTMLParser):
    """Tags, attribute names and the text of scripts and styles, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[tuple[str, ...]] = []
        self.attrs: list[dict[str, str | None]] = []
        self.raw_text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append(("start", tag, *sorted(name for name, _ in attrs)))
        self.attrs.append(dict(attrs))
        self._in = tag if tag in ("script", "style") else None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(("end", tag))
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw_text.append(data)

    def handle_comment(self, data: str) -> None:
        self.shape.append(("comment",))


def parse(document: bytes) -> Structure:
    parser = Structure()
    parser.feed(document.decode("utf-8"))
    parser.close()
    return parser


def page(prefix: str, backend: str) -> bytes:
    head = meta_tag(prefix, backend) + icon_link(prefix)
    return inject_meta(replace_sentinel(DOCUMENT, prefix), head)


BASELINE = parse(page("/x", "http://h/x"))

anything = st.one_of(
    st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
)
hostile = st.sampled_from(
    [
        '"><script>alert(1)</script>',
        "'><img src=x onerror=alert(1)>",
        "</script><script>x()</script>",
        "javascript:alert(1)",
        "/a&quot;b",
        "/a\\u0022b",
        "/a`${x}`",
        "/a\nb",
        "/<!--",
    ]
)
header_values = st.one_of(anything, hostile, hostile.map(lambda h: "/" + h))


@settings(max_examples=400, deadline=None)
@given(prefix=header_values, host=header_values, proto=header_values, backend_path=st.booleans())
def test_no_forwarded_value_can_inject_markup(
    prefix: str, host: str, proto: str, backend_path: bool
) -> None:
    config = proxy_config(trusted_proxies="*", backend_url="/api" if backend_path else "")
    scope: dict[str, Any] = {
        "root_path": "/admin",
        "client": ("10.0.0.1", 1),
        "headers": [
            (b"x-forwarded-prefix", prefix.encode("utf-8")),
            (b"x-forwarded-host", host.encode("utf-8")),
            (b"x-forwarded-proto", proto.encode("utf-8")),
        ],
    }
    try:
        location = resolve_location(scope, config)
    except InvalidPathError:
        return  # the host answers 400: nothing reaches a page
    result = parse(page(location.prefix, location.backend))
    assert result.shape == BASELINE.shape
    meta = result.attrs[
        result.shape.index(("start", "meta", "data-backend", "data-prefix", "name"))
    ]
    assert (meta["data-prefix"], meta["data-backend"]) == (location.prefix, location.backend)
    # Inside scripts and styles (no entity decoding there) nothing can end a
    # string or the element.
    for text in result.raw_text:
        assert "</" not in text
    for ch in "\"'`<>\\&\r\n\t ":
        assert ch not in location.prefix


@settings(max_examples=300, deadline=None)
@given(prefix=anything, backend=anything)
def test_meta_tag_escapes_any_text(prefix: str, backend: str) -> None:
    """Even unvalidated values cannot leave their attributes."""
    result = parse(b"<html><head>" + meta_tag(prefix, backend) + b"</head></html>")
    assert result.shape == [
        ("start", "html"),
        ("start", "head"),
        ("start", "meta", "data-backend", "data-prefix", "name"),
        ("end", "head"),
        ("end", "html"),
    ]
    meta = result.attrs[2]
    assert (meta["data-prefix"], meta["data-backend"]) == (prefix, backend)


@pytest.mark.parametrize("prefix", ['/a"b', "/a'b", "/a<b", "a", "/a/", "/a//b", "/a/../b"])
def test_replace_sentinel_refuses_unsafe_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidPathError):
        replace_sentinel(DOCUMENT, prefix)


def test_replace_sentinel_root_and_nested() -> None:
    assert b'href="/about"' in replace_sentinel(DOCUMENT, "")
    assert b'href="/a/b/about"' in replace_sentinel(DOCUMENT, "/a/b")
    assert SENTINEL.encode() not in replace_sentinel(DOCUMENT, "/a/b")


def test_inject_meta_goes_first_in_head() -> None:
    tag = meta_tag("/p", "")
    result = inject_meta(b'<html><HEAD data-x="1"><script src="a.js"></script></HEAD></html>', tag)
    assert result.index(tag) < result.index(b"<script")
    assert inject_meta(b"<p>no head</p>", tag).startswith(tag)
