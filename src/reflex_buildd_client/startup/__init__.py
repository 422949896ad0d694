"""Shared core: how a process obtains the artifact of a key at startup.

Wait for it (``wait``), build it once under the lock (``builder``, the injected builder),
notice that no daemon is there (``nodaemon``), and check it out for serving: obtain, lease,
read verified (``checkout``).

May import: ``cache``, ``keys``, ``remote`` and the top-level foundation.
"""
