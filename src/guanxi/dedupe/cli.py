"""The `guanxi dedupe` commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `dedupe` command group to the main command."""
    group = typer.Typer(help="dedupe", no_args_is_help=True)
    app.add_typer(group, name="dedupe")
