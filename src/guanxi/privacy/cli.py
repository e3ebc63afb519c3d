"""``guanxi privacy export|anonymise``: a customer's data from the command line (an answer
sent by post, a bulk deletion ordered by a regulator), audited as from the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

privacy_app = typer.Typer(
    help="Data-subject requests: export and anonymise customers.", no_args_is_help=True
)
console = Console(stderr=True)


@privacy_app.command("export")
def export(
    customer_id: Annotated[int, typer.Argument(min=1, help="the customer's number in Guanxi")],
    format: Annotated[  # noqa: A002 - the option's name
        Literal["json", "csv"], typer.Option(help="json, or csv: a zip of one CSV per table")
    ] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write; standard output if not")
    ] = None,
) -> None:
    """Everything held about a customer, decrypted (audited as a reveal)."""
    from guanxi.audit.service import Actor
    from guanxi.cli import _engine
    from guanxi.core.db import make_sessionmaker
    from guanxi.core.errors import NotFound
    from guanxi.privacy.service import export_customer_data

    with make_sessionmaker(_engine())() as session:
        try:
            data = export_customer_data(
                session, customer_id=customer_id, fmt=format, actor=Actor.system("cli")
            )
        except NotFound:
            console.print(f"[red]no customer {customer_id}[/red]")
            raise typer.Exit(1) from None
    if output is None:
        sys.stdout.buffer.write(data)
        return
    # Clear personal data: readable by the owner only.
    output.touch(mode=0o600, exist_ok=True)
    output.write_bytes(data)
    console.print(f"exported customer {customer_id} to {output}")


@privacy_app.command("anonymise")
def anonymise(
    customer_ids: Annotated[list[int], typer.Argument(help="customers' numbers in Guanxi")],
    reason: Annotated[str, typer.Option(help="why (kept in the audit log; no personal data)")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Anonymise customers: their personal information is removed everywhere and cannot be
    restored; aggregates stay."""
    from guanxi.audit.service import Actor
    from guanxi.cli import _engine
    from guanxi.config import get_settings
    from guanxi.core.db import make_sessionmaker
    from guanxi.core.errors import ValidationFailed
    from guanxi.privacy.anonymise import anonymise_customers

    if not yes:
        typer.confirm(f"anonymise {len(customer_ids)} customers for good?", abort=True)
    with make_sessionmaker(_engine())() as session:
        try:
            done = anonymise_customers(
                session,
                customer_ids=customer_ids,
                actor=Actor.system("cli"),
                reason=reason,
                settings=get_settings(),
            )
        except ValidationFailed as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from None
    console.print(f"{done} customers anonymised")


def register(app: typer.Typer) -> None:
    """Add ``guanxi privacy`` to the command."""
    app.add_typer(privacy_app, name="privacy")
