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


def test_urls_assembled_at_run_time() -> None:
    js = (
        "a(`img`,{id:`c`,src:`/`+c.stem_rx_state_+`.png`}),b(`img`,{src:`/u/${c.n_rx_state_}.png`})"
    )
    found = [(f.kind, f.url) for f in scan_text("public/assets/a.js", js, assets=ASSETS)]
    assert found == [("run-time", "`/`+State.stem+`.png`"), ("run-time", "`/u/${State.n}.png`")]


def test_state_defaults_used_directly_but_not_through_asset_url() -> None:
    files = {
        "public/assets/root.js": '{"s.a":{late_rx_state_:`/late.png`,ok_rx_state_:`/ok.png`,'
        "n_rx_state_:`/`,ext_rx_state_:`https://x/a.png`}}",
        "public/assets/page.js": f"img({{id:`l`,src:c.late_rx_state_}}),"
        f"img({{src:((u,b)=>u)(c.ok_rx_state_,`{S}`)}}),t(c.n_rx_state_)",
    }
    found = scan_files(files, assets=frozenset({"/late.png", "/ok.png"}))
    assert [(f.kind, f.url, f.file) for f in found] == [
        ("state-default", "/late.png", "public/assets/page.js"),
        ("state-default", "/", "public/assets/page.js"),
    ]
    assert found[0].context == "state var 'late', #l"


@pytest.mark.slow
def test_showcase_reports_nothing(showcase_build: Built, cache_dir: object) -> None:
    result = run_cli("doctor", str(SHOWCASE), "--strict", "--json", cache_dir=cache_dir)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
    assert "nothing leaves the mount prefix" in result.stderr
