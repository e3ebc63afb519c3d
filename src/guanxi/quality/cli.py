"""The `guanxi quality` commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `quality` command group to the main command."""
    group = typer.Typer(help="quality", no_args_is_help=True)
    app.add_typer(group, name="quality")
