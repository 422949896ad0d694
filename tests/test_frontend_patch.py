"""The frontend patch's run-time logic, executed in a real JS runtime (bun).

The browser tests cover http pages on 127.0.0.1; these cover what they cannot:
a page served over https (the backend must be wss:/https:), an explicit backend
on another origin, the socket.io namespace split, and pages without the tag.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reflex_buildd.plugin import _RUNTIME_JS, PatchError, patch_state_js
from reflex_buildd_client.inputs.runtime import resolve_runtime
from reflex_buildd_client.settings import Settings

HARNESS = r"""
const env = {
  EVENT: "ws://localhost:8000/_event",
  PING: "http://localhost:8000/ping",
  UPLOAD: "http://localhost:8000/_upload",
};
const __rxbOriginalBackendURL = (url) => new URL(url);
const setPage = (href, meta) => {
  const url = new URL(href);
  globalThis.window = { location: { href, origin: url.origin, protocol: url.protocol } };
  globalThis.document = {
    querySelector: () => meta && { getAttribute: (name) => meta[name] ?? null },
  };
};
%RUNTIME%
const cases = JSON.parse(process.argv[2]);
const out = cases.map(([href, meta, which]) => {
  setPage(href, meta);
  const endpoint = getBackendURL(env[which]);
  return { url: endpoint.href, namespace: __rxbNamespaceURL(endpoint) };
});
console.log(JSON.stringify(out));
"""

CASES = [
    # (page, meta attributes or None, env entry) -> (backend URL, socket.io URL)
    (
        ("http://h.test/admin/", {"data-prefix": "/admin", "data-backend": ""}, "EVENT"),
        ("ws://h.test/admin/_event", "ws://h.test/_event"),
    ),
    (
        ("https://h.test/admin/about", {"data-prefix": "/admin", "data-backend": ""}, "EVENT"),
        ("wss://h.test/admin/_event", "wss://h.test/_event"),
    ),
    (
        ("https://h.test/a/b/", {"data-prefix": "/a/b", "data-backend": ""}, "UPLOAD"),
        ("https://h.test/a/b/_upload", "https://h.test/_event"),
    ),
    (
        ("http://h.test:8080/", {"data-prefix": "", "data-backend": ""}, "PING"),
        ("http://h.test:8080/ping", "http://h.test:8080/_event"),
    ),
    (
        (
            "https://h.test/admin/",
            {"data-prefix": "/admin", "data-backend": "https://api.test/x/"},
            "EVENT",
        ),
        ("wss://api.test/x/_event", "wss://api.test/_event"),
    ),
    (
        (
            "http://h.test/admin/",
            {"data-prefix": "/admin", "data-backend": "http://api.test:9000"},
            "UPLOAD",
        ),
        ("http://api.test:9000/_upload", "http://api.test:9000/_event"),
    ),
    # No tag (plain Reflex, prerender): the baked-in URL, untouched.
    (
        ("https://h.test/", None, "EVENT"),
        ("ws://localhost:8000/_event", "ws://localhost:8000/_event"),
    ),
]


def _run(cases: list[tuple[str, object, str]], tmp_path: Path) -> list[dict[str, str]]:
    script = tmp_path / "harness.mjs"
    runtime = _RUNTIME_JS.replace("export const getBackendURL", "const getBackendURL")
    script.write_text(HARNESS.replace("%RUNTIME%", runtime))
    bun = resolve_runtime(settings=Settings.load())
    if bun.name != "bun":  # pragma: no cover - the setup script installs bun
        pytest.fail("these checks run the patch with bun; scripts/setup.sh installs it")
    result = subprocess.run(
        [str(bun.executable), str(script), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_backend_url_follows_the_page_and_the_tag(tmp_path: Path) -> None:
    results = _run([case for case, _ in CASES], tmp_path)
    for (case, (url, namespace)), got in zip(CASES, results, strict=True):
        assert got == {"url": url, "namespace": namespace}, case


def test_patch_is_idempotent_and_refuses_unknown_templates() -> None:
    template = Path(__import__("reflex_base").__file__).parent / ".templates/web/utils/state.js"
    source = template.read_text()
    once = patch_state_js(source)
    assert patch_state_js(once) == once
    assert once.count("__rxbOriginalBackendURL = (url_str)") == 1
    with pytest.raises(PatchError, match="not supported"):
        patch_state_js("export const somethingElse = 1;\n")
