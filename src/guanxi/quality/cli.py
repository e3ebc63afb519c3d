"""The ``guanxi quality`` commands: the data-quality report as tables or JSON."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from guanxi.core import i18n
from guanxi.quality.enums import DUPLICATE_LABELS, FIELD_LABELS, INVALID_LABELS, SCOPE_LABELS
from guanxi.quality.schemas import QualityReport

console = Console(stderr=True)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _ids(values: list[int]) -> str:
    return " ".join(f"#{v}" for v in values) or "—"


def print_report(report: QualityReport, lang: str, out: Console) -> None:
    """The report as rich tables, labels in ``lang``."""

    def _(message: str, **params: object) -> str:
        return i18n.gettext(lang, message, **params)

    t = report.totals
    out.print(
        f"[bold]{_('Data quality')}[/bold] · {report.today.isoformat()} · "
        f"{_('Active customers')} {t.active:,} · {_('Archived customers')} {t.archived:,} · "
        f"{_('Created in the last 30 days')} {t.created_last_30_days:,}"
    )

    table = Table(title=_("Completeness"), title_justify="left")
    table.add_column(_("Field"))
    table.add_column(_("Measured on"))
    table.add_column(_("Filled"), justify="right")
    table.add_column(_("Missing"), justify="right")
    table.add_column("%", justify="right")
    for f in report.completeness:
        table.add_row(
            _(FIELD_LABELS[f.field]),
            f"{_(SCOPE_LABELS[f.scope])} ({f.applicable:,})",
            f"{f.filled:,}",
            f"{f.missing:,}",
            _pct(f.percent),
        )
    out.print(table)

    table = Table(title=_("Invalid or suspicious values"), title_justify="left")
    table.add_column(_("Check"))
    table.add_column(_("Customers"), justify="right")
    table.add_column(_("Examples"), overflow="fold")
    for item in report.invalid:
        table.add_row(_(INVALID_LABELS[item.rule]), f"{item.count:,}", _ids(item.examples))
    out.print(table)

    table = Table(title=_("Suspected duplicates"), title_justify="left")
    table.add_column(_("Rule"))
    table.add_column(_("Groups"), justify="right")
    table.add_column(_("Customers"), justify="right")
    table.add_column(_("Example groups"), overflow="fold")
    for dup in report.duplicates:
        groups = " ".join(f"[{_ids(g.customer_ids)}]" for g in dup.examples) or "—"
        table.add_row(
            _(DUPLICATE_LABELS[dup.rule]), f"{dup.groups:,}", f"{dup.customers:,}", groups
        )
    out.print(table)
    out.print(
        _("Likely duplicates waiting for review: {count}", count=f"{report.review_queue:,}")
        + " · "
        + _("Records merged so far: {count}", count=f"{report.merged:,}")
    )

    s = report.stale
    out.print(
        f"[bold]{_('Stale records')}[/bold]: "
        + _(
            "{count} of {active} active customers ({percent}) have not been updated and have "
            "not shipped since {cutoff} ({months} months).",
            count=f"{s.count:,}",
            active=f"{s.active:,}",
            percent=_pct(s.percent),
            cutoff=s.cutoff.isoformat(),
            months=s.months,
        )
    )
    if s.examples:
        out.print(f"{_('Examples')}: {_ids(s.examples)}")


def register(app: typer.Typer) -> None:
    """Add the ``quality`` command group to the main command."""
    group = typer.Typer(help="Data quality of the customer base.", no_args_is_help=True)
    app.add_typer(group, name="quality")

    @group.command("report")
    def report(
        stale_months: Annotated[
            int,
            typer.Option(
                min=1, max=120, help="stale: not updated and no shipment for this many months"
            ),
        ] = 12,
        json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
        lang: Annotated[
            str | None, typer.Option(help="zh_CN or en (default: the configured language)")
        ] = None,
    ) -> None:
        """Completeness, invalid values, suspected duplicates and stale records (read-only)."""
        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core.db import make_sessionmaker
        from guanxi.quality.service import quality_report

        language = i18n.normalise_language(lang or get_settings().default_language)
        if language is None:
            console.print(f"[red]--lang {lang}: use one of {', '.join(i18n.LANGUAGES)}[/red]")
            raise typer.Exit(2)
        engine = _engine()
        try:
            with make_sessionmaker(engine)() as session:
                result = quality_report(session, stale_months=stale_months)
        finally:
            engine.dispose()
        if json_out:
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        else:
            print_report(result, language, Console())
