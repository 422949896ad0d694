"""reflex-buildd: build Reflex apps once, prefix-independently, into a shared cache.

The daemon and CLI side. The shared contract (keys, cache layout, manifests)
lives in :mod:`reflex_buildd_client`, which this package builds on.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
