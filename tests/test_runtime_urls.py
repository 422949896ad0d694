"""The run-time URL rule (reflex_buildd.runtime_urls), executed in a real JS runtime (bun).

The browser tests (test_runtime_urls_browser.py) show it in a mounted app;
these pin the rule itself, case by case: what follows the prefix, what stays,
where the prefix comes from (the tag, the baked sentinel without a document),
a backend on another origin, and that nothing is rewritten twice.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reflex_buildd.plugin import PatchError, patch_state_js, patch_vite_config
from reflex_buildd.runtime_urls import JSX_MODULE, route_pattern, urls_module
from reflex_buildd_client.inputs.runtime import resolve_runtime
from reflex_buildd_client.serve.rewrite import SENTINEL
from reflex_buildd_client.settings import Settings

FILES = ["/logo.png", "/img/a b.png", "/img/a%20b.png", "/report.csv"]
ROUTES = ["index", "other", "post/[pid]", "docs/[[...splat]]", "opt/[[x]]", "404"]

HARNESS = r"""
const env = { UPLOAD: "http://localhost:8000/_upload" };
const meta = JSON.parse(process.argv[2]);
if (meta !== "no-document") {
  globalThis.document = {
    querySelector: () => meta && { getAttribute: (name) => meta[name] ?? null },
  };
}
%URLS%
const emotionJsx = (...args) => args;
%JSX%
const cases = JSON.parse(process.argv[3]);
const out = cases.map(([fn, arg]) => {
  if (fn === "jsx") return jsx(...arg);
  if (fn === "ownProps") {
    const fixed = ownProps(arg);
    return { value: fixed, same: fixed === arg };
  }
  return { ownUrl, ownScript, active }[fn](arg);
});
console.log(JSON.stringify(out));
"""


def _run(
    meta: object, cases: list[tuple[str, Any]], tmp_path: Path, baked: str = SENTINEL
) -> list[Any]:
    urls = urls_module(FILES, ROUTES, baked).replace('import env from "$/env.json";', "")
    jsx = "\n".join(
        line for line in JSX_MODULE.splitlines() if not line.startswith(("import", "export *"))
    )
    script = tmp_path / "harness.mjs"
    script.write_text(
        HARNESS.replace("%URLS%", urls.replace("export const", "const")).replace(
            "%JSX%", jsx.replace("export function", "function")
        )
    )
    bun = resolve_runtime(settings=Settings.load())
    if bun.name != "bun":  # pragma: no cover - the setup script installs bun
        pytest.fail("these checks run the rule with bun; scripts/setup.sh installs it")
    result = subprocess.run(
        [str(bun.executable), str(script), json.dumps(meta), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


ADMIN = {"data-prefix": "/admin", "data-backend": ""}

# value -> expected under /admin
URL_CASES = [
    ("/logo.png", "/admin/logo.png"),
    ("/logo.png?v=2#top", "/admin/logo.png?v=2#top"),
    ("/img/a b.png", "/admin/img/a b.png"),
    ("/img/a%20b.png", "/admin/img/a%20b.png"),
    ("/", "/admin/"),
    ("/other", "/admin/other"),
    ("/Other/", "/admin/Other/"),  # React Router: case-insensitive, trailing slash
    ("/other?tab=2", "/admin/other?tab=2"),
    ("/post/7", "/admin/post/7"),
    ("/docs", "/admin/docs"),
    ("/docs/a/b", "/admin/docs/a/b"),
    ("/opt", "/admin/opt"),
    ("/opt/1", "/admin/opt/1"),
    ("/_upload/a.txt", "/admin/_upload/a.txt"),
    ("/_upload", "/admin/_upload"),
    # Never: host routes, near misses, other origins, relative, already prefixed.
    ("/health", "/health"),
    ("/logo", "/logo"),
    ("/logo.png.map", "/logo.png.map"),
    ("/LOGO.PNG", "/LOGO.PNG"),
    ("/missing.png", "/missing.png"),
    ("/post", "/post"),
    ("/post/7/edit", "/post/7/edit"),
    ("/_uploads/a.txt", "/_uploads/a.txt"),
    ("//cdn.example/logo.png", "//cdn.example/logo.png"),
    ("https://example.invalid/logo.png", "https://example.invalid/logo.png"),
    ("data:image/png;base64,AAAA", "data:image/png;base64,AAAA"),
    ("logo.png", "logo.png"),
    ("/admin/logo.png", "/admin/logo.png"),
    ("/admin", "/admin"),
    ("", ""),
    (None, None),
    (7, 7),
]


def test_own_files_routes_and_uploads_follow_the_prefix(tmp_path: Path) -> None:
    got = _run(ADMIN, [("ownUrl", value) for value, _ in URL_CASES], tmp_path)
    assert dict(zip([repr(v) for v, _ in URL_CASES], got, strict=True)) == {
        repr(v): want for v, want in URL_CASES
    }


def test_props_srcset_and_css_urls(tmp_path: Path) -> None:
    cases: list[tuple[str, Any]] = [
        ("ownProps", {"src": "/logo.png", "alt": "/logo.png"}),
        ("ownProps", {"src": "/health", "id": "x"}),
        ("ownProps", {"to": "/other", "href": "https://example.invalid/"}),
        ("ownProps", {"srcSet": "/logo.png 1x, /missing.png 2x,https://x.test/logo.png 3x"}),
        (
            "ownProps",
            {"poster": "/logo.png", "action": "/other", "formAction": "/", "data": "/report.csv"},
        ),
        (
            "ownProps",
            {
                "css": {
                    "backgroundImage": "url(/logo.png), url('/health')",
                    "&:hover": {"background": 'url("/report.csv?x=1") no-repeat'},
                    "width": 10,
                },
                "style": {"cursor": "url(/missing.png), auto"},
            },
        ),
        ("ownProps", {"css": {"color": "red", "&:hover": {"color": "blue"}}}),
    ]
    got = _run(ADMIN, cases, tmp_path)
    assert got[0] == {"value": {"src": "/admin/logo.png", "alt": "/logo.png"}, "same": False}
    assert got[1]["same"] and got[2]["same"]
    assert got[3]["value"]["srcSet"] == (
        "/admin/logo.png 1x, /missing.png 2x,https://x.test/logo.png 3x"
    )
    assert got[4]["value"] == {
        "poster": "/admin/logo.png",
        "action": "/admin/other",
        "formAction": "/admin/",
        "data": "/admin/report.csv",
    }
    assert got[5]["value"]["css"] == {
        "backgroundImage": "url(/admin/logo.png), url('/health')",
        "&:hover": {"background": 'url("/admin/report.csv?x=1") no-repeat'},
        "width": 10,
    }
    assert got[5]["value"]["style"] == {"cursor": "url(/missing.png), auto"}
    assert got[6]["same"]


def test_script_literals_and_the_jsx_wrapper(tmp_path: Path) -> None:
    cases: list[tuple[str, Any]] = [
        ("ownScript", "window.location.href = '/other'"),
        ("ownScript", 'window.open("/logo.png?dl=1"); location.assign("/health")'),
        ("ownScript", "location.href = `/post/${id}`; x = `/post/7`"),
        ("ownScript", "document.title = '/admin/other' + '//cdn.example/logo.png'"),
        ("ownScript", "p.split('/').join(\"/\"); location.href = '/'"),
        ("jsx", ["img", {"src": "/logo.png", "id": "a"}, "child"]),
        ("jsx", ["div", None, "text"]),
        ("jsx", ["a", {"to": "/other"}]),
        ("active", None),
    ]
    got = _run(ADMIN, cases, tmp_path)
    assert got[0] == "window.location.href = '/admin/other'"
    assert got[1] == 'window.open("/admin/logo.png?dl=1"); location.assign("/health")'
    assert got[2] == "location.href = `/post/${id}`; x = `/admin/post/7`"
    assert got[3] == "document.title = '/admin/other' + '//cdn.example/logo.png'"
    assert got[4] == "p.split('/').join(\"/\"); location.href = '/'"
    assert got[5] == ["img", {"src": "/admin/logo.png", "id": "a"}, "child"]
    assert got[6] == ["div", None, "text"]
    assert got[7] == ["a", {"to": "/other"}]
    assert got[8] is True


@pytest.mark.parametrize(
    ("meta", "upload", "logo", "active"),
    [
        # At the root nothing changes, and the wrapper steps aside.
        ({"data-prefix": "", "data-backend": ""}, "/_upload/a.txt", "/logo.png", False),
        # A backend elsewhere: uploads go there; files stay with the page.
        (
            {"data-prefix": "/admin", "data-backend": "https://api.test/x/"},
            "https://api.test/x/_upload/a.txt",
            "/admin/logo.png",
            True,
        ),
        (
            {"data-prefix": "", "data-backend": "https://api.test"},
            "https://api.test/_upload/a.txt",
            "/logo.png",
            True,
        ),
        # Prerender (no document) and pages without the tag: the baked sentinel,
        # which the host rewrites to the same prefix the tag carries.
        ("no-document", f"{SENTINEL}/_upload/a.txt", f"{SENTINEL}/logo.png", True),
        (None, f"{SENTINEL}/_upload/a.txt", f"{SENTINEL}/logo.png", True),
    ],
)
def test_where_the_prefix_and_the_backend_come_from(
    meta: object, upload: str, logo: str, active: bool, tmp_path: Path
) -> None:
    got = _run(
        meta,
        [("ownUrl", "/_upload/a.txt"), ("ownUrl", "/logo.png"), ("active", None)],
        tmp_path,
    )
    assert got == [upload, logo, active]


def test_dev_mode_bakes_its_real_prefix(tmp_path: Path) -> None:
    # `reflex-buildd dev` compiles with the real frontend_path: without a tag,
    # that is the prefix.
    got = _run(None, [("ownUrl", "/logo.png"), ("ownUrl", "/other")], tmp_path, baked="/dev")
    assert got == ["/dev/logo.png", "/dev/other"]


def test_route_pattern_matches_like_the_router() -> None:
    pattern = re.compile(route_pattern(ROUTES), re.IGNORECASE)
    for path in ("/", "/other", "/other/", "/post/x-1", "/docs", "/docs/a/b/c", "/opt", "/404"):
        assert pattern.match(path), path
    for path in ("", "/othe", "/others", "/post", "/post/", "/post/1/2", "/opt/1/2", "/x"):
        assert not pattern.match(path), path
    assert route_pattern([]) == "(?!)"
    assert not re.match(route_pattern([]), "/")
    # Literal characters of a route are escaped.
    assert re.match(route_pattern(["a-b.c"]), "/a-b.c")
    assert not re.match(route_pattern(["a-b.c"]), "/a-bxc")


def test_the_module_hides_its_paths_from_the_build_time_rewrite() -> None:
    from reflex_buildd.assets import rewrite_asset_refs

    source = urls_module(FILES, ROUTES)
    assert rewrite_asset_refs(source, frozenset(FILES)).rewritten == ()
    assert source.count(SENTINEL) == 1


def test_patches_are_idempotent_and_refuse_unknown_templates() -> None:
    web = Path(__import__("reflex_base").__file__).parent / ".templates/web"
    state = patch_state_js((web / "utils/state.js").read_text())
    assert patch_state_js(state) == state
    for patched in ("__rxbOwnUrl(event.payload.url)", "__rxbOwnUrl(event.payload.path)"):
        assert state.count(patched) == 1
    assert state.count("eval(__rxbOwnScript(") == 2

    from reflex_base.compiler.templates import vite_config_template

    config = patch_vite_config(
        vite_config_template(
            base="/x/",
            hmr=False,
            force_full_reload=False,
            experimental_hmr=False,
            sourcemap=False,
            allowed_hosts=False,
        )
    )
    assert patch_vite_config(config) == config
    assert config.count("    reflexBuilddJsx(),") == 1
    with pytest.raises(PatchError, match="not supported"):
        patch_vite_config("export default defineConfig({ alias: [ ] })")
