"""Links that work in a checkout, offline; what a package index shows; the license.

README.md and docs/ link to each other with relative links, so a checkout (or
an unpacked source distribution) reads offline. The package description an
index shows is README.md with those links written out as paths
(``hatch_build.py``): there, a relative link would go nowhere.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
# [text](target), text may span lines.
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        out.add(slug.replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_link_resolves_in_the_checkout(doc: Path) -> None:
    text = doc.read_text()
    for _text, target in _LINK.findall(text):
        # The project has no public repository: no link may pretend it has one.
        assert "github.com/reflex-buildd" not in target, f"{doc.name}: {target}"
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https://reflex.dev and the like
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.relative_to(REPO)}: {target} -> no {file}"
        assert file.is_relative_to(REPO), f"{doc.name}: {target} leaves the checkout"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file.read_text()), f"{doc.name}: no #{anchor} in {file.name}"


def test_the_package_description_has_no_relative_links() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["readme"]
    assert "readme" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["hatch"]["metadata"]["hooks"]["custom"] == {}
    sys.path.insert(0, str(REPO))  # hatch_build.py, as hatchling loads it (test extra)
    try:
        from hatch_build import package_description
    finally:
        sys.path.remove(str(REPO))
    readme = (REPO / "README.md").read_text()
    described = package_description(readme)
    assert [t for _, t in _LINK.findall(described) if not t.startswith("https://")] == []
    assert "Tutorial (docs/tutorial.md)" in described
    assert "[Reflex](https://reflex.dev)" in described


def test_no_project_urls_to_a_repository_that_does_not_exist() -> None:
    for url in PYPROJECT["project"].get("urls", {}).values():
        assert "github.com/reflex-buildd" not in url, url


def test_license_is_the_full_apache_text_and_is_shipped() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "LICENSE" in PYPROJECT["project"]["license-files"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    for section in ("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "9. Accepting"):
        assert section in text
    assert "END OF TERMS AND CONDITIONS" in text
