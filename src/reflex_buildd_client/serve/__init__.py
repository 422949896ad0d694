"""Host side: serving an artifact's files under a mount prefix.

``prefix`` is the one prefix rule; ``rewrite`` the per-prefix byte rewrites and ``<meta>``
injection; ``headers`` the request-header parsers; ``routes`` page-route matching;
``static`` the plain-ASGI static site; ``redirect`` the bare-path redirect.

May import: ``cache`` and the top-level foundation. The builder imports only
``rewrite.SENTINEL`` and ``prefix`` from here.
"""
