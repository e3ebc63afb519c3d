"""The ``guanxi`` command: serve, db, user, demo, audit, keys, import, export."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from guanxi import domains
from guanxi.config import Environment, get_settings
from guanxi.core.db import make_engine, make_sessionmaker

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from guanxi.core.errors import FieldError

app = typer.Typer(
    help="Guanxi (关系): customer relationship and service system.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
console = Console(stderr=True)


def _register_domain_commands() -> None:
    from guanxi.analytics import cli as analytics_cli
    from guanxi.audit import cli as audit_cli
    from guanxi.backup import cli as backup_cli
    from guanxi.care import cli as care_cli
    from guanxi.dedupe import cli as dedupe_cli
    from guanxi.imports import cli as imports_cli
    from guanxi.loyalty import cli as loyalty_cli
    from guanxi.privacy import cli as privacy_cli
    from guanxi.privacy import retention_cli
    from guanxi.quality import cli as quality_cli
    from guanxi.security import accounts_cli, keys_cli

    accounts_cli.register(app)
    imports_cli.register(app)
    dedupe_cli.register(app)
    quality_cli.register(app)
    analytics_cli.register(app)
    care_cli.register(app)
    loyalty_cli.register(app)
    retention_cli.register(app)
    privacy_cli.register(app)
    audit_cli.register(app)
    keys_cli.register(app)
    backup_cli.register(app)


_register_domain_commands()


def _engine() -> Engine:
    from guanxi.security import crypto

    settings = get_settings()
    domains.load()
    crypto.configure(settings)
    # Batch commands stream over whole tables: no memory-mapped reads (see make_engine).
    return make_engine(settings.database_url, sqlite_mmap_bytes=0)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the database migrations."""
    from guanxi.core.migrate import upgrade

    engine = _engine()
    upgrade(engine, revision)
    console.print(f"[green]database at {revision}[/green]: {engine.url.render_as_string()}")


def _print_field_errors(errors: list[FieldError]) -> None:
    """Each invalid field and its message in the installation's language."""
    from guanxi.core.web import translate_field_error

    lang = get_settings().default_language
    for err in errors:
        field = ".".join(map(str, err.loc))
        console.print(f"[red]{field}[/red]: {translate_field_error(err, lang)}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, manager, agent, sales, analyst or auditor")],
    display_name: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input")
    ] = False,
    email: Annotated[
        str | None, typer.Option(help="work e-mail address for notifications by e-mail")
    ] = None,
) -> None:
    """Create a user; the password is read from stdin or prompted for (never an argument)."""
    from pydantic import ValidationError

    from guanxi.audit.service import Actor
    from guanxi.core.errors import DomainError, ValidationFailed
    from guanxi.core.web import field_errors_from_pydantic
    from guanxi.security.schemas import UserCreate
    from guanxi.security.service import create_user

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    try:
        user_in = UserCreate(
            username=username,
            display_name=display_name or username,
            role=role,
            password=password,
            email=email,
        )
    except ValidationError as exc:
        _print_field_errors(field_errors_from_pydantic(list(exc.errors())))
        raise typer.Exit(2) from None
    session = make_sessionmaker(_engine())()
    try:
        user = create_user(session, user_in=user_in, actor=Actor.system("cli"))
    except ValidationFailed as exc:
        # Bad input (the password policy: length, the user name, the breached list) exits
        # 2 like a malformed option; a conflict (the name taken) exits 1.
        _print_field_errors(exc.errors)
        raise typer.Exit(2) from None
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    finally:
        session.close()
    console.print(f"created user [bold]{user.username}[/bold] ({user.role})")


@app.command("demo")
def demo(
    customers: Annotated[int, typer.Option(min=1, help="number of customers")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 42,
    duplicates: Annotated[
        float, typer.Option(min=0, max=0.3, help="share of planted duplicate customers")
    ] = 0.03,
) -> None:
    """Load realistic synthetic data (zh_CN) for an express company.

    A share of the customers are planted duplicates (the same customer arriving again
    through another channel); they are queued for review under Duplicates.
    """
    _load_demo(customers, seed, duplicates)


def _load_demo(customers: int, seed: int, duplicates: float = 0.03) -> None:
    from guanxi.core.migrate import upgrade
    from guanxi.demo.accounts import DEMO_PASSWORD, ensure_demo_users
    from guanxi.demo.generator import generate
    from guanxi.demo.history import History, load_staff

    if get_settings().env is Environment.production:
        console.print("[red]refusing to load demo data in production[/red]")
        raise typer.Exit(2)
    engine = _engine()
    upgrade(engine)
    session = make_sessionmaker(engine)()
    try:
        owners = ensure_demo_users(session)
        # Complaints, inquiries and claims raised from the shipments, worked by the demo
        # agents; the churn they cause is planted in the shipments.
        history = History(load_staff(session))
    finally:
        session.close()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        summary = generate(
            engine,
            customers=customers,
            seed=seed,
            owner_ids=owners,
            progress=report,
            duplicate_rate=duplicates,
            history=history,
        )
    if summary.duplicates:
        from guanxi.audit.service import Actor
        from guanxi.dedupe.service import run

        with make_sessionmaker(engine)() as session:
            found = run(session, actor=Actor.system("demo"), auto_merge=False)
        console.print(f"{found.queued} likely duplicate pairs queued for review")
    from guanxi.demo.desk import seed_desk

    with make_sessionmaker(engine)() as session:
        opened = seed_desk(session, seed=seed)
    if opened:
        console.print(f"{opened} demo tickets opened on the service desk")
    from guanxi.demo.training import seed_training

    with make_sessionmaker(engine)() as session:
        planned = seed_training(session, seed=seed)
    if planned:
        console.print(f"{planned} demo training courses planned, attendance recorded")
    # After the hand-made desk tickets (they are opened only on a desk without tickets).
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("service history", total=history.planned)
        written = history.write(
            engine, progress=lambda _stage, done, total: progress.update(task, completed=done)
        )
    # The generator and the history load rows with explicit ids (COPY on PostgreSQL):
    # move every id sequence past them before anything is created through the services.
    from guanxi.core.db import align_sequences

    with make_sessionmaker(engine)() as session:
        align_sequences(session)
    console.print(
        f"service history: {written.tickets} tickets ({written.open_tickets} open), "
        f"{written.breaches} SLA breaches, {written.claims} claims"
    )
    # A year of survey answers raised from that history (the CSAT answers are the tickets'
    # satisfaction scores).
    from guanxi.demo.surveys import seed_surveys

    with make_sessionmaker(engine)() as session:
        answers = seed_surveys(session, seed=seed)
    if answers:
        console.print(f"{answers} demo survey answers")
    # Classes, CLV, churn, forecasts, KPIs … ready on the first page view.
    from guanxi.analytics.runner import run as run_analytics

    analytics = run_analytics(engine, get_settings(), trigger="demo")
    failed = [name for name, outcome in analytics.steps.items() if outcome == "failed"]
    console.print(
        f"analytics: {len(analytics.steps) - len(failed)} steps in {analytics.seconds:.1f}s"
        + (f" ([yellow]failed: {', '.join(failed)}[/yellow])" if failed else "")
    )
    # Membership: the shipments' points, a year of tier evaluations and expiry, coupons
    # (before care: anniversaries and tier audiences need the members).
    from guanxi.demo.loyalty import seed_loyalty

    with make_sessionmaker(engine)() as session:
        loyalty = seed_loyalty(session, seed=seed, timezone=get_settings().timezone)
    if loyalty.members:
        console.print(
            f"membership: {loyalty.members} members {loyalty.tiers}, {loyalty.points} points "
            f"earned, {loyalty.redemptions} redemptions, {loyalty.coupons} coupons "
            f"({loyalty.coupons_used} used)"
        )
    # Care rules switched on, consents, and the last weeks' runs (win-back reads the churn
    # results just computed).
    from guanxi.demo.care import seed_care

    with make_sessionmaker(engine)() as session:
        care = seed_care(session, seed=seed, timezone=get_settings().timezone)
    console.print(
        f"customer care: {care.rules_on} rules switched on, {care.runs} daily runs, "
        f"{care.queued} greetings queued"
    )
    # After care: languages, consents withdrawn since, provider template ids, the due
    # texts sent through the file gateway with their delivery reports.
    from guanxi.demo.notify import seed_notify

    with make_sessionmaker(engine)() as session:
        channels = seed_notify(session, get_settings(), seed=seed)
    console.print(
        f"outbound channels: {channels.withdrawals} consents withdrawn, "
        f"{channels.sent} messages sent ({channels.delivered} delivered)"
    )
    # Marketing campaigns: an audience and a launched campaign with a control group and a
    # known (planted) uplift, after the consents and the notify templates.
    from guanxi.demo.campaigns import seed_campaigns

    with make_sessionmaker(engine)() as session:
        marketing = seed_campaigns(session, seed=seed)
    if marketing.campaigns:
        console.print(
            f"campaigns: {marketing.campaigns} campaigns, {marketing.recipients} recipients, "
            f"{marketing.queued} messages queued, {marketing.conversions} conversions planted"
        )
    # Saved audiences over the analytics, members and consents loaded above.
    from guanxi.demo.audiences import seed_audiences

    with make_sessionmaker(engine)() as session:
        saved_audiences = seed_audiences(session)
    if saved_audiences:
        console.print(f"audiences: {saved_audiences} saved audiences")
    # The sales pipeline: a team, opportunities over stages, owners and months (some won,
    # some lost with reasons), leads in the pool and from the web form.
    from guanxi.demo.sales import seed_sales

    with make_sessionmaker(engine)() as session:
        pipeline = seed_sales(session, seed=seed)
    console.print(
        f"sales pipeline: {pipeline.opportunities} opportunities ({pipeline.won} won, "
        f"{pipeline.lost} lost, {pipeline.pool} in the pool, {pipeline.web_leads} web leads)"
    )
    # The customer pool: its policy and four weeks of claims, releases, assignments and
    # returns by the daily job (after the sales users' pipeline).
    from guanxi.demo.pool import seed_pool

    with make_sessionmaker(engine)() as session:
        pooled = seed_pool(session, seed=seed, timezone=get_settings().timezone)
    console.print(
        f"customer pool: {pooled.claims} claims, {pooled.releases} releases, "
        f"{pooled.assignments} assignments, {pooled.warned} warnings, {pooled.returned} returned"
    )
    # Contracts of the busiest enterprise customers: in force, ending soon (reminded),
    # amended, terminated, renewed, expired, a draft; one below its commitment.
    from guanxi.demo.contracts import seed_contracts

    with make_sessionmaker(engine)() as session:
        agreements = seed_contracts(session, seed=seed, timezone=get_settings().timezone)
    console.print(
        f"contracts: {agreements.contracts} ({agreements.active} in force, "
        f"{agreements.below} below commitment last month, {agreements.reminded} owners reminded)"
    )
    # Data-subject requests in every state (one overdue), worked by the privacy officer.
    from guanxi.demo.privacy import seed_privacy

    with make_sessionmaker(engine)() as session:
        dsr = seed_privacy(session, seed=seed)
    console.print(f"privacy requests: {dsr.requests} ({dsr.open} open, {dsr.overdue} overdue)")
    # Last: the retention purge previewed and run once, so its report is on the page.
    from guanxi.demo.retention import seed_retention

    with make_sessionmaker(engine)() as session:
        purged = seed_retention(session, get_settings())
    console.print(
        f"retention: {purged.rows} rows and {purged.files} files past their period purged"
    )
    # A scoped agent (security/scope.py): only Guangdong's customers and one team's tickets.
    from guanxi.demo.scope import SCOPED_USER, seed_scope

    with make_sessionmaker(engine)() as session:
        if seed_scope(session) is not None:
            console.print(f"row-level scope: {SCOPED_USER} sees only 广东 and one desk team")
    # The audit chain's first anchor outside the database (the worker adds one hourly), so
    # `guanxi audit verify` checks the demo's log against it.
    from guanxi.audit.anchor import anchor_dir, write_anchor

    with make_sessionmaker(engine)() as session:
        head = write_anchor(session, anchor_dir(get_settings()))
    if head:
        console.print(f"audit log: {head.count} entries, anchored in {anchor_dir(get_settings())}")
    console.print(
        f"[green]demo loaded[/green]: {summary.customers} customers, {summary.shipments} shipments "
        f"in {summary.seconds:.1f}s. Sign in as admin / agent / agent2 / manager / sales / "
        f"analyst / auditor with password [bold]{DEMO_PASSWORD}[/bold]."
    )


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option(help="run every job once and exit (cron)")] = False,
) -> None:
    """Run the periodic jobs (SLA sweep, warnings, escalations) until stopped."""
    import json

    from guanxi.core import logs
    from guanxi.worker import run_forever, run_once

    logs.configure(get_settings())
    engine = _engine()
    if once:
        sys.stdout.write(json.dumps(run_once(engine, get_settings())) + "\n")
        return
    run_forever(engine, get_settings())


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="load demo data first if the database is empty")
    ] = False,
    demo_customers: int = 2000,
) -> None:
    """Run the web server (UI at /, API at /api/v1, OpenAPI at /openapi.json)."""
    import uvicorn
    from sqlalchemy import inspect, select

    from guanxi.core import logs
    from guanxi.core.migrate import upgrade

    logs.configure(get_settings())
    engine = _engine()
    upgrade(engine)
    if demo:
        from guanxi.customers.models import Customer

        with engine.connect() as conn:
            empty = (
                inspect(conn).has_table("customer")
                and conn.scalar(select(Customer.id).limit(1)) is None
            )
        if empty:
            _load_demo(demo_customers, 42)
    engine.dispose()
    console.print(f"Guanxi on http://{host}:{port}/")
    uvicorn.run(
        "guanxi.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Each worker process applies this itself (structured lines, core/logs.py). uvicorn's
        # access log is off: it writes the raw path with its query string; ours has the
        # route template (core/observe.py).
        log_config=logs.logging_config(get_settings()),
        access_log=False,
        proxy_headers=True,
        # X-Forwarded-For / -Proto are believed from the configured reverse proxies only
        # (uvicorn's default is 127.0.0.1 alone, so a proxy on another host went unheard).
        forwarded_allow_ips=",".join(get_settings().trusted_proxies),
        # A worker imports the whole app before it answers the supervisor's ping; on a busy
        # small machine that takes longer than uvicorn's 5 s and the worker was restarted.
        timeout_worker_healthcheck=60,
    )


if __name__ == "__main__":
    app()
