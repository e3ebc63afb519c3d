"""``guanxi loyalty``: accrual with a progress bar, the ledger == balances check, tier
evaluation and the daily run, for operators and the benchmark."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``loyalty`` command group to the main command."""
    group = typer.Typer(help="Loyalty: points accrual, checks, tiers.", no_args_is_help=True)
    app.add_typer(group, name="loyalty")

    @group.command("accrue")
    def accrue_command(
        chunk: Annotated[
            int | None,
            typer.Option(
                min=100,
                max=5_000_000,
                help="shipments per transaction (default 1,000,000; PostgreSQL 5,000,000)",
            ),
        ] = None,
        from_id: Annotated[
            int | None,
            typer.Option(
                "--from", min=0, help="move the watermark back first (nothing is credited twice)"
            ),
        ] = None,
        evaluate_tiers: Annotated[
            bool, typer.Option("--tiers/--no-tiers", help="evaluate the members credited")
        ] = True,
    ) -> None:
        """Credit the shipments since the last run (resumable: stop it at any time)."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core.db import make_sessionmaker
        from guanxi.loyalty.accrual import accrue, reset_watermark
        from guanxi.loyalty.tiers import evaluate

        settings = get_settings()
        with make_sessionmaker(_engine())() as session:
            if from_id is not None:
                reset_watermark(session, to=from_id)
            with Progress(
                TextColumn("accrual"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(), console=console,
            ) as bar:  # fmt: skip
                task = bar.add_task("accrual", total=None)
                result = accrue(
                    session,
                    chunk=chunk,
                    tz=settings.timezone,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            figures = result.figures()
            rate = result.shipments / result.seconds if result.seconds else 0.0
            console.print(
                f"{result.entries:,} ledger rows, {result.points:,} points, "
                f"{result.members:,} new members in {result.seconds:.1f}s ({rate:,.0f} shipments/s)"
            )
            if evaluate_tiers and result.chunks:
                outcome = evaluate(session)
                figures["tiers"] = outcome.figures()
        sys.stdout.write(json.dumps(figures) + "\n")

    @group.command("verify")
    def verify_command() -> None:
        """Compare every member's balance with the ledger; exit 1 on any difference."""
        from guanxi.cli import _engine
        from guanxi.core.db import make_sessionmaker
        from guanxi.loyalty.ledger import verify_balances

        with make_sessionmaker(_engine())() as session:
            check = verify_balances(session)
        sys.stdout.write(
            json.dumps(
                {
                    "ok": check.ok,
                    "members": check.members,
                    "entries": check.entries,
                    "balance_total": check.balance_total,
                    "ledger_total": check.ledger_total,
                    "differences": check.differences[:20],
                    "lifetime_differences": check.lifetime_differences[:20],
                }
            )
            + "\n"
        )
        if not check.ok:
            console.print(f"[red]{len(check.differences)} balances differ from the ledger[/red]")
            raise typer.Exit(1)

    @group.command("daily")
    def daily_command(
        force: Annotated[bool, typer.Option(help="run even if today's run is done")] = False,
    ) -> None:
        """Points expiry, every member's tier, coupon expiry (what the worker does daily)."""
        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core.db import make_sessionmaker
        from guanxi.loyalty.jobs import run_daily

        with make_sessionmaker(_engine())() as session:
            outcome = run_daily(session, tz=get_settings().timezone, force=force)
        sys.stdout.write(json.dumps({"ran": outcome.ran, **outcome.figures}) + "\n")
