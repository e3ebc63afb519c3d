"""``guanxi analytics``: recompute the analytics and fit models from the shell."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the ``analytics`` command group to the main command."""
    group = typer.Typer(
        help="Customer analytics: classes, CLV, churn, forecasts.", no_args_is_help=True
    )
    app.add_typer(group, name="analytics")
