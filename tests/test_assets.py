"""The build-time asset rewrite and the run-time helper, without a build."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reflex_buildd.assets import asset_paths, rewrite_asset_refs, state_value_spans
from reflex_buildd.plugin import rewrite_static_dir
from reflex_buildd_client.serve.rewrite import SENTINEL

ASSETS = frozenset({"/logo.png", "/img/deep.png", "/app.js", "/bg.png", "/my%20logo.png"})
S = SENTINEL


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # String props in every quote style vite and React emit.
        ('src:"/logo.png"', f'src:"{S}/logo.png"'),
        ("src:'/logo.png'", f"src:'{S}/logo.png'"),
        ("src:`/logo.png`", f"src:`{S}/logo.png`"),
        ('<img src="/logo.png"/>', f'<img src="{S}/logo.png"/>'),
        # Escaped quotes inside an inline script's string.
        ('x="{\\"src\\":\\"/logo.png\\"}"', f'x="{{\\"src\\":\\"{S}/logo.png\\"}}"'),
        # Sub-directories, query strings and fragments.
        ('"/img/deep.png?v=2"', f'"{S}/img/deep.png?v=2"'),
        ('"/logo.png#top"', f'"{S}/logo.png#top"'),
        ('"/my%20logo.png"', f'"{S}/my%20logo.png"'),
        # CSS url() in every form, also inside a JS string (emotion styles).
        ("background:url(/bg.png)", f"background:url({S}/bg.png)"),
        ('background:url("/bg.png")', f'background:url("{S}/bg.png")'),
        ("background:url( '/bg.png' )", f"background:url( '{S}/bg.png' )"),
        (
            "{backgroundImage:`url(/bg.png) no-repeat`}",
            f"{{backgroundImage:`url({S}/bg.png) no-repeat`}}",
        ),
        ('@import "/app.js";', f'@import "{S}/app.js";'),
    ],
)
def test_rewrites_references_to_asset_files(before: str, after: str) -> None:
    result = rewrite_asset_refs(before, ASSETS)
    assert result.text == after
    assert len(result.rewritten) == 1


@pytest.mark.parametrize(
    "text",
    [
        f'src:"{S}/logo.png"',  # already prefixed (rx.asset, or a second pass)
        'src:"//cdn.example.com/logo.png"',  # protocol-relative
        'src:"https://example.com/logo.png"',  # external
        'src:"/logo.png.map"',  # not exactly an asset
        'src:"/logo"',  # a route named like an asset's stem
        'href:"/img"',  # a directory of assets
        'src:"logo.png"',  # relative: follows the page already
        'src:"/logo.png/x"',
        'x:"/logo.png and more"',  # not a whole string
        "to:`/logo.png`",  # a router link: the router adds the prefix
        '{id:"a",to:"/logo.png"}',
        "url(//cdn.example.com/bg.png)",
        "const r = /\\/logo.png/;",  # a regex literal, not a string
        # State defaults: the backend replaces them on hydration.
        '{"s":{avatar_rx_state_:`/logo.png`,n_rx_state_:1}}',
        '{"s":{pics_rx_state_:[`/logo.png`,{u:"/bg.png"}],n_rx_state_:1}}',
    ],
)
def test_leaves_everything_else_alone(text: str) -> None:
    result = rewrite_asset_refs(text, ASSETS)
    assert result.text == text
    assert result.rewritten == ()


def test_state_spans_end_where_the_value_ends() -> None:
    text = '{"s":{a_rx_state_:[`]`,"}"],b_rx_state_:"/x",c_rx_state_:3},z:"/logo.png"}'
    spans = state_value_spans(text)
    assert [(name, text[s:e]) for name, s, e in spans] == [
        ("a", '[`]`,"}"]'),
        ("b", '"/x"'),
        ("c", "3"),
    ]
    # A ternary reading a state var is not a default.
    assert state_value_spans("x?c.a_rx_state_:`/logo.png`") == []
    assert rewrite_asset_refs(text, ASSETS).rewritten == ("/logo.png",)


def test_many_references_keep_order_and_the_rest_of_the_text() -> None:
    text = 'a("/logo.png"),b(`/logo.png?v=1`),c(url(/bg.png)),d("/nope.png"),e("//x/logo.png")'
    result = rewrite_asset_refs(text, ASSETS)
    assert result.rewritten == ("/logo.png", "/logo.png?v=1", "/bg.png")
    assert result.text.replace(S, "") == text
    # Idempotent: a second pass finds nothing left to do.
    assert rewrite_asset_refs(result.text, ASSETS).text == result.text


def test_asset_paths_lists_files_with_their_url_form(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a b.png").write_bytes(b"x")
    (tmp_path / "logo.png").write_bytes(b"x")
    assert asset_paths(tmp_path) == {"/logo.png", "/img/a b.png", "/img/a%20b.png"}
    assert asset_paths(tmp_path / "missing") == frozenset()


def test_rewrite_static_dir_touches_only_text_files_with_references(tmp_path: Path) -> None:
    files = {
        "index.html": b'<img src="/logo.png">\r\n',
        "assets/x.js": b"a(`/logo.png`)",
        "extra.css": b".a{background:url(/bg.png)}",
        "logo.png": b'\x89PNG "/logo.png"',
        "data.json": b'{"u": "/logo.png"}',
        "plain.js": b"nothing here",
        "bad.js": b'\xff\xfe "/logo.png"',
    }
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    counts = rewrite_static_dir(tmp_path, ASSETS)
    assert counts == {"index.html": 1, "assets/x.js": 1, "extra.css": 1}
    # CRLF survives; binary and non-web files are untouched.
    assert (tmp_path / "index.html").read_bytes() == f'<img src="{S}/logo.png">\r\n'.encode()
    for rel in ("logo.png", "data.json", "plain.js", "bad.js"):
        assert (tmp_path / rel).read_bytes() == files[rel]


def _bun() -> str:
    bun = shutil.which("bun", path=str(Path(sys.executable).parent)) or shutil.which("bun")
    if bun is None:
        pytest.fail("bun not found: run scripts/setup.sh", pytrace=False)
    return bun


def test_asset_url_resolves_against_the_meta_tag_or_the_baked_prefix(tmp_path: Path) -> None:
    from reflex_buildd.app import asset_url

    cases = ["/avatar.png", "avatar.png", "//cdn/a.png", "https://x/a.png", "/admin/a.png", ""]
    exprs = [str(asset_url(value)) for value in cases]
    script = tmp_path / "check.js"
    script.write_text(
        "const exprs = () => [" + ",".join(exprs) + "];\n"
        "const out = {ssr: exprs()};\n"
        "globalThis.document = {querySelector: (s) => s.includes('reflex-buildd')"
        " ? {getAttribute: (n) => n === 'data-prefix' ? '/admin' : null} : null};\n"
        "out.browser = exprs();\n"
        "globalThis.document = {querySelector: () => null};\n"
        "out.plain = exprs();\n"
        "console.log(JSON.stringify(out));\n"
    )
    run = subprocess.run(
        [_bun(), str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    out = json.loads(run.stdout)
    # Outside a build, frontend_path is "" (this process's config).
    assert out["ssr"] == out["plain"] == cases
    assert out["browser"] == [
        "/admin/avatar.png",
        "avatar.png",
        "//cdn/a.png",
        "https://x/a.png",
        "/admin/a.png",
        "",
    ]


def test_asset_url_keeps_the_var_data_of_a_state_var() -> None:
    import reflex as rx

    from reflex_buildd.app import asset_url

    class AssetUrlState(rx.State):
        avatar: str = "/avatar.png"

    var = asset_url(AssetUrlState.avatar)
    assert "avatar_rx_state_" in str(var)
    assert var._get_all_var_data() == AssetUrlState.avatar._get_all_var_data()
