"""Pure key computation: build inputs -> canonical bytes -> blake3 key.

No I/O here (see :mod:`reflex_buildd_client.inputs.sources` for that), so the daemon,
the CLI and every host compute the key the same way from the same inputs.

Nothing in the inputs names the machine or where the project lives: files are
keyed by project-relative POSIX paths, so a copy of a project elsewhere has the
same key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import blake3

__all__ = ["KEY_SCHEMA", "KeyInputs", "canonical_bytes", "digest_env_value", "key_of"]

# Bumped whenever the meaning of the encoding changes, so that a new version can
# never produce an old key for different inputs.
# 2: env values may be None (a declared variable that is unset), env digests are
#    domain-separated, the encoding is ASCII-only.
# 3: js_runtime is the runtime builds are required to use (a setting, the same
#    on every machine), no longer the one found on the machine that keys.
KEY_SCHEMA = 3

# blake3's key-derivation mode gives env digests their own domain: a digest in
# a manifest is not the plain blake3 of a value someone may look up elsewhere.
_ENV_CONTEXT = "reflex-buildd 2025 environment variable value v1"

# 128 bits: far past any collision risk for one cache, short enough for paths.
_KEY_HEX_CHARS = 32


@dataclass(frozen=True)
class KeyInputs:
    """Everything that can change the output of a build.

    Attributes:
        files: Project-relative POSIX path -> blake3 hex digest of the content.
        versions: Distribution name -> installed version (reflex, its packages).
        js_runtime: Name and version of the JS runtime every build of this key
            uses, e.g. ``"bun@1.4.4"`` (:func:`.runtime.runtime_identity`).
        env: Variable name -> :func:`digest_env_value` of its value, or None
            for a declared variable that is unset (values are never stored in
            clear: they may be secrets).
        settings: Build settings of reflex-buildd itself (sentinel, patch digest).
        schema: The :data:`KEY_SCHEMA` these inputs were collected under.
    """

    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    js_runtime: str = ""
    env: dict[str, str | None] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    schema: int = KEY_SCHEMA

    def to_json(self) -> dict[str, Any]:
        """The inputs as a JSON-ready mapping (the form stored in manifests)."""
        return {
            "schema": self.schema,
            "files": dict(sorted(self.files.items())),
            "versions": dict(sorted(self.versions.items())),
            "js_runtime": self.js_runtime,
            "env": dict(sorted(self.env.items())),
            "settings": dict(sorted(self.settings.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyInputs:
        """Read inputs back from :meth:`to_json` output.

        Raises:
            TypeError: If a field has the wrong type (inputs come from
                manifests, which anyone who can write the cache may have written).
        """
        if not isinstance(data, dict):
            raise TypeError(f"inputs are a {type(data).__name__}, not an object")
        schema = data.get("schema", 1)
        if isinstance(schema, bool) or not isinstance(schema, int):
            raise TypeError(f"inputs schema {schema!r} is not a number")
        return cls(
            files=_strings(data.get("files", {}), "files"),
            versions=_strings(data.get("versions", {}), "versions"),
            js_runtime=_text(data.get("js_runtime", ""), "js_runtime"),
            env=_strings(data.get("env", {}), "env", none_ok=True),
            settings=_strings(data.get("settings", {}), "settings"),
            schema=schema,
        )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"inputs {what} is a {type(value).__name__}, not a string")
    return value


def _strings(value: Any, what: str, *, none_ok: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"inputs {what} are a {type(value).__name__}, not an object")
    for name, item in value.items():
        _text(name, what)
        if not (none_ok and item is None):
            _text(item, f"{what} {name!r}")
    return dict(value)


def canonical_bytes(inputs: KeyInputs) -> bytes:
    """Encode inputs unambiguously: sorted keys, fixed separators, ASCII.

    JSON quoting makes every string self-delimiting, so no choice of file names
    can make two different input sets encode to the same bytes (the encoding
    decodes back to the inputs: see the property tests). ASCII escapes keep
    file names that are not valid UTF-8 (surrogate-escaped by Python) encodable.
    """
    return json.dumps(
        inputs.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def key_of(inputs: KeyInputs) -> str:
    """The cache key of a set of build inputs."""
    return blake3.blake3(canonical_bytes(inputs)).hexdigest()[:_KEY_HEX_CHARS]


def digest_env_value(name: str, value: str) -> str:
    """The digest of an environment variable's value, as stored in the inputs.

    The name is hashed too, length-prefixed, so equal values of different
    variables do not reveal that they are equal.
    """
    hasher = blake3.blake3(derive_key_context=_ENV_CONTEXT)
    name_bytes = name.encode("utf-8", "surrogateescape")
    hasher.update(len(name_bytes).to_bytes(8, "big") + name_bytes)
    hasher.update(value.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()
