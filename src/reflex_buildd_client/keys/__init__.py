"""Shared core: the key itself, and the files it is made of.

The canonical encoding of a build's inputs and its blake3 key (``schema``), which files of a
project are inputs (``walk``, ``ignore``, ``tempfiles``), their digests memoized by stat
identity (``hashing``, ``statcache``), and why two keys differ (``diff``). Pure or reading
only the project: :mod:`reflex_buildd_client.inputs` puts it together with the cache and
the environment.

May import: ``project`` and ``errors`` only, so that the cache's manifest format can record
a key's inputs.
"""
