"""doctor: what still leaves the prefix, named without false alarms."""

from __future__ import annotations

import json

import pytest

from conftest import SHOWCASE, Built, run_cli
from reflex_buildd.doctor import scan_files, scan_text
from reflex_buildd_client.serve.rewrite import SENTINEL

ASSETS = frozenset({"/logo.png", "/bg.png"})
S = SENTINEL


def _kinds(rel: str, text: str, routes: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    return [(f.kind, f.url) for f in scan_text(rel, text, assets=ASSETS, routes=routes)]


def test_clean_output_has_no_findings() -> None:
    js = (
        f"a(`img`,{{src:`{S}/logo.png`}}),to:`/about`,to:`/docs.html`,u=`/_upload`,p=`/ping`,"
        "e=`/_event/`,r=/^\\/post\\/[^/]+$/,n=`/socket.io`,q=`/engine.io`,m=`//cdn.x/a.js`,"
        "h=`https://x.test/a.png`,k=`/about`,o=`/`,l=`/post/[pid]`,w=`favicon.ico`,"
        f"c=`url({S}/bg.png)`,d=`/logo.png`"
    )
    assert _kinds("public/assets/a.js", js) == []
    html = (
        f'<link href="{S}/assets/x.css" rel="stylesheet"><a href="{S}/about">a</a>'
        '<meta content="favicon.ico" property="og:image"><a href="https://x.test/">x</a>'
        '<a href="/about">about</a>'
    )
    assert _kinds("public/index.html", html, routes=frozenset({"about"})) == []


def test_names_file_like_urls_outside_assets() -> None:
    js = "a(`img`,{id:`pic`,src:`/missing.png?v=1`});f.displayName=`Component(index)`"
    [finding] = scan_text("public/assets/a.js", js, assets=ASSETS)
    assert (finding.kind, finding.url) == ("not-an-asset", "/missing.png?v=1")
    assert finding.context == "#pic in Component(index)"
    assert "assets/" in finding.advice


def test_html_attributes_css_urls_and_srcset() -> None:
    html = (
        '<img id="x" srcset="/a.png 1x, /b.png 2x"><a id="y" href="/host-page">h</a>'
        "<style>.a{background:url(/nope)}</style>"
    )
    found = {
        (f.kind, f.url, f.context) for f in scan_text("public/index.html", html, assets=ASSETS)
    }
    assert found == {
        ("html-attr", "/a.png", "<img id=x>"),
        ("html-attr", "/b.png", "<img id=x>"),
        ("html-attr", "/host-page", "<a id=y>"),
        ("css-url", "/nope", "<style>"),
    }
    assert _kinds("public/x.css", ".a{background:url('/nope.png')}") == [("css-url", "/nope.png")]


def test_markup_in_strings_is_named_pages_included() -> None:
    # rx.html compiles to a string of markup: its anchors are no router links.
    js = (
        'a({id:`raw`,dangerouslySetInnerHTML:{__html:"<a href=\\"/about\\">a</a>'
        '<img src=\\"/gone.png\\"><img src=\\"' + S + '/logo.png\\">'
        '<a href=\\"//cdn.x/a\\">c</a><a href=\\"/_upload/f.txt\\">u</a>"}})'
    )
    found = [(f.kind, f.url) for f in scan_text("public/assets/a.js", js, assets=ASSETS)]
    assert found == [("html-string", "/about"), ("html-string", "/gone.png")]
    assert "HTML string" in scan_text("public/assets/a.js", js, assets=ASSETS)[0].advice


def test_urls_assembled_at_run_time_are_left_to_the_run_time_rule() -> None:
    js = (
        "a(`img`,{id:`c`,src:`/`+c.stem_rx_state_+`.png`}),b(`img`,{src:`/u/${c.n_rx_state_}.png`})"
    )
    assert scan_text("public/assets/a.js", js, assets=ASSETS) == []


def test_state_defaults_that_no_rule_fixes() -> None:
    # Files, pages and uploads of the app follow the prefix at run time, and a
    # router link's target gets it from React Router: none is a finding.
    files = {
        "public/assets/root.js": '{"s.a":{late_rx_state_:`/late.png`,gone_rx_state_:`/gone.png`,'
        "n_rx_state_:`/`,up_rx_state_:`/_upload/a.txt`,nav_rx_state_:`/host-page`,"
        "ext_rx_state_:`https://x/a.png`}}",
        "public/assets/page.js": "img({id:`l`,src:c.late_rx_state_}),img({id:`g`,src:c.gone_rx_state_}),"
        "t(c.n_rx_state_),img({src:c.up_rx_state_}),l({to:c.nav_rx_state_}),img({src:c.ext_rx_state_})",
    }
    found = scan_files(files, assets=frozenset({"/late.png"}), routes=frozenset({"index"}))
    assert [(f.kind, f.url, f.file) for f in found] == [
        ("state-default", "/gone.png", "public/assets/page.js"),
    ]
    assert found[0].context == "state var 'gone', #g"
    assert "host's root" in found[0].advice


@pytest.mark.slow
def test_showcase_reports_nothing(showcase_build: Built, cache_dir: object) -> None:
    result = run_cli("doctor", str(SHOWCASE), "--strict", "--json", cache_dir=cache_dir)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
    assert "nothing leaves the mount prefix" in result.stderr
