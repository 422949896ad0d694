"""Shared core: a project's build inputs, collected from disk and the environment.

What the key of a project is computed from: its files (``sources``, through
:mod:`reflex_buildd_client.keys`' walk and digests), the installed versions a build depends
on (``distributions``), the extra inputs a user declares (``declarations``) and the JS
runtime the key names (``runtime``). ``compute_key`` in ``sources`` is the whole thing.

May import: ``keys``, ``cache`` (the stat cache and the versions index live there), and the
top-level foundation (``settings``, ``project``, ``errors``).
"""
