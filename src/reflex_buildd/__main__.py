"""``python -m reflex_buildd``: the same as the ``reflex-buildd`` command."""

from reflex_buildd.cli import main

main()
