"""The public files of one artifact, keyed by URL path, and the pages they prerender.

Built from the bytes that were verified against the manifest (``verify.read_verified``),
never read again from disk: what was checked is what is served. Held once per artifact and
shared by every prefix it is mounted at; only rewritten files cost memory per prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cache.store import PUBLIC_DIR, Artifact
from ..errors import CorruptArtifactError
from .compress import compress, compressible
from .headers import BR, GZIP
from .routes import RouteTable

__all__ = ["HTML", "ArtifactFiles", "PublicFile", "page_of"]

HTML = "text/html"
_PUBLIC = PUBLIC_DIR + "/"
_NOT_FOUND_PAGE = "/404.html"


class PublicFile:
    """One public file of an artifact; compressed forms made on first use.

    Reflex ships ``.gz`` sidecars; brotli (and gzip where no sidecar exists)
    is computed the first time a client asks for it, then kept for every
    prefix: startup never pays for compression nobody requests.
    """

    __slots__ = ("_packed", "content_type", "data", "digest", "sentinels")

    def __init__(
        self,
        data: bytes,
        digest: str,
        content_type: str,
        sentinels: int,
        sidecars: dict[bytes, bytes],
    ) -> None:
        self.data = data
        self.digest = digest
        self.content_type = content_type
        self.sentinels = sentinels
        self._packed: dict[bytes, bytes | None] = dict(sidecars)

    @property
    def compressible(self) -> bool:
        """Whether compressed variants may exist."""
        return compressible(self.content_type, len(self.data))

    @property
    def is_html(self) -> bool:
        """HTML gets the ``<meta>`` tag, so it is rewritten per prefix like sentinel files."""
        return self.content_type.startswith(HTML)

    def packed(self, coding: bytes) -> bytes | None:
        """The file in ``coding`` (gzip or br), or None if not worth it."""
        if coding not in self._packed:
            self._packed[coding] = compress(coding, self.data) if self.compressible else None
        return self._packed[coding]


def page_of(url: str) -> str | None:
    """The page path a prerendered file serves (``/about/index.html`` -> ``/about``), or None.

    ``/404.html`` is the SPA shell, not a page.
    """
    if url == _NOT_FOUND_PAGE:
        return None
    for suffix in ("/index.html", ".html"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return None


class ArtifactFiles:
    """The public files of one artifact, keyed by URL path.

    Attributes:
        raw: URL path -> file (``/index.html``, ``/assets/x-1a2b3c4d.js``).
        pages: Page path (``""``, ``"/"``, ``"/about"``, ``"/about/"``) -> the URL of the
            prerendered file that serves it; only paths that are routes of the app.
        routes: The app's page routes.

    Raises:
        CorruptArtifactError: If a file the manifest lists is not in ``contents``.
    """

    def __init__(self, artifact: Artifact, contents: Mapping[str, bytes]) -> None:
        self.artifact = artifact
        files = artifact.manifest.files

        def read(rel: str) -> bytes:
            try:
                return contents[rel]
            except KeyError:
                raise CorruptArtifactError(
                    f"{artifact.path}: {rel!r} was not verified; refusing to serve it"
                ) from None

        self.raw: dict[str, PublicFile] = {}
        for rel, entry in files.items():
            if not rel.startswith(_PUBLIC) or rel.endswith((".gz", ".br")):
                continue
            data = read(rel)
            sidecars: dict[bytes, bytes] = {}
            # Files with a sentinel are recompressed per prefix; HTML too (the <meta>).
            if not entry.sentinels and not entry.content_type.startswith(HTML):
                for coding, suffix in ((GZIP, ".gz"), (BR, ".br")):
                    if rel + suffix in files:
                        sidecars[coding] = read(rel + suffix)
            url = "/" + rel[len(_PUBLIC) :]
            self.raw[url] = PublicFile(
                data, entry.digest, entry.content_type, entry.sentinels, sidecars
            )
        self.routes = RouteTable(artifact.manifest.routes)
        self.pages: dict[str, str] = {}
        for url in self.raw:
            page = page_of(url)
            if page is not None and self.routes.match(page):
                self.pages.setdefault(page, url)
                self.pages.setdefault(page + "/", url)

    def serves(self, path: str) -> bool:
        """Whether ``path`` (below the prefix) names one of these files or prerendered pages."""
        return path in self.raw or path in self.pages

    @property
    def not_found_page(self) -> PublicFile:
        """The SPA shell (``404.html``; ``index.html`` for builds without one)."""
        return self.raw.get(_NOT_FOUND_PAGE) or self.raw["/index.html"]
