"""The ``chronorec`` command line (typer): one module per command group, one error handler."""

from chronorec.cli.main import app

__all__ = ["app"]
