"""``guanxi import`` and ``guanxi export``: thin edges over the import and export services."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.imports.enums import ImportKind
from guanxi.imports.mapping import MappingError, load_mapping
from guanxi.imports.readers import UnreadableFile
from guanxi.imports.rows import RowError
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import has_permission

console = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_UNREADABLE = 0, 3, 2


def _actor(session: Session, username: str | None) -> User | Actor:
    if username is None:
        return Actor.system("cli")
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        console.print(f"[red]--as: no active user {username!r}[/red]")
        raise typer.Exit(EXIT_UNREADABLE)
    return user


def write_error_csv(path: Path, errors: list[RowError]) -> None:
    """The rejected rows as a CSV Excel opens with Chinese intact (UTF-8 with BOM)."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["row", "column", "value", "code", "message"])
        for e in errors:
            out.writerow([e.row, e.column or "", e.value or "", e.code, e.message])


def import_command(
    kind: ImportKind,
    file: Path,
    mapping: Path | None,
    dry_run: bool,
    as_json: bool,
    errors_csv: Path | None,
    as_user: str | None,
    batch_rows: int,
    dedupe: bool = True,
) -> int:
    """Run one import; returns the exit status (0 all rows in, 3 some rejected, 2 unreadable).

    After customers are imported, the new and changed ones are checked against the base
    (an incremental de-duplication run) unless ``dedupe`` is off; a check an earlier run
    left unfinished is run too.
    """
    from guanxi.cli import _engine
    from guanxi.config import get_settings
    from guanxi.core.db import make_sessionmaker
    from guanxi.imports.service import check_pending, job_errors, run_import

    try:
        overrides = load_mapping(mapping) if mapping else None
    except MappingError as exc:
        console.print(f"[red]{exc.message}[/red]")
        return EXIT_UNREADABLE
    settings = get_settings()
    session = make_sessionmaker(_engine())()
    progress = Progress(
        TextColumn(f"importing {kind.value}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=as_json or not console.is_terminal,
    )
    try:
        actor = _actor(session, as_user)
        if isinstance(actor, User) and not has_permission(actor, Permission.data_import):
            console.print(f"[red]--as {as_user}: this user may not import (data.import)")
            return EXIT_UNREADABLE
        with progress:
            task = progress.add_task("rows", total=None)

            def tick(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            report = run_import(
                session,
                kind=kind,
                path=file,
                actor=actor,
                overrides=overrides,
                dry_run=dry_run,
                timezone=settings.timezone,
                batch_rows=batch_rows,
                progress=tick,
                dedupe=dedupe,
            )
        if dedupe and kind is ImportKind.customers and not dry_run:
            # Also the check an earlier run of this (or another) import did not finish.
            report.duplicates = check_pending(session, actor)
        if errors_csv is not None and report.job_id is not None:
            write_error_csv(errors_csv, list(job_errors(session, report.job_id)))
        elif errors_csv is not None:
            write_error_csv(errors_csv, report.errors)
    except UnreadableFile as exc:
        if as_json:
            sys.stdout.write(json.dumps({"error": exc.code, "message": exc.message}) + "\n")
        else:
            console.print(f"[red]{file.name}: {exc.message}[/red]")
        return EXIT_UNREADABLE
    finally:
        session.close()
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False, default=str) + "\n")
    else:
        verb = "checked" if dry_run else "imported"
        console.print(
            f"{file.name} ({report.format}, {report.encoding or 'binary'}): {report.rows:,} rows "
            f"{verb} in {report.seconds:.1f}s — new {report.imported:,}, updated "
            f"{report.updated:,}, unchanged {report.unchanged:,}, rejected {report.rejected:,}"
        )
        if report.resumed_from_row:
            console.print(f"resumed after row {report.resumed_from_row:,} of an unfinished run")
        if report.unknown_columns:
            console.print(f"[yellow]columns not imported: {', '.join(report.unknown_columns)}")
        for e in report.errors[:20]:
            console.print(f"  row {e.row} [{e.column or '-'}] {e.value or ''}: {e.message}")
        if report.errors_total > 20:
            more = report.errors_total - 20
            console.print(f"  … {more:,} more (--errors-csv FILE writes them all)")
        if report.duplicates:
            d = report.duplicates
            console.print(
                f"duplicate check of {d['checked']:,} new customers: {d['auto_merged']:,} "
                f"merged automatically, {d['queued']:,} waiting for review (guanxi dedupe queue)"
            )
    return EXIT_REJECTED if report.rejected else EXIT_OK


class ExportKind(StrEnum):
    """What ``guanxi export`` writes."""

    customers = "customers"
    shipments = "shipments"


class ExportFormat(StrEnum):
    """File formats of an export."""

    csv = "csv"
    xlsx = "xlsx"


_CUSTOMER_FILTERS = {"q", "kind", "status", "source", "lifecycle_stage", "tag", "region", "owner"}
_SHIPMENT_FILTERS = {"customer_id", "status"}


def _parse_filters(kind: ExportKind, pairs: list[str]) -> dict[str, str]:
    allowed = _CUSTOMER_FILTERS if kind is ExportKind.customers else _SHIPMENT_FILTERS
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in allowed:
            console.print(f"[red]--filter {pair!r}: use one of {', '.join(sorted(allowed))}=VALUE")
            raise typer.Exit(EXIT_UNREADABLE)
        out[key] = value
    return out


def export_command(
    kind: ExportKind,
    fmt: ExportFormat,
    output: Path,
    filters: list[str],
    as_user: str | None,
    reveal: bool,
    lang: str,
) -> int:
    """Run one export; returns the exit status."""
    from guanxi.cli import _engine
    from guanxi.core.db import make_sessionmaker
    from guanxi.core.errors import PermissionDenied
    from guanxi.customers.queries import CustomerFilters
    from guanxi.imports.export import export_customers, export_shipments

    chosen = _parse_filters(kind, filters)
    session = make_sessionmaker(_engine())()
    try:
        actor = _actor(session, as_user)
        viewer = actor if isinstance(actor, User) else None
        try:
            if kind is ExportKind.customers:
                owner = chosen.pop("owner", None)
                owner_id = None
                if owner is not None:
                    owner_id = session.scalar(select(User.id).where(User.username == owner))
                    if owner_id is None:
                        console.print(f"[red]--filter owner: no user {owner!r}")
                        return EXIT_UNREADABLE
                status = chosen.pop("status", "active")
                result = export_customers(
                    session,
                    path=output,
                    fmt=fmt.value,
                    viewer=viewer,
                    filters=CustomerFilters(
                        q=chosen.get("q"),
                        kind=chosen.get("kind"),
                        status=None if status == "all" else status,
                        source=chosen.get("source"),
                        lifecycle_stage=chosen.get("lifecycle_stage"),
                        owner_id=owner_id,
                        tag=chosen.get("tag"),
                        region=chosen.get("region"),
                    ),
                    reveal=reveal,
                    lang=lang,
                )
            else:
                cid = chosen.get("customer_id")
                result = export_shipments(
                    session,
                    path=output,
                    fmt=fmt.value,
                    viewer=viewer,
                    customer_id=int(cid) if cid and cid.isdigit() else None,
                    status=chosen.get("status"),
                    reveal=reveal,
                    lang=lang,
                )
        except PermissionDenied:
            console.print("[red]--reveal needs --as a user allowed to reveal personal data")
            return EXIT_UNREADABLE
    finally:
        session.close()
    shown = "in clear (audited)" if result.revealed else "masked"
    console.print(f"wrote {result.rows:,} {kind.value} to {output} (personal data {shown})")
    return EXIT_OK


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to the main command."""

    @app.command("export")
    def export(
        kind: Annotated[ExportKind, typer.Argument(help="customers or shipments")],
        output: Annotated[Path, typer.Option(help="file to write")],
        fmt: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.csv,
        filters: Annotated[
            list[str] | None,
            typer.Option("--filter", help="KEY=VALUE, repeatable (status=all, source=wechat…)"),
        ] = None,
        as_user: Annotated[
            str | None, typer.Option("--as", help="export as this user (their visibility)")
        ] = None,
        reveal: Annotated[
            bool, typer.Option(help="personal data in clear (needs customer.reveal; audited)")
        ] = False,
        lang: Annotated[str, typer.Option(help="header language: zh_CN or en")] = "zh_CN",
    ) -> None:
        """Export customers or shipments to CSV (UTF-8 with BOM) or XLSX, streamed."""
        raise typer.Exit(export_command(kind, fmt, output, filters or [], as_user, reveal, lang))

    @app.command("import")
    def import_(
        kind: Annotated[ImportKind, typer.Argument(help="customers, contacts or shipments")],
        file: Annotated[Path, typer.Argument(help="CSV / TSV (UTF-8 or GBK) or XLSX")],
        mapping: Annotated[
            Path | None, typer.Option(help='JSON {"columns": {"header": "field"}}')
        ] = None,
        dry_run: Annotated[bool, typer.Option(help="validate only, write nothing")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
        errors_csv: Annotated[
            Path | None, typer.Option(help="write every rejected row to this CSV")
        ] = None,
        as_user: Annotated[
            str | None, typer.Option("--as", help="user the import is recorded under")
        ] = None,
        batch_rows: Annotated[int, typer.Option(min=1, max=100_000)] = 2000,
        dedupe: Annotated[
            bool, typer.Option(help="check new customers for duplicates afterwards")
        ] = True,
    ) -> None:
        """Import customers, contact persons or shipments from a file.

        Exit status: 0 every row imported, 3 some rows rejected (the rest imported),
        2 the file could not be read.
        """
        status = import_command(
            kind, file, mapping, dry_run, json_out, errors_csv, as_user, batch_rows, dedupe
        )
        raise typer.Exit(status)
