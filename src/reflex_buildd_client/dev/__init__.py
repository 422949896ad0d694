"""Host side of dev mode: a mount that forwards to ``reflex-buildd dev``'s servers.

``target`` reads where the dev servers listen (the ``REFLEX_BUILDD_DEV`` contract);
``proxy`` forwards the browser's requests to them under the prefix.

May import: ``serve`` and the top-level foundation.
"""
