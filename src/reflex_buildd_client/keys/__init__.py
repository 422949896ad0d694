"""Shared core: what a build's key is made of, and the key itself.

The builder and every host compute the same key from the same project, so all of it lives
here: which files are inputs (``walk``, ``ignore``, ``tempfiles``, ``declarations``), their
digests (``hashing``, ``statcache``), the versions and the JS runtime a build depends on
(``distributions``, ``runtime``), the canonical encoding and blake3 key (``schema``), the
whole collection from disk (``sources``) and why two keys differ (``diff``).

May import: the package's top-level foundation (``errors``, ``settings``, ``project``,
``units``) and ``cache`` (where the stat cache lives).
"""
