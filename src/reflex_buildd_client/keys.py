"""Pure key computation: build inputs -> canonical bytes -> blake3 key.

No I/O here (see :mod:`reflex_buildd_client.sources` for that), so the daemon,
the CLI and every host compute the key the same way from the same inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import blake3

__all__ = ["KEY_SCHEMA", "KeyInputs", "canonical_bytes", "key_of"]

# Bumped whenever the meaning of the encoding changes, so that a new version can
# never produce an old key for different inputs.
KEY_SCHEMA = 1

# 128 bits: far past any collision risk for one cache, short enough for paths.
_KEY_HEX_CHARS = 32


@dataclass(frozen=True)
class KeyInputs:
    """Everything that can change the output of a build.

    Attributes:
        files: Project-relative POSIX path -> blake3 hex digest of the content.
        versions: Distribution name -> installed version (reflex, its packages).
        js_runtime: Name and version of the JS runtime, e.g. ``"bun@1.4.4"``.
        env: Variable name -> blake3 hex digest of its value (values are never
            stored in clear: they may be secrets).
        settings: Build settings of reflex-buildd itself (sentinel, patch digest).
    """

    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    js_runtime: str = ""
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The inputs as a JSON-ready mapping (the form stored in manifests)."""
        return {
            "schema": KEY_SCHEMA,
            "files": dict(sorted(self.files.items())),
            "versions": dict(sorted(self.versions.items())),
            "js_runtime": self.js_runtime,
            "env": dict(sorted(self.env.items())),
            "settings": dict(sorted(self.settings.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyInputs:
        """Read inputs back from :meth:`to_json` output."""
        return cls(
            files=dict(data.get("files", {})),
            versions=dict(data.get("versions", {})),
            js_runtime=str(data.get("js_runtime", "")),
            env=dict(data.get("env", {})),
            settings=dict(data.get("settings", {})),
        )


def canonical_bytes(inputs: KeyInputs) -> bytes:
    """Encode inputs unambiguously: sorted keys, fixed separators, UTF-8.

    JSON quoting makes every string self-delimiting, so no choice of file names
    can make two different input sets encode to the same bytes.
    """
    return json.dumps(
        inputs.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def key_of(inputs: KeyInputs) -> str:
    """The cache key of a set of build inputs."""
    return blake3.blake3(canonical_bytes(inputs)).hexdigest()[:_KEY_HEX_CHARS]
