"""``python -m cloudbridge.cli``: the same as the ``cloudbridge`` console script."""

from cloudbridge.cli.main import main

main()
