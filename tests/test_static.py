"""The static server's pure parts and prepared sites, without a server.

Headers over real HTTP are in ``test_static_http.py``; here: range and
Accept-Encoding parsing (hypothesis), what a prepared site holds for every
file of a real artifact, artifacts with files resolving outside, and the bound
on prepared prefixes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gzip
import re
import shutil
from pathlib import Path
from typing import Any

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import SHOWCASE, Built
from reflex_buildd_client.cache.manifest import FileEntry
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.cache.verify import read_verified
from reflex_buildd_client.errors import CorruptArtifactError
from reflex_buildd_client.mount import _MAX_PREFIXES, ReflexMount
from reflex_buildd_client.serve.files import ArtifactFiles
from reflex_buildd_client.serve.headers import (
    MAX_ACCEPT_ENCODING,
    MAX_ETAGS,
    RangeNotSatisfiable,
    byte_range,
    encoding_preferences,
    etag_matches,
    if_range_matches,
)
from reflex_buildd_client.serve.http import Request
from reflex_buildd_client.serve.rewrite import SENTINEL_BYTES
from reflex_buildd_client.serve.static import StaticSite

# -- Range -------------------------------------------------------------------


@given(
    size=st.integers(0, 10_000),
    first=st.integers(0, 20_000),
    last=st.none() | st.integers(0, 20_000),
)
def test_byte_range_from(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}".encode()
    if last is not None and last < first:
        assert byte_range(header, size) is None
        return
    if first >= size:
        with pytest.raises(RangeNotSatisfiable):
            byte_range(header, size)
        return
    start, end = byte_range(header, size) or (-1, -1)
    data = bytes(range(256)) * 40
    expected = data[:size][first : (size if last is None else last + 1)]
    assert data[:size][start : end + 1] == expected and expected


@given(size=st.integers(0, 10_000), suffix=st.integers(0, 20_000))
def test_byte_range_suffix(size: int, suffix: int) -> None:
    header = f"bytes=-{suffix}".encode()
    if suffix == 0 or size == 0:
        with pytest.raises(RangeNotSatisfiable):
            byte_range(header, size)
        return
    assert byte_range(header, size) == (max(0, size - suffix), size - 1)


@given(header=st.binary(max_size=40))
def test_byte_range_never_crashes(header: bytes) -> None:
    try:
        span = byte_range(header, 1000)
    except RangeNotSatisfiable:
        return
    assert span is None or 0 <= span[0] <= span[1] < 1000


def _reference_range(header: bytes, size: int) -> tuple[int, int] | None:
    """The regex parser this module had before issue 11 (quadratic on spaces, fine when short)."""
    match = re.match(rb"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", header, re.IGNORECASE)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - int(last)), size - 1
    start, end = int(first), int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


@given(
    header=st.lists(
        st.sampled_from(
            [b" ", b"\t", b"bytes", b"BYTES", b"=", b"-", b"0", b"7", b"12", b",", b"x"]
        ),
        max_size=12,
    ).map(b"".join),
    size=st.integers(0, 200),
)
def test_byte_range_means_what_the_old_parser_meant(header: bytes, size: int) -> None:
    """Short headers: exactly the old answers (the rewrite changed the cost, not the meaning)."""
    try:
        expected: object = _reference_range(header, size)
    except RangeNotSatisfiable:
        expected = RangeNotSatisfiable
    try:
        found: object = byte_range(header, size)
    except RangeNotSatisfiable:
        found = RangeNotSatisfiable
    assert found == expected


def test_byte_range_huge_and_long_values() -> None:
    nines = b"9" * 30
    assert byte_range(b"bytes=-" + nines, 100) == (0, 99)  # more than all: all
    assert byte_range(b"bytes=0-" + nines, 100) == (0, 99)
    with pytest.raises(RangeNotSatisfiable):
        byte_range(b"bytes=" + nines + b"-", 100)
    assert byte_range(b"bytes=" + b"0" * 60 + b"5-", 100) == (5, 99)  # leading zeros
    # The values: over the length limit, ignored (a 200 with everything).
    assert byte_range(b"bytes=-" + b"9" * 4400, 100) is None
    assert byte_range(b"bytes=0-" + b" " * 15500 + b"x", 100) is None
    assert byte_range("bytes=0-\u0663".encode(), 100) is None  # only ASCII digits


def test_etag_and_accept_encoding_limits() -> None:
    tag = b'"0123456789abcdef0123456789abcdef"'
    assert etag_matches(b'"a", W/' + tag, tag) and etag_matches(b" * ", tag)
    assert not etag_matches(b"," * (MAX_ETAGS + 1) + tag, tag)  # too long: no match
    assert etag_matches(tag, tag)  # the fast path, whatever the length rule
    assert not if_range_matches(b"W/" + tag, tag) and if_range_matches(b" " + tag, tag)
    assert encoding_preferences(b"br, " + b" " * MAX_ACCEPT_ENCODING) == (b"identity",)
    assert encoding_preferences(b"gzip;q=0." + b"9" * 400) == (b"gzip", b"identity")


# -- Accept-Encoding -----------------------------------------------------------

codings = st.sampled_from(["gzip", "br", "identity", "*", "deflate", "x-gzip", "GZip", "zstd"])
qs = st.sampled_from(["", ";q=0", ";q=0.5", ";q=1", ";q=0.001", ";q=bad", ";q=2", " ; q=0.8"])


@given(st.lists(st.tuples(codings, qs), max_size=6))
def test_encoding_preferences(parts: list[tuple[str, str]]) -> None:
    header = ", ".join(c + q for c, q in parts).encode()
    prefs = encoding_preferences(header)
    assert len(set(prefs)) == len(prefs) and set(prefs) <= {b"br", b"gzip", b"identity"}
    named = {}
    for coding, q in parts:
        name = {"x-gzip": "gzip"}.get(coding.lower(), coding.lower())
        named.setdefault(name, q)
    # Something explicitly refused is never chosen.
    for coding in ("gzip", "br", "identity"):
        if named.get(coding, "").replace(" ", "") in (";q=0", ";q=bad", ";q=2"):
            assert coding.encode() not in prefs
    # A compression the client names with q > 0 beats unnamed identity.
    if "identity" not in named and named.get("*", "").replace(" ", "") not in (
        ";q=0",
        ";q=bad",
        ";q=2",
    ):
        assert prefs[-1] == b"identity"


def test_encoding_preferences_examples() -> None:
    assert encoding_preferences(b"gzip, deflate, br, zstd") == (b"br", b"gzip", b"identity")
    assert encoding_preferences(b"") == (b"identity",)
    assert encoding_preferences(b"identity;q=1, gzip;q=0.5") == (b"identity", b"gzip")
    assert encoding_preferences(b"*;q=0") == ()


# -- a prepared site -----------------------------------------------------------


def _get(
    site: StaticSite, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "method": method,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    status, sent, body = site.respond(Request.from_scope(scope, path))
    return status, dict(sent), body


def _call(site: StaticSite, scope: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    # A thread of its own: Playwright's sync API (the session browser) keeps an
    # event loop running in the main thread, where asyncio.run() refuses to run.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, site(scope, None, send)).result(timeout=30)  # type: ignore[arg-type]
    return messages


@pytest.fixture(scope="module")
def files(showcase_build: Built, cache_dir: Path) -> ArtifactFiles:
    artifact = Cache(cache_dir).open(showcase_build.key)
    assert artifact is not None
    return _served(artifact)


def _served(artifact: Artifact) -> ArtifactFiles:
    """What a host serves: the bytes verified against the manifest, read once."""
    return ArtifactFiles(artifact, read_verified(artifact))


@pytest.mark.parametrize("prefix", ["", "/admin", "/a/b/c"])
def test_every_file_every_variant(files: ArtifactFiles, prefix: str) -> None:
    """Length, ETag, encodings and rewrite are right for every file of the artifact."""
    site = StaticSite(files, prefix, "")
    etags: set[bytes] = set()
    for url in files.raw:
        status, headers, body = _get(site, url, {"Accept-Encoding": "identity"})
        assert status == 200 and int(headers[b"content-length"]) == len(body)
        assert SENTINEL_BYTES not in body, url
        etags.add(headers[b"etag"])
        for accept, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
            _, variant, packed = _get(site, url, {"Accept-Encoding": accept})
            if variant.get(b"content-encoding") == accept.encode():
                assert decode(packed) == body, url
                assert variant[b"etag"] != headers[b"etag"]
                assert variant[b"vary"] == b"Accept-Encoding"
                assert int(variant[b"content-length"]) == len(packed) < len(body)
        if url.endswith(".html"):
            assert b'<meta name="reflex-buildd" data-prefix="' + prefix.encode() + b'"' in body
    assert len(etags) >= len({r.digest for r in files.raw.values()}) - 1


def test_sites_share_unrewritten_bytes(files: ArtifactFiles) -> None:
    """Only rewritten files cost memory per prefix (serving is cheap)."""
    one, two = StaticSite(files, "/one"), StaticSite(files, "/two")
    for url, raw in files.raw.items():
        same = one.resolve(url).identity.body is two.resolve(url).identity.body
        assert same == (not raw.sentinels and not url.endswith(".html")), url


def _copy_artifact(files: ArtifactFiles, tmp_path: Path) -> Artifact:
    target = tmp_path / "artifact"
    shutil.copytree(files.artifact.path, target, symlinks=True)
    return Artifact(path=target, manifest=files.artifact.manifest)


@pytest.mark.parametrize(
    "link", ["/etc/passwd", "../../outside.txt", "../../../../../../etc/hostname"]
)
def test_symlink_out_of_the_artifact_is_refused(
    files: ArtifactFiles, tmp_path: Path, link: str
) -> None:
    artifact = _copy_artifact(files, tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    (artifact.path / "public" / "leak.txt").symlink_to(link)
    manifest = dataclasses.replace(
        artifact.manifest,
        files={**artifact.manifest.files, "public/leak.txt": FileEntry("0" * 64, 6, "text/plain")},
    )
    with pytest.raises(CorruptArtifactError, match="symlink"):
        _served(Artifact(artifact.path, manifest))


def test_dotdot_in_manifest_is_refused(files: ArtifactFiles, tmp_path: Path) -> None:
    artifact = _copy_artifact(files, tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    manifest = dataclasses.replace(
        artifact.manifest,
        files={
            **artifact.manifest.files,
            "public/../../outside.txt": FileEntry("0" * 64, 6, "text/plain"),
        },
    )
    with pytest.raises(CorruptArtifactError, match="not a path inside the artifact"):
        _served(Artifact(artifact.path, manifest))


def test_symlink_inside_the_artifact_is_refused(files: ArtifactFiles, tmp_path: Path) -> None:
    artifact = _copy_artifact(files, tmp_path)
    (artifact.path / "public" / "alias.png").symlink_to("logo.png")
    entry = artifact.manifest.files["public/logo.png"]
    manifest = dataclasses.replace(
        artifact.manifest, files={**artifact.manifest.files, "public/alias.png": entry}
    )
    # Publish writes regular files only, so a symlink is never an artifact's
    # own file, even one pointing inside: what it points to can change under
    # the host after verification.
    with pytest.raises(CorruptArtifactError, match=r"alias\.png is a symlink"):
        _served(Artifact(artifact.path, manifest))


def test_unlisted_files_are_not_served(files: ArtifactFiles, tmp_path: Path) -> None:
    artifact = _copy_artifact(files, tmp_path)
    (artifact.path / "public" / "planted.txt").write_text("not in the manifest")
    site = StaticSite(_served(artifact), "/admin")
    assert _get(site, "/planted.txt")[0] == 404


def test_prepared_prefixes_are_bounded(showcase_build: Built, cache_dir: Path) -> None:
    """A hostile stream of (valid) forwarded prefixes cannot grow memory without bound."""
    mount = ReflexMount(SHOWCASE, cache_dir=cache_dir)
    mount.open_artifact()
    for i in range(_MAX_PREFIXES + 20):
        assert mount.site(f"/p{i}").prefix == f"/p{i}"
    assert len(mount._sites) == _MAX_PREFIXES
    # The most recently used are the ones kept.
    assert mount.site(f"/p{_MAX_PREFIXES + 19}") is mount.site(f"/p{_MAX_PREFIXES + 19}")


def test_site_is_a_plain_asgi_app(files: ArtifactFiles) -> None:
    """``StaticSite(scope, receive, send)``: the path comes from the scope, under its root_path."""
    site = StaticSite(files, "/admin")
    scope = {
        "type": "http",
        "method": "GET",
        "root_path": "/admin",
        "path": "/admin/",
        "headers": [(b"accept-encoding", b"identity")],
    }
    start, body = _call(site, scope)
    assert start["status"] == 200 and b'data-prefix="/admin"' in body["body"]
    start, _ = _call(site, {**scope, "path": "/admin/no/such/file.js"})
    assert start["status"] == 404
    assert _call(site, {"type": "websocket", "path": "/admin/"}) == []
