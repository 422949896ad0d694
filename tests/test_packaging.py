"""What a package index shows: the README (absolute links only), the license, the URLs."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
README = REPO / PYPROJECT["project"]["readme"]


def test_readme_links_are_absolute_and_point_at_files_that_exist() -> None:
    base = PYPROJECT["project"]["urls"]["Repository"].rstrip("/") + "/blob/main/"
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    assert links
    for link in links:
        # An index page renders the README away from the repository: a
        # relative link there goes nowhere.
        assert link.startswith(("https://", "http://")), link
        if link.startswith(base):
            target = link[len(base) :].split("#", 1)[0]
            assert (REPO / target).exists(), f"{link}: no {target} in the repository"


def test_license_is_the_full_apache_text_and_is_shipped() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "LICENSE" in PYPROJECT["project"]["license-files"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    for section in ("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "9. Accepting"):
        assert section in text
    assert "END OF TERMS AND CONDITIONS" in text
