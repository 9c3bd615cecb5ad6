"""``python -m xdv`` is the ``xdv`` command."""

from xdv.cli import main

main()
