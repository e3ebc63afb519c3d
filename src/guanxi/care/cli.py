"""``guanxi care``: run the daily care rules from the shell (cron, catching up a day)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``care`` command group to the main command."""
    group = typer.Typer(
        help="Customer care: birthday and festival greetings.", no_args_is_help=True
    )
    app.add_typer(group, name="care")

    @group.command("run")
    def run_command(
        day: Annotated[
            str | None, typer.Option("--date", help="local day YYYY-MM-DD (default: today)")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="count who would be greeted; write nothing")
        ] = False,
    ) -> None:
        """Run the switched-on rules for a day; rules that already ran that day are skipped."""
        from zoneinfo import ZoneInfo

        from guanxi.care.run import run_day
        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core import clock
        from guanxi.core.db import make_sessionmaker

        settings = get_settings()
        if day is None:
            chosen = clock.now().astimezone(ZoneInfo(settings.timezone)).date()
        else:
            try:
                chosen = date.fromisoformat(day)
            except ValueError:
                console.print(f"[red]--date: not a date like 2026-10-01: {day!r}[/red]")
                raise typer.Exit(2) from None
        engine = _engine()
        with make_sessionmaker(engine)() as session:
            result = run_day(session, day=chosen, dry_run=dry_run)
        title = f"care run {chosen.isoformat()}" + (" (dry run)" if dry_run else "")
        typer.echo(title)
        for o in result.outcomes:
            f = o.figures
            figures = ", ".join(
                f"{label} {f.get(key, 0)}"
                for key, label in (
                    ("eligible", "eligible"),
                    ("queued", "queued"),
                    ("capped", "capped"),
                    ("no_consent", "no consent"),
                    ("no_contact", "no contact"),
                    ("outside_audience", "outside audience"),
                )
            )
            typer.echo(
                f"rule {o.rule_id} {o.name} · occasion {o.occasion.isoformat()} · {o.status}"
                + (f": {figures} ({o.seconds:.1f} s)" if o.status != "skipped" else "")
            )
        engine.dispose()
