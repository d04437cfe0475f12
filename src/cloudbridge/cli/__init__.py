"""The ``cloudbridge`` command line: a thin typer layer over the SDK.

:mod:`cloudbridge.cli.main` builds the root app; each command module in
:data:`cloudbridge.cli.main.COMMAND_MODULES` adds its commands through ``register(app)``, and
plugins add theirs through the ``cloudbridge_register_commands(app)`` hook. Command modules import
only typer and the standard library at module level, so ``cloudbridge --help`` stays fast.
"""
