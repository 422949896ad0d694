"""Shared core: the cache directory that builders write and hosts read.

``store`` is the one owner of the layout (every path, every durable write); ``manifest`` is
the artifact's format; ``status`` the build records and journal; ``lease`` which live hosts
use which artifact; ``verify`` the check of an artifact against its manifest; ``blobs`` the
install of a staged artifact; ``scratch`` the names of temp directories.

May import: the top-level foundation and ``keys.schema``.
"""
