"""What the run-time URL rule costs on the render path, measured in Chromium.

One app renders ROWS rows of URL-bearing elements (an image whose ``src``
names a file of ``assets/``, a ``srcSet``, a second image, a CSS
``url()`` in an inline style, a form ``action`` naming a page, and a text)
when a button flips a client-side state var, and removes them again. The
rows are not displayed and their images are lazy, so no variant fetches or
decodes an image: only the render path (React creating the elements, the DOM
nodes) is timed, from the click to the commit of every row, in the page
(``performance.now()``), many times, alternating between:

- **unpatched**: the same app built by reflex-buildd with the render-path
  patch taken out (a benchmark-only plugin, :class:`NoRuntimeUrls`, removes
  ``reflexBuilddJsx()`` from ``.web/vite.config.js`` after Reflex's compile
  and before vite runs), mounted at ``/admin``;
- **patched at /admin**: the real build, where every element goes through the
  rule and every URL in the rows is rewritten;
- **patched at /**: the real build at the root, where the wrapper steps aside.

It prints the medians (and minima) and the ratios against the unpatched page.

Then, closer in: the cost of one ``jsx`` call, the real ``@emotion/react``
from the build's workspace against the wrapper (active under ``/admin``, and
inactive at the root), in bun, over props shaped like Reflex's (an image, a
styled div, a form, a plain span): what the wrapper adds per element, which
the page-level numbers above put in proportion.

Run: ``.venv/bin/python benchmarks/bench_runtime_urls.py`` (about two minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from reflex_base.plugins.base import Plugin

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
ROWS = 1000
ROUNDS = 24
PLUGIN = "bench_runtime_urls.NoRuntimeUrls"

APP = """
import reflex as rx

ROWS = [
    {"i": str(i), "img": "/logo.png", "set": "/logo.png 1x, /big.png 2x", "bg": "url(/bg.png)",
     "page": "/other", "poster": "/poster.png"}
    for i in range(%(rows)d)
]
show = rx._x.client_state("show", False)


class State(rx.State):
    pass


def row(r: rx.Var) -> rx.Component:
    return rx.el.div(
        rx.el.img(src=r["img"], loading="lazy", width="8", height="8"),
        rx.el.img(src_set=r["set"], loading="lazy", width="8", height="8"),
        rx.el.img(src=r["poster"], loading="lazy", width="8", height="8"),
        rx.el.div(style={"background_image": r["bg"], "width": "8px", "height": "8px"}),
        rx.el.form(action=r["page"]),
        rx.el.span(r["i"]),
        class_name="row",
    )


def index() -> rx.Component:
    return rx.el.div(
        show,
        rx.el.button("show", id="show", on_click=show.set_value(True)),
        rx.el.button("hide", id="hide", on_click=show.set_value(False)),
        # Not displayed, and lazy: no image is fetched or decoded in any variant
        # (the unpatched one would ask the host's root and get 404s), so only
        # the render path is measured.
        rx.el.div(
            rx.cond(show.value, rx.foreach(rx.Var.create(ROWS), row), rx.el.span("none")),
            style={"display": "none"},
        ),
    )


def other() -> rx.Component:
    return rx.el.div("other")


app = rx.App()
app.add_page(index, route="/")
app.add_page(other, route="/other")
"""

MEASURE_JS = """async (n) => {
  const rows = () => document.querySelectorAll('.row').length;
  const settle = async (want) => {
    for (let i = 0; i < 20000 && rows() !== want; i++) {
      await new Promise((r) => (i < 50 ? queueMicrotask(r) : setTimeout(r, 0)));
    }
    if (rows() !== want) throw new Error('rows never reached ' + want);
  };
  const t0 = performance.now();
  document.querySelector('#show').click();
  await settle(n);
  const shown = performance.now() - t0;
  document.querySelector('#hide').click();
  await settle(0);
  return shown;
}"""


SHOW_SRC_JS = """async () => {
  document.querySelector('#show').click();
  for (let i = 0; i < 2000 && !document.querySelector('.row img'); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  return document.querySelector('.row img').getAttribute('src');
}"""


class NoRuntimeUrls(Plugin):
    """Benchmark-only Reflex plugin: takes the render-path patch out of a build.

    Reflex runs ``post_compile`` after it has written ``.web`` (our plugin's
    patches included) and before ``reflex export`` runs vite, so removing the
    plugin call there yields the same app without the jsx wrapper.
    """

    def post_compile(self, **context: Any) -> None:
        from reflex_base.utils.prerequisites import get_web_dir

        config = get_web_dir() / "vite.config.js"
        text = config.read_text()
        patched = text.replace("\n    reflexBuilddJsx(),", "")
        if patched == text:
            raise RuntimeError("no reflexBuilddJsx() in vite.config.js: the benchmark is stale")
        config.write_text(patched)


MICRO_JS = r"""
import { jsx as emotionJsx } from "@emotion/react";
const env = { UPLOAD: "http://localhost:8000/_upload" };
const prefix = process.argv[2];
globalThis.document = {
  querySelector: () => ({ getAttribute: (n) => (n === "data-prefix" ? prefix : "") }),
};
%URLS%
%JSX%
const shapes = [
  () => ({ alt: "logo", id: "img", src: "/logo.png" }),
  () => ({ css: { backgroundImage: "url(/bg.png)", minHeight: "10px", "&:hover": { color: "red" } }, id: "s" }),
  () => ({ action: "/other", id: "f", method: "get" }),
  () => ({ className: "row", id: "t" }),
];
const run = (fn, n) => {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const el = fn(i & 1 ? "img" : "div", shapes[i & 3](), "x");
    sink += el.props === null ? 0 : 1;
  }
  return [(performance.now() - t0) * 1e6 / n, sink];
};
// Short slices, alternating, and the fastest of each: the machine is shared,
// and a slice that was preempted says nothing about the code.
const N = 20000;
const out = { emotion: [], wrapper: [] };
for (let r = 0; r < 80; r++) {
  out.emotion.push(run(emotionJsx, N)[0]);
  out.wrapper.push(run(jsx, N)[0]);
}
console.log(JSON.stringify({ emotion: Math.min(...out.emotion), wrapper: Math.min(...out.wrapper) }));
"""


def _micro(cache: Path, prefix: str) -> dict[str, float]:
    """ns per jsx call: Emotion's own and the wrapper's, under ``prefix``."""
    from reflex_buildd.runtime_urls import JSX_MODULE, urls_module
    from reflex_buildd_client.inputs.runtime import resolve_runtime
    from reflex_buildd_client.settings import Settings

    # The build's workspace has the app's node_modules (the same @emotion/react).
    web = next(cache.glob("v1/work/*/web"))
    urls = urls_module(["/logo.png", "/bg.png"], ["index", "other"])
    urls = urls.replace('import env from "$/env.json";', "").replace("export const", "const")
    jsx = "\n".join(
        line for line in JSX_MODULE.splitlines() if not line.startswith(("import", "export *"))
    ).replace("export function", "function")
    script = web / "bench_runtime_urls.mjs"
    script.write_text(MICRO_JS.replace("%URLS%", urls).replace("%JSX%", jsx))
    try:
        bun = resolve_runtime(settings=Settings.load()).executable
        out = subprocess.run(
            [str(bun), str(script), prefix],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
            cwd=web,
        ).stdout
    finally:
        script.unlink()
    return {k: float(v) for k, v in json.loads(out).items()}


def _env(**extra: str) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tool_env

    env = tool_env(**extra)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), env["PYTHONPATH"]])
    return env


def _build(project: Path, cache: Path, **extra: str) -> str:
    cmd = [sys.executable, "-m", "reflex_buildd", "build", str(project), "--json"]
    result = subprocess.run(
        [*cmd, "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(**extra),
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return str(json.loads(result.stdout.strip().splitlines()[-1])["key"])


def _project(tmp: Path) -> Path:
    project = tmp / "urlbench"
    (project / "urlbench").mkdir(parents=True)
    (project / "assets").mkdir()
    for name in ("logo.png", "big.png", "bg.png", "poster.png"):
        shutil.copy(REPO / "tests/fixtures/runtime_urls/assets" / name, project / "assets" / name)
    (project / "urlbench" / "__init__.py").write_text("")
    (project / "urlbench" / "urlbench.py").write_text(APP % {"rows": ROWS})
    (project / "rxconfig.py").write_text(
        "import reflex as rx\n\nconfig = rx.Config(app_name='urlbench', "
        "disable_plugins=[rx.plugins.SitemapPlugin])\n"
    )
    return project


def main() -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM, CHROMIUM_ARGS, run_host

    with tempfile.TemporaryDirectory(prefix="bench-urls-") as name:
        tmp = Path(name)
        project = _project(tmp)
        patched_cache, plain_cache = tmp / "cache-patched", tmp / "cache-plain"
        _build(project, patched_cache)
        _build(project, plain_cache, REFLEX_EXTRA_PLUGINS=PLUGIN)
        variants = [
            ("unpatched, /admin", plain_cache, "/admin", {"REFLEX_EXTRA_PLUGINS": PLUGIN}),
            ("patched, /admin", patched_cache, "/admin", {}),
            ("patched, / (wrapper inactive)", patched_cache, "/", {}),
        ]
        times: dict[str, list[float]] = {label: [] for label, *_ in variants}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = {}
            hosts = []
            try:
                for label, cache, mount, extra in variants:
                    log = tmp / f"log-{len(hosts)}"
                    log.mkdir()
                    host_cm = run_host(
                        "examples.hosts.fastapi_host:app",
                        cache_dir=cache,
                        log_dir=log,
                        SHOWCASE_PROJECT=str(project),
                        SHOWCASE_MOUNT_PATH=mount,
                        REFLEX_BUILDD_POLICY="fail",
                        PYTHONPATH=_env()["PYTHONPATH"],
                        **extra,
                    )
                    host = host_cm.__enter__()
                    hosts.append(host_cm)
                    page = browser.new_page()
                    page.goto(host.url + mount.rstrip("/") + "/")
                    page.wait_for_selector("#show")
                    page.evaluate(MEASURE_JS, ROWS)  # warm: code, images, JIT
                    page.evaluate(MEASURE_JS, ROWS)
                    pages[label] = page
                for round_ in range(ROUNDS):
                    # Rotate the order; the measured page is the one in front
                    # (a page behind may get throttled timers).
                    order = list(pages.items())
                    order = order[round_ % len(order) :] + order[: round_ % len(order)]
                    for label, page in order:
                        page.bring_to_front()
                        times[label].append(float(page.evaluate(MEASURE_JS, ROWS)))
                # What each page rendered (the unpatched one must not rewrite).
                srcs = {label: page.evaluate(SHOW_SRC_JS) for label, page in pages.items()}
            finally:
                for host_cm in reversed(hosts):
                    host_cm.__exit__(None, None, None)
                browser.close()

        micro = {mount: _micro(patched_cache, mount) for mount in ("/admin", "")}

    base = times[variants[0][0]]
    print(f"[{ROWS} rows x 6 elements, {ROUNDS} rounds; load: {os.getloadavg()[0]:.1f}]")
    print(f"{'page':30} {'median':>9} {'ratio':>7} {'min':>9} {'ratio':>7}  first row's src")
    for label, samples in times.items():
        median, least = statistics.median(samples), min(samples)
        print(
            f"{label:30} {median:6.1f} ms {median / statistics.median(base):6.3f}x "
            f"{least:6.1f} ms {least / min(base):6.3f}x  {srcs[label]}"
        )
    print("\n[one jsx call, bun, fastest of 80 alternating slices of 20,000 calls, 4 prop shapes]")
    for mount, got in micro.items():
        where = f"wrapper under {mount}" if mount else "wrapper at / (inactive)"
        extra = got["wrapper"] - got["emotion"]
        print(
            f"{where:26} {got['wrapper']:6.0f} ns  emotion's jsx {got['emotion']:6.0f} ns  "
            f"ratio {got['wrapper'] / got['emotion']:5.2f}x  (+{extra:.0f} ns per element)"
        )


if __name__ == "__main__":
    main()
