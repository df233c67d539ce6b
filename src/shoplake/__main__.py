"""`python -m shoplake`: the same command line as the `shoplake` script."""

from shoplake.cli import app

app()
