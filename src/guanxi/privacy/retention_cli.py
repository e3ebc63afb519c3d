"""``guanxi retention preview|run|report``: the retention purge from the command line
(cron, or by hand before the first daily run)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from guanxi.privacy.retention import RunRead

retention_app = typer.Typer(help="Retention periods and the purge.", no_args_is_help=True)
console = Console(stderr=True)


def _show(run: RunRead) -> None:
    table = Table(title=f"{'preview' if run.dry_run else 'purge'} #{run.id} ({run.status})")
    for column in ("category", "keep days", "older than", "rows", "files", "bytes", "oldest kept"):
        table.add_column(column)
    for r in run.report:
        table.add_row(
            r.category,
            str(r.keep_days),
            r.cutoff.date().isoformat(),
            str(r.rows),
            str(r.files),
            str(r.bytes),
            r.oldest_kept.date().isoformat() if r.oldest_kept else "",
        )
    console.print(table)


def _run(dry_run: bool) -> None:
    from guanxi.audit.service import Actor
    from guanxi.cli import _engine
    from guanxi.config import get_settings
    from guanxi.core.db import make_sessionmaker
    from guanxi.privacy.retention import get_run, run_purge

    with make_sessionmaker(_engine())() as session:
        result = run_purge(
            session,
            actor=Actor.system("cli"),
            trigger="cli",
            settings=get_settings(),
            dry_run=dry_run,
        )
        _show(get_run(session, result.run.id))


@retention_app.command("preview")
def preview() -> None:
    """Count what a purge would remove now, per category (nothing is removed)."""
    _run(dry_run=True)


@retention_app.command("run")
def run() -> None:
    """Purge what is past its retention period (resumes an unfinished purge)."""
    _run(dry_run=False)


@retention_app.command("report")
def report(
    run_id: Annotated[int | None, typer.Argument(help="a run's number; the newest purge")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output")] = False,
) -> None:
    """Show a purge's report (the newest purge by default)."""
    from guanxi.cli import _engine
    from guanxi.core.db import make_sessionmaker
    from guanxi.core.errors import NotFound
    from guanxi.privacy.retention import get_run, latest_run, report_csv

    with make_sessionmaker(_engine())() as session:
        try:
            shown = get_run(session, run_id) if run_id else latest_run(session, dry_run=False)
        except NotFound:
            shown = None
    if shown is None:
        console.print("[yellow]no such purge run[/yellow]")
        raise typer.Exit(1)
    if csv:
        sys.stdout.write(report_csv(shown))
        return
    _show(shown)


def register(app: typer.Typer) -> None:
    """Add ``guanxi retention`` to the command."""
    app.add_typer(retention_app, name="retention")
