"""``guanxi keys``: generate a field-encryption key, rotate every stored value onto the
active key (online, resumable), and count the values per key id."""

from __future__ import annotations

import base64
import json
import secrets
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to the main command."""
    group = typer.Typer(
        help="Field-encryption keys: generate, rotate, status.", no_args_is_help=True
    )
    app.add_typer(group, name="keys")

    @group.command("generate")
    def generate_command() -> None:
        """Print a new random 256-bit key (base64) to add to GUANXI_FIELD_KEYS."""
        sys.stdout.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        console.print(
            'add it as {"<new id>": "<key>"} to GUANXI_FIELD_KEYS, make <new id> '
            "GUANXI_ACTIVE_FIELD_KEY, restart the servers, then run guanxi keys rotate"
        )

    @group.command("rotate")
    def rotate_command(
        batch: Annotated[
            int, typer.Option(min=10, max=20_000, help="values per transaction")
        ] = 2000,
        column: Annotated[
            list[str] | None,
            typer.Option(help="only this table.column (repeatable; default: every one)"),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                min=1, max=16, help="parallel workers (default: 2 on PostgreSQL, 1 on SQLite)"
            ),
        ] = None,
    ) -> None:
        """Re-encrypt every value not under the active key, in short transactions while
        the application runs. Stop it at any time; running it again continues."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from guanxi.audit.service import Actor
        from guanxi.cli import _engine
        from guanxi.core.db import make_sessionmaker
        from guanxi.security.keys import RotationError, pending, rotate

        engine = _engine()
        with make_sessionmaker(engine)() as session:
            try:
                with Progress(
                    TextColumn("rotation"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console,
                ) as bar:  # fmt: skip
                    task = bar.add_task("rotation", total=None)
                    result = rotate(
                        session,
                        actor=Actor.system("cli"),
                        batch=batch,
                        columns=column or None,
                        workers=workers or (2 if engine.dialect.name == "postgresql" else 1),
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
            except (RotationError, ValueError) as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(1) from None
            left = pending(session, active=result.active, columns=column or None)
        figures = result.figures()
        figures["remaining"] = left
        rate = result.total / result.seconds if result.seconds else 0.0
        for name, n in figures["columns"].items():
            console.print(f"  {name}: {n:,}")
        console.print(
            f"{result.total:,} values re-encrypted with key [bold]{result.active}[/bold] in "
            f"{result.seconds:.1f}s ({rate:,.0f}/s); {result.concurrent:,} changed meanwhile by "
            f"the application (kept as written); {left:,} still under other keys"
        )
        sys.stdout.write(json.dumps(figures) + "\n")
        if left:
            # Written meanwhile by a server still on the old key: run again after the restart.
            raise typer.Exit(1)

    @group.command("status")
    def status_command(
        check: Annotated[
            bool, typer.Option("--check", help="exit 1 if any value is under a retired key")
        ] = False,
    ) -> None:
        """How many stored values of each encrypted column use each key id."""
        from guanxi.cli import _engine
        from guanxi.core.db import make_sessionmaker
        from guanxi.security.crypto import cipher
        from guanxi.security.keys import active_key_id, key_status, retired_values

        engine = _engine()
        active = active_key_id(cipher())
        with make_sessionmaker(engine)() as session:
            statuses = key_status(session)
        table = Table("column", "key id", "values")
        for s in statuses:
            if not s.counts:
                table.add_row(s.column, "—", "0")
            for kid, n in s.counts.items():
                mark = " (active)" if kid == active else ""
                table.add_row(s.column, kid + mark, f"{n:,}")
        Console(soft_wrap=True).print(table)
        retired = retired_values(statuses, active)
        console.print(f"active key [bold]{active}[/bold]; {retired:,} values under other keys")
        if check and retired:
            raise typer.Exit(1)
