"""The manifest format: what an artifact holds and how it was made (pure).

Written last into an artifact (its completion marker) and read first; where it
lives is :mod:`.store`'s business. Every file with its blake3 digest, size,
content type and sentinel count; the key's inputs (so two keys can be
explained); build facts; the route table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptArtifactError
from ..keys.schema import KeyInputs

__all__ = ["MANIFEST_FORMAT", "FileEntry", "Manifest"]

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact as the manifest records it."""

    digest: str
    size: int
    content_type: str
    sentinels: int = 0


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and how it was made (written last, read first)."""

    key: str
    created: float
    project: dict[str, str]
    inputs: KeyInputs
    build: dict[str, Any]
    files: dict[str, FileEntry]
    routes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored in ``manifest.json``."""
        return {
            "format": MANIFEST_FORMAT,
            "key": self.key,
            "created": self.created,
            "project": self.project,
            "inputs": self.inputs.to_json(),
            "build": self.build,
            "routes": self.routes,
            "files": {
                path: {
                    "digest": e.digest,
                    "size": e.size,
                    "type": e.content_type,
                    "sentinels": e.sentinels,
                }
                for path, e in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Parse a stored manifest.

        Raises:
            CorruptArtifactError: If the data is not a manifest this version reads.
        """
        try:
            if data["format"] != MANIFEST_FORMAT:
                raise CorruptArtifactError(f"unknown manifest format {data['format']!r}")
            return cls(
                key=str(data["key"]),
                created=float(data["created"]),
                project=dict(data["project"]),
                inputs=KeyInputs.from_json(data["inputs"]),
                build=dict(data["build"]),
                routes=[str(r) for r in data.get("routes", [])],
                files={
                    str(path): FileEntry(
                        digest=str(e["digest"]),
                        size=int(e["size"]),
                        content_type=str(e["type"]),
                        sentinels=int(e.get("sentinels", 0)),
                    )
                    for path, e in data["files"].items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CorruptArtifactError):
                raise
            raise CorruptArtifactError(f"malformed manifest: {exc!r}") from exc
