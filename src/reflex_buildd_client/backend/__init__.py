"""Host side: the mounted app's Reflex backend.

In the host process (``inprocess``, with ``reflex_config`` and the ``lifespan`` protocol),
or Reflex's own backend in a child process (``process``, ``child``), reached through the
``forward``-er; ``choice`` picks the mode and ``routes`` asks the backend's router which
paths are its own.

May import: ``cache``, ``serve`` and the top-level foundation.
"""
