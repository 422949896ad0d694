"""The package's description: README.md, with links that work away from the checkout.

README.md links to the documentation with relative links (``docs/tutorial.md``),
which work in a checkout, offline, and on any forge that hosts it. A package
index renders the description away from the files, where a relative link goes
nowhere, and the project has no public repository to make them absolute
against. So the description an index shows is README.md with every relative
link written out as its text and the path in the source distribution
(``Tutorial (docs/tutorial.md)``); absolute links stay links. Hatchling runs
this hook at every build (``[tool.hatch.metadata.hooks.custom]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

__all__ = ["CustomMetadataHook", "package_description"]

# [text](target): text may span lines; a target has no spaces.
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def package_description(readme: str) -> str:
    """``readme`` with each relative link replaced by ``text (path)``."""

    def plain(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            return match.group(0)
        path = target.split("#", 1)[0]
        if not path or text.strip("`") == path:
            return text
        return f"{text} ({path})"

    return _LINK.sub(plain, readme)


class CustomMetadataHook(MetadataHookInterface):
    """Sets ``readme`` (declared dynamic in pyproject.toml) from README.md."""

    def update(self, metadata: dict[str, Any]) -> None:
        readme = Path(self.root, "README.md").read_text(encoding="utf-8")
        metadata["readme"] = {"content-type": "text/markdown", "text": package_description(readme)}
