"""The ``smollab`` command line (typer + rich), one module per command."""
