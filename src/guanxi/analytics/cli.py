"""``guanxi analytics``: recompute the analytics and fit models from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from guanxi.analytics.clv import ClvFit

# Messages name files and columns: never break them across lines.
console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``analytics`` command group to the main command."""
    group = typer.Typer(
        help="Customer analytics: classes, CLV, churn, forecasts.", no_args_is_help=True
    )
    app.add_typer(group, name="analytics")
    _register_run(group)
    _register_clv(group)


def _register_run(group: typer.Typer) -> None:
    """``guanxi analytics run``: recompute from the database, step by step."""

    @group.command("run")
    def run_command(
        only: Annotated[
            list[str] | None,
            typer.Option("--only", help="Only these steps (and the steps they need)."),
        ] = None,
        force: Annotated[
            bool, typer.Option(help="Recompute even the steps whose inputs are unchanged.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Refresh the snapshot and recompute every step whose inputs changed."""
        from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        from guanxi.analytics.runner import load_steps, run
        from guanxi.cli import _engine
        from guanxi.config import get_settings

        known = load_steps()
        unknown = [name for name in only or [] if name not in known]
        if unknown:
            console.print(
                f"[red]--only: unknown step {unknown[0]!r}; steps: {', '.join(known)}[/red]"
            )
            raise typer.Exit(2)
        tasks: dict[str, TaskID] = {}
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            summary = run(_engine(), get_settings(), only=only, force=force, progress=progress)
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {
                        "run_id": summary.run_id,
                        "status": summary.status,
                        "steps": summary.steps,
                        "seconds": round(summary.seconds, 3),
                        "metrics": summary.metrics,
                    },
                    default=float,
                    ensure_ascii=False,
                )
                + "\n"
            )
        else:
            for name, outcome in summary.steps.items():
                console.print(f"{name:10} {outcome}")
            console.print(f"run {summary.run_id}: {summary.status} in {summary.seconds:.1f} s")
        if summary.status != "succeeded":
            raise typer.Exit(1)


def _register_clv(group: typer.Typer) -> None:
    """``guanxi analytics clv``: BG/NBD and Gamma-Gamma on a transactions CSV."""

    @group.command("clv")
    def clv(
        transactions: Annotated[
            Path, typer.Option("--transactions", help="CSV with customer_id,date,amount columns")
        ],
        until: Annotated[
            str | None,
            typer.Option(help="fit on transactions up to this day, YYYY-MM-DD (default: last)"),
        ] = None,
        period: Annotated[str, typer.Option(help="day, week or month (30 days)")] = "week",
        columns: Annotated[
            str | None,
            typer.Option(help="other column names: customer_id=ID,date=DATE,amount=PRICE"),
        ] = None,
        json_out: Annotated[
            bool, typer.Option("--json", help="print the estimates as JSON")
        ] = False,
        lang: Annotated[
            str | None, typer.Option(help="zh_CN or en (default: the configured language)")
        ] = None,
    ) -> None:
        """Customer lifetime value: fit BG/NBD (purchases, P(alive)) and Gamma-Gamma (spend)."""
        from guanxi.analytics import clv as model
        from guanxi.config import get_settings
        from guanxi.core import i18n
        from guanxi.core.errors import ValidationFailed

        language = i18n.normalise_language(lang or get_settings().default_language)
        if language is None:
            console.print(f"[red]--lang {lang}: use one of {', '.join(i18n.LANGUAGES)}[/red]")
            raise typer.Exit(2)
        try:
            cut = model.parse_until(until) if until else None
            fit, _, cut = model.fit_transactions_csv(
                transactions, until=cut, period=period, columns=model.parse_columns(columns)
            )
        except ValidationFailed as exc:
            for err in exc.errors:
                template = model.INPUT_MESSAGES.get(err.code)
                text = i18n.gettext(language, template, **err.params) if template else err.message
                console.print(f"[red]{text}[/red]")
            raise typer.Exit(2) from None
        except model.ClvFitError as exc:
            # (Through a name: a subscript inside gettext() would be extracted as a msgid.)
            failed = model.INPUT_MESSAGES["fit_failed"]
            text = i18n.gettext(language, failed, **exc.params)
            console.print(f"[red]{text}[/red]")
            raise typer.Exit(2) from None
        if json_out:
            sys.stdout.write(json.dumps(fit.as_dict(), indent=2) + "\n")
        else:
            _print_clv(fit, until=cut.isoformat(), period=period, lang=language)


def _print_clv(fit: ClvFit, *, until: str, period: str, lang: str) -> None:
    """The estimates as rich tables, with what each one means, labels in ``lang``."""
    from rich.table import Table

    from guanxi.core import i18n

    def _(message: str, **params: object) -> str:
        return i18n.gettext(lang, message, **params)

    unit = {"day": _("day"), "week": _("week"), "month": _("month (30 days)")}[period]
    bg, gg = fit.bgnbd, fit.gamma_gamma
    out = Console()
    title = _("Customer lifetime value")
    out.print(
        f"[bold]{title}[/bold] · "
        + _(
            "{count} customers, transactions up to {until}, time unit: {unit}",
            count=f"{fit.customers:,}",
            until=until,
            unit=unit,
        )
    )
    table = Table(title=_("BG/NBD: repeat purchases and P(alive)"), title_justify="left")
    table.add_column(_("Parameter"))
    table.add_column(_("Estimate"), justify="right")
    table.add_column(_("Meaning"))
    table.add_row("r", f"{bg.r:.4g}", _("shape of the purchase rate across customers"))
    table.add_row("alpha", f"{bg.alpha:.4g}", _("scale of the purchase rate"))
    table.add_row("a", f"{bg.a:.4g}", _("dropout probability after a purchase: Beta(a, b)"))
    table.add_row("b", f"{bg.b:.4g}", "")
    table.add_row(
        _("mean purchase rate"),
        f"{bg.r / bg.alpha:.4g}",
        _("repeat purchases per {unit} while active", unit=unit),
    )
    table.add_row(
        _("mean dropout probability"),
        f"{bg.a / (bg.a + bg.b):.4g}",
        _("after each repeat purchase"),
    )
    table.add_row(_("log-likelihood"), f"{bg.log_likelihood:.1f}", "")
    out.print(table)
    table = Table(title=_("Gamma-Gamma: spend per purchase"), title_justify="left")
    table.add_column(_("Parameter"))
    table.add_column(_("Estimate"), justify="right")
    table.add_column(_("Meaning"))
    table.add_row("p", f"{gg.p:.4g}", _("shape of the spend of one purchase"))
    table.add_row("q", f"{gg.q:.4g}", _("shape of the customers' spend levels"))
    table.add_row("gamma", f"{gg.gamma:.4g}", _("scale of the customers' spend levels"))
    if gg.q > 1:
        table.add_row(
            _("mean spend per purchase"),
            f"{gg.p * gg.gamma / (gg.q - 1):.4g}",
            _("across customers"),
        )
    out.print(table)
