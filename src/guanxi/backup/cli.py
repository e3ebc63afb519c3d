"""``guanxi backup``: create, verify and restore backups from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from guanxi.audit.service import Actor
from guanxi.backup.service import BackupError, CheckReport, ProgressFn

console = Console(stderr=True)


class _Bars:
    """A rich progress bar per stage, fed by the service's (stage, done, total) calls."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[stage], completed=done, total=total)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


def _summary(report: CheckReport, title: str) -> None:
    manifest = report.manifest
    grid = Table(title=title, show_header=False)
    if manifest is not None:
        grid.add_row("created", manifest.created_at.isoformat())
        grid.add_row("guanxi", manifest.guanxi_version)
        grid.add_row("database", f"{manifest.dialect}, revision {manifest.alembic_revision}")
        grid.add_row("rows", f"{sum(manifest.tables.values()):,} in {len(manifest.tables)} tables")
        head = manifest.audit_head
        grid.add_row("audit head", "none" if head is None else f"#{head.id} {head.hash[:16]}…")
    grid.add_row("files checked", str(report.files_checked))
    grid.add_row("tables checked", str(report.tables_checked))
    grid.add_row("audit entries walked", str(report.audit_entries))
    console.print(grid)


def register(app: typer.Typer) -> None:
    """Add the ``backup`` command group to the main command."""
    group = typer.Typer(
        help="Back up, verify and restore the database and record files.", no_args_is_help=True
    )
    app.add_typer(group, name="backup")

    @group.command("create")
    def create_command(
        to: Annotated[
            Path | None,
            typer.Option(help="Folder for the backup (default: DATA_DIR/backups)."),
        ] = None,
        keep: Annotated[
            int | None,
            typer.Option(min=1, help="Afterwards keep only the newest N backups in the folder."),
        ] = None,
    ) -> None:
        """Back up while Guanxi runs: database, attachments and documents, manifest.

        The field-encryption keys are not included: keep them apart from the backups.
        """
        from guanxi.backup.service import create_backup
        from guanxi.cli import _engine
        from guanxi.config import get_settings

        _engine().dispose()  # settings, models and the cipher, as every command
        with _progress() as bars:
            report: ProgressFn = _Bars(bars)
            try:
                result = create_backup(
                    get_settings(), to=to, keep=keep, progress=report, actor=Actor.system("cli")
                )
            except BackupError as exc:
                console.print(f"[red]backup failed[/red]: {exc}")
                raise typer.Exit(1) from None
        manifest = result.manifest
        files = len(manifest.files) - 1
        console.print(
            f"[green]backup written[/green]: {result.path} ({manifest.dialect}, "
            f"{sum(manifest.tables.values()):,} rows in {len(manifest.tables)} tables, "
            f"{files} files, {result.seconds:.1f}s)"
        )
        for path in result.pruned:
            console.print(f"removed old backup {path}")
        # The path alone on stdout, for scripts (copy it off-site, verify it).
        typer.echo(str(result.path))

    @group.command("verify")
    def verify_command(
        path: Annotated[Path, typer.Argument(help="The backup's folder.")],
        scratch_url: Annotated[
            str | None,
            typer.Option(
                help="PostgreSQL server for the trial restore (default: the configured one)."
            ),
        ] = None,
    ) -> None:
        """Check every file's checksum and restore into a scratch database: counts, schema
        revision and audit chain must match the manifest. Exit 1 with the reason if not."""
        from guanxi.backup.service import verify_backup
        from guanxi.cli import _engine
        from guanxi.config import get_settings

        _engine().dispose()
        with console.status("verifying: checksums, trial restore, counts, audit chain"):
            try:
                report = verify_backup(path, get_settings(), scratch_url=scratch_url)
            except BackupError as exc:
                report = CheckReport(None, [str(exc)])
        _summary(report, str(path))
        if not report.ok:
            for problem in report.problems:
                console.print(f"[red]{problem}[/red]")
            console.print(f"[red]backup NOT usable[/red]: {len(report.problems)} problem(s)")
            raise typer.Exit(1)
        console.print("[green]backup verified[/green]: restorable, counts and audit chain match")

    @group.command("restore")
    def restore_command(
        path: Annotated[Path, typer.Argument(help="The backup's folder.")],
        to: Annotated[
            str | None,
            typer.Option(help="Target database URL (default: GUANXI_DATABASE_URL)."),
        ] = None,
        data_dir: Annotated[
            Path | None,
            typer.Option(help="Target data directory (default: GUANXI_DATA_DIR)."),
        ] = None,
        force: Annotated[
            bool, typer.Option(help="Replace a target that already holds data.")
        ] = False,
    ) -> None:
        """Restore database and files (stop the app and workers first), then check counts
        and the audit chain against the manifest."""
        from guanxi.backup.service import restore_backup
        from guanxi.cli import _engine
        from guanxi.config import get_settings

        _engine().dispose()
        with _progress() as bars:
            try:
                report = restore_backup(
                    path,
                    get_settings(),
                    target_url=to,
                    data_dir=data_dir,
                    force=force,
                    progress=_Bars(bars),
                    actor=Actor.system("cli"),
                )
            except BackupError as exc:
                console.print(f"[red]restore refused[/red]: {exc}")
                raise typer.Exit(1) from None
        _summary(report, f"restored from {path}")
        if not report.ok:
            for problem in report.problems:
                console.print(f"[red]{problem}[/red]")
            console.print("[red]restored, but it does not match the backup's manifest[/red]")
            raise typer.Exit(1)
        console.print(
            "[green]restore complete[/green]: counts and audit chain match the manifest; "
            "run `guanxi db upgrade` if this version is newer than the backup's"
        )
