"""Pure: trust namespaces, the remote's unit of write access.

Each namespace is one folder below the remote's prefix, holding its own blobs
and manifests (``<prefix>/<namespace>/v1/...``), so a bucket policy grants
each CI role exactly one folder: pull requests build into ``pr-<n>``, the
main branch's CI into ``main``, and hosts read only the namespaces they are
told to (``REFLEX_BUILDD_READ_NAMESPACES``, default ``main``).

Blobs are content-addressed but still kept per namespace, not shared: a
writer of a shared blob folder could plant bytes under a digest another
namespace will need; the pusher of that namespace would find the name taken
and skip it, and every host would then refuse the artifact. Refused, never
served, but a writer of ``pr-7`` could keep ``main`` from deploying. Per
namespace, a writer can only spoil its own. Promotion copies the (verified)
blobs a target lacks.

A namespace name is one safe path segment: letters, digits, ``.``, ``_``,
``-``, at most 64 characters, not ``.`` or ``..``, and not ``v<digits>``,
which would read the layout of remotes written before namespaces existed
(``<prefix>/v1/...``).
"""

from __future__ import annotations

import re

from ..errors import InvalidConfigError

__all__ = [
    "DEFAULT_NAMESPACE",
    "READ_NAMESPACES_VAR",
    "WRITE_NAMESPACE_VAR",
    "namespace",
    "namespaces",
]

DEFAULT_NAMESPACE = "main"
WRITE_NAMESPACE_VAR = "REFLEX_BUILDD_REMOTE_NAMESPACE"
READ_NAMESPACES_VAR = "REFLEX_BUILDD_READ_NAMESPACES"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LAYOUT = re.compile(r"v[0-9]+")


def namespace(value: str, setting: str = WRITE_NAMESPACE_VAR) -> str:
    """Validate one namespace name (empty: the default).

    Raises:
        InvalidConfigError: It is not a single safe path segment.
    """
    name = value.strip() or DEFAULT_NAMESPACE
    if not _NAME.fullmatch(name) or ".." in name or _LAYOUT.fullmatch(name):
        raise InvalidConfigError(
            f"{setting}={value!r}: a namespace is one path segment of letters, digits, "
            "'.', '_' and '-' (at most 64, starting with a letter or digit, not v<digits>), "
            "e.g. main or pr-123"
        )
    return name


def namespaces(value: str, setting: str = READ_NAMESPACES_VAR) -> tuple[str, ...]:
    """Validate a comma-separated list of namespaces, in order, each once (empty: the default).

    Raises:
        InvalidConfigError: One of them is not a single safe path segment.
    """
    found: list[str] = []
    for part in value.split(","):
        if part.strip() and (name := namespace(part, setting)) not in found:
            found.append(name)
    return tuple(found) or (DEFAULT_NAMESPACE,)
