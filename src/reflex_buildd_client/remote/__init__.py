"""Shared core: the remote tier, an S3-compatible object store behind the local cache.

``bucket`` holds its settings, its object layout and the one edge that talks to S3;
``envelope`` the signed form of a manifest and every check made on it; ``pull`` downloads an
artifact into the local cache, verified.

May import: ``cache``, ``keys`` and the top-level foundation.
"""
