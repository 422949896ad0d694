"""The example app reflex-buildd is tested and demonstrated with.

Each page exercises one thing that breaks when a Reflex app is mounted under a
sub-path: links and a dynamic route (client navigation, deep links), a counter
(the event websocket), an upload (the upload endpoint and its links), an
``rx.asset`` image and a CSS ``url()`` (build-time asset URLs), ``rx.redirect``
(router base) and a lifespan task (the backend's lifespan must run).
"""

import asyncio
import os
import time

import reflex as rx

# Set by the lifespan task below; shown on the index page so a test (or a person)
# can see that the host really started Reflex's lifespan.
LIFESPAN = {"started_at": 0.0, "ticks": 0}


def _lifespan_log(event: str) -> None:
    # Tests point SHOWCASE_LIFESPAN_LOG at a file to see the task start and stop.
    if path := os.environ.get("SHOWCASE_LIFESPAN_LOG"):
        with open(path, "a") as log:
            log.write(f"{event}\n")


async def heartbeat() -> None:
    """Count while the backend runs: proof that the lifespan task started."""
    LIFESPAN["started_at"] = time.time()
    _lifespan_log("started")
    try:
        while True:
            LIFESPAN["ticks"] += 1
            await asyncio.sleep(0.2)
    finally:
        _lifespan_log("stopped")


class State(rx.State):
    """Per-tab state of the showcase."""

    count: int = 0
    lifespan_status: str = "unknown"
    uploaded: list[str] = []

    @rx.event
    def increment(self) -> None:
        """Count one click."""
        self.count += 1

    @rx.event
    def check_lifespan(self) -> None:
        """Read what the lifespan task has done so far."""
        if LIFESPAN["ticks"] > 0:
            self.lifespan_status = "lifespan running"
        else:
            self.lifespan_status = "lifespan not running"

    @rx.event
    async def handle_upload(self, files: list[rx.UploadFile]) -> None:
        """Store uploaded files in Reflex's upload directory."""
        upload_dir = rx.get_upload_dir()
        upload_dir.mkdir(parents=True, exist_ok=True)
        for file in files:
            data = await file.read()
            name = file.name or "upload.bin"
            (upload_dir / name).write_bytes(data)
            self.uploaded.append(name)

    @rx.var
    def host_origin(self) -> str:
        """The page's origin as the browser sent it (empty until connected).

        The links to the host's own routes are built from it at run time: a
        root-absolute ``/health`` written into the page would be the kind of
        URL that leaves the mount prefix (what ``reflex-buildd doctor`` reports).
        """
        return self.router.headers.origin

    @rx.event
    def go_home(self) -> rx.event.EventSpec:
        """Send the user back to the index page from an event handler."""
        return rx.redirect("/")


def nav() -> rx.Component:
    """Links between the pages (client-side navigation)."""
    return rx.hstack(
        rx.link("Home", href="/", id="nav-home"),
        rx.link("About", href="/about", id="nav-about"),
        rx.link("Post 42", href="/post/42", id="nav-post"),
        rx.link("Upload", href="/upload", id="nav-upload"),
        rx.link("Nested", href="/docs/guide/intro", id="nav-nested"),
    )


def _host_link(label: str, path: str, note: str) -> rx.Component:
    return rx.list_item(
        rx.el.a(label, href=State.host_origin + path, target="_blank"),
        rx.text.span(f" {note}"),
    )


def index() -> rx.Component:
    """The home page: what the demo is, and one widget for each thing mounting breaks."""
    return rx.vstack(
        nav(),
        rx.heading("Showcase", id="title"),
        rx.text(
            "This page is a Reflex app served by reflex-buildd under a path of another ASGI "
            "app: in the demo, /admin of a FastAPI host (examples/hosts/fastapi_host.py). "
            "It was built once, without knowing that path, into a shared cache; the host "
            "serves the build here and runs the app's backend under the same path.",
            id="about-demo",
        ),
        rx.text(
            "Each item below is something that breaks when a Reflex app is mounted on a "
            "sub-path without reflex-buildd:"
        ),
        rx.unordered_list(
            rx.list_item(
                "The coloured box below gets its background from a CSS url() in assets/showcase.css: "
                "stylesheet URLs follow the mount path.",
                rx.box(class_name="showcase-banner", id="banner", width="4em"),
            ),
            rx.list_item(
                "The logo is an rx.asset() image: asset URLs follow the mount path.",
                rx.image(src=rx.asset("logo.png"), id="logo", alt="logo"),
            ),
            rx.list_item(
                "The counter talks to the backend over the event websocket under the mount path: ",
                rx.button("Increment", on_click=State.increment, id="increment"),
                rx.text.span(" clicks: "),
                rx.text.span(State.count, id="count"),
            ),
            rx.list_item(
                "The backend's lifespan task (the host starts it): ",
                rx.text.span(State.lifespan_status, id="lifespan"),
            ),
            rx.list_item(
                "The links above navigate inside the app (its router knows the mount path); "
                "Post 42 is a dynamic route and Nested a deep link: reload either one."
            ),
        ),
        rx.cond(
            State.host_origin,
            rx.vstack(
                rx.text("The host's own routes, beside the mount:"),
                rx.unordered_list(
                    _host_link("/health", "/health", "the host's health check"),
                    _host_link("/docs", "/docs", "FastAPI's API docs (FastAPI hosts only)"),
                ),
                id="host-routes",
            ),
        ),
        on_mount=State.check_lifespan,
    )


def about() -> rx.Component:
    """A plain second page."""
    return rx.vstack(
        nav(),
        rx.heading("About", id="title"),
        rx.button("Back home", on_click=State.go_home, id="go-home"),
    )


def post() -> rx.Component:
    """A dynamic route: /post/[pid]."""
    return rx.vstack(
        nav(),
        rx.heading("Post", id="title"),
        rx.text("post id: ", State.pid, id="post-id"),
    )


def guide() -> rx.Component:
    """A nested static route, for deep-link reloads."""
    return rx.vstack(nav(), rx.heading("Guide intro", id="title"))


def upload() -> rx.Component:
    """Upload files and link to them."""
    return rx.vstack(
        nav(),
        rx.heading("Upload", id="title"),
        rx.upload(
            rx.text("Drop a file here"),
            id="uploader",
        ),
        rx.button(
            "Send",
            id="send",
            on_click=State.handle_upload(rx.upload_files(upload_id="uploader")),
        ),
        rx.foreach(
            State.uploaded,
            lambda name: rx.link(name, href=rx.get_upload_url(name), class_name="uploaded-link"),
        ),
    )


app = rx.App(stylesheets=["/showcase.css"])
app.register_lifespan_task(heartbeat)
app.add_page(index, route="/", title="Showcase")
app.add_page(about, route="/about", title="About")
app.add_page(post, route="/post/[pid]", title="Post")
app.add_page(guide, route="/docs/guide/intro", title="Guide")
app.add_page(upload, route="/upload", title="Upload")
