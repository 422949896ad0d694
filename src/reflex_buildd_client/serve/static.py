"""A plain-ASGI static server over an artifact, prepared once per prefix.

WhiteNoise's approach: every response is computed when a prefix is first
served (sentinel rewrite, ``<meta>`` injection, headers); a request is a
dictionary lookup and a ``send``. Deciding and sending are apart: a
:class:`Request` (the few facts a response depends on) goes in,
:meth:`StaticSite.respond` returns a :class:`Response` (status, headers, body
or slice) without I/O, for the common cases one made in advance, and
:func:`send_response` sends it. The header parsers (:mod:`.headers`) take
linear time on any value and ignore overlong ones.

Compressed variants are made the first time a client asks for each (then
kept), so neither startup nor a new prefix pays for brotli of files nobody
requests compressed. Nothing is read from disk per request, so no request
path can reach a file outside the artifact: only the keys of the dictionary
exist, and :class:`.files.ArtifactFiles` holds only bytes read once and verified
against the manifest (``verify.read_checked`` refuses symlinks and paths
outside the artifact: an artifact is input, and a build never makes either).

Artifacts are a few MB. The bytes of files without a sentinel (and their gzip
and brotli variants) are held once per artifact and shared by every prefix
(:mod:`.files`); only the rewritten files (HTML, the route manifest, a few
chunks) and their recompressed variants cost memory and time per prefix
(:mod:`.resource`; compression rules: :mod:`.compress`).

Choices a client can see:

- Each encoding is its own representation with its own strong ETag
  (``"<digest>"``, ``"<digest>-gz"``, ``"<digest>-br"``), chosen by
  ``Accept-Encoding`` (q-values honoured, brotli first on a tie), with
  ``Vary: Accept-Encoding`` wherever there is a choice.
- ``Range`` (one range of bytes) is answered from the identity representation
  whatever ``Accept-Encoding`` says: a byte range of a compressed variant is
  useless to a client that resumes or seeks. Several ranges get the whole
  representation (200), as RFC 9110 allows.
- Hashed vite assets are ``immutable`` for a year; everything else (HTML, the
  app's own unhashed files, the 404 page) is ``no-cache``: revalidated, cheap
  with the ETag.
"""

from __future__ import annotations

from ..types import Receive, Scope, Send
from .files import ArtifactFiles
from .http import Request, Response, send_response
from .prefix import is_safe_path, relative_path
from .resource import Resource, make_resource
from .rewrite import has_icon_link, icon_link, meta_tag, no_icon_link
from .routes import RouteTable

__all__ = ["StaticSite"]


class StaticSite:
    """Everything one prefix serves, computed once; a plain ASGI app.

    :meth:`respond` decides (a lookup and a few comparisons, no I/O);
    ``__call__`` sends what it decided. :class:`ReflexMount` calls
    :meth:`respond` itself, after its own path check and prefix rule.

    Args:
        files: The artifact's files.
        prefix: ``""`` or ``"/a/b"``: what the sentinel becomes.
        backend: The backend URL for the ``<meta>`` tag (``""``: the page's
            origin and prefix).
    """

    def __init__(self, files: ArtifactFiles, prefix: str, backend: str = "") -> None:
        self.prefix = prefix
        head = meta_tag(prefix, backend)
        icon = icon_link(prefix) if "/favicon.ico" in files.raw else no_icon_link()
        head_icon = head + icon
        resources: dict[str, Resource] = {}
        for url, raw in files.raw.items():
            extra = head_icon if raw.is_html and not has_icon_link(raw.data) else head
            resources[url] = make_resource(url, raw, prefix, extra)
        fallback = files.not_found_page
        extra = head if has_icon_link(fallback.data) else head_icon
        # Reflex's 404.html is its SPA shell: with status 200 it renders any
        # client route (dynamic ones have no prerendered page), with 404 the
        # app's not-found page.
        self._spa = make_resource("/404.html", fallback, prefix, extra, 200)
        self._not_found = make_resource("/404.html", fallback, prefix, extra, 404)
        self._routes: RouteTable = files.routes
        # Files and pages in one dictionary (a file wins over a page of the same
        # path): a request for either is one lookup.
        pages = {page: resources[url] for page, url in files.pages.items()}
        self._exact = {**pages, **resources}
        self.resources = resources  # the artifact's files, by URL (tools and tests)

    def resolve(self, path: str) -> Resource:
        """The resource for ``path`` below the prefix (``""``, ``"/about"``, ...)."""
        if (found := self._exact.get(path)) is not None:
            return found
        if not is_safe_path(path):
            return self._not_found
        return self._spa if self._routes.match(path) else self._not_found

    def respond(self, request: Request) -> Response:
        """The response to ``request``, decided without I/O."""
        return (self._exact.get(request.path) or self.resolve(request.path)).respond(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an HTTP scope whose ``root_path`` is this site's mount point."""
        if scope["type"] != "http":
            return
        await send_response(send, self.respond(Request.from_scope(scope, relative_path(scope))))
