"""The full in-browser check of the showcase example under one prefix.

Used by every host's test: renders without console errors, every request
stays under the prefix, counter round-trip over the websocket, client
navigation, ``rx.redirect``, deep links and reloads on nested and dynamic
routes, an upload whose link is under the prefix, the ``rx.asset`` image and
the CSS ``url()`` load, and the lifespan task's effect shows.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_MS = 20_000


@dataclass
class PageRecord:
    """Everything the page did, for assertions and failure messages."""

    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def _record(page: Any) -> PageRecord:
    rec = PageRecord()
    page.on("request", lambda r: rec.requests.append(r.url))
    page.on("websocket", lambda ws: rec.websockets.append(ws.url))
    page.on("requestfailed", lambda r: rec.failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: rec.statuses.__setitem__(r.url, r.status))
    page.on(
        "console",
        lambda m: (
            rec.console_errors.append(f"{m.text} @ {m.location}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: rec.console_errors.append(f"pageerror: {e}"))
    return rec


def check_showcase(browser: Any, origin: str, prefix: str, tmp_path: Path) -> PageRecord:
    """Run the whole check; raise AssertionError with context on the first failure."""
    base = origin + prefix.rstrip("/")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    rec = _record(page)
    try:
        _check(page, rec, origin, base, prefix.rstrip("/"), tmp_path)
    except Exception as exc:
        raise AssertionError(
            f"{exc}\nrequests: {rec.requests}\nwebsockets: {rec.websockets}\n"
            f"failed: {rec.failed}\nconsole: {rec.console_errors}"
        ) from exc
    finally:
        context.close()
    return rec


def _check(page: Any, rec: PageRecord, origin: str, base: str, prefix: str, tmp: Path) -> None:
    from playwright.sync_api import expect

    # Playwright's assertions wait 5 s by default; a shared 2-core machine
    # under load needs more (this is a bound on waiting, not a timing claim).
    expect.set_options(timeout=TIMEOUT_MS)

    # Render, websocket and lifespan: on_mount asks the backend what the
    # lifespan task did; the answer arrives over the websocket.
    page.goto(base + "/")
    expect(page.locator("#title")).to_have_text("Showcase")
    expect(page.locator("#lifespan")).to_have_text("lifespan running")

    # Counter round-trip through the event websocket.
    page.locator("#increment").click()
    page.locator("#increment").click()
    expect(page.locator("#count")).to_have_text("2")

    # rx.asset image, really decoded (natural size, not just requested).
    page.wait_for_function("document.querySelector('#logo').complete")
    assert page.evaluate("document.querySelector('#logo').naturalWidth") == 40

    # CSS url() from a stylesheet in assets/: the computed background points
    # under the prefix and the image loads.
    bg = page.evaluate("getComputedStyle(document.querySelector('#banner')).backgroundImage")
    assert f"{base}/bg.png" in bg, bg
    page.wait_for_function(
        """(url) => performance.getEntriesByType('resource').some(e => e.name === url)""",
        arg=f"{base}/bg.png",
    )
    assert rec.statuses.get(f"{base}/bg.png") == 200, rec.statuses

    # Client navigation, then rx.redirect from an event handler.
    page.locator("#nav-about").click()
    expect(page.locator("#title")).to_have_text("About")
    assert page.url == f"{base}/about", page.url
    page.locator("#go-home").click()
    expect(page.locator("#title")).to_have_text("Showcase")
    assert page.url.rstrip("/") == base, page.url

    # Deep link and reload on a nested route, and on a dynamic one.
    page.goto(base + "/docs/guide/intro")
    expect(page.locator("#title")).to_have_text("Guide intro")
    page.reload()
    expect(page.locator("#title")).to_have_text("Guide intro")
    page.goto(base + "/post/42")
    expect(page.locator("#post-id")).to_have_text("post id: 42")
    page.reload()
    expect(page.locator("#post-id")).to_have_text("post id: 42")

    # Upload round-trip; the link to the file is under the prefix.
    page.goto(base + "/upload")
    expect(page.locator("#title")).to_have_text("Upload")
    payload = tmp / "hello.txt"
    payload.write_text("hello from the browser test\n")
    page.locator("#uploader input[type=file]").set_input_files(str(payload))
    page.locator("#send").click()
    link = page.locator(".uploaded-link").first
    expect(link).to_have_text("hello.txt")
    href = link.get_attribute("href") or ""
    assert href.startswith(f"{base}/_upload/"), href
    with urllib.request.urlopen(href, timeout=10) as resp:
        assert resp.read() == payload.read_bytes()

    # Nothing escaped the prefix: documents, scripts, styles, images, the
    # upload POST and the websocket.
    allowed = (base + "/", base + "?")
    escaped = [u for u in rec.requests if not (u == base or u.startswith(allowed))]
    assert not escaped, f"requests outside {base}: {escaped}"
    ws_base = "ws" + base[len("http") :]
    assert rec.websockets, "no websocket was opened"
    bad_ws = [u for u in rec.websockets if not u.startswith(ws_base + "/_event")]
    assert not bad_ws, f"websockets outside {ws_base}/_event: {bad_ws}"
    assert any(u.startswith(f"{base}/_upload") for u in rec.requests), rec.requests
    assert not rec.failed, rec.failed
    assert not rec.console_errors, rec.console_errors
