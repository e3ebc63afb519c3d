"""``guanxi worker``: the periodic jobs of every domain on one scheduler (APScheduler).

Each job is idempotent — safe to run twice, concurrently on two machines, or again after a
crash — so the worker needs no lock and no bookkeeping of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_sessionmaker

log = logging.getLogger("guanxi.worker")


def sla_sweep(engine: Engine, settings: Settings, *, full: bool = False) -> dict[str, int]:
    """One SLA sweep over the open tickets whose next moment has come (``full``: all)."""
    from guanxi.tickets.jobs import sweep_sla
    from guanxi.tickets.sla import calendar_for

    with make_sessionmaker(engine)() as session:
        result = sweep_sla(
            session, now=clock.now(), calendar=calendar_for(settings.timezone), full=full
        )
    figures = {
        "checked": result.checked,
        "warnings": result.warnings,
        "breaches": result.breaches,
        "escalations": result.escalations,
    }
    log.info("sla sweep%s: %s", " (full)" if full else "", figures)
    return figures


def sla_full_sweep(engine: Engine, settings: Settings) -> dict[str, int]:
    """Recompute every open ticket's SLA moments: picks up a changed policy or team hours
    and tickets written before the moments were materialised. Runs at start and hourly."""
    return sla_sweep(engine, settings, full=True)


def outbox(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Send the e-mails, texts and webhook deliveries that are due (committed rows only;
    each claimed by one worker)."""
    from guanxi.notify.jobs import run_outbox

    return run_outbox(engine, settings)


def analytics_requested(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Run a recomputation someone asked for (the Recompute button, the API)."""
    from guanxi.analytics.runner import run_queued

    return run_queued(engine, settings)


def analytics_nightly(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The nightly recomputation of every analytics step (after 02:00 local time)."""
    from guanxi.analytics.runner import run_nightly

    return run_nightly(engine, settings)


def survey_invitations(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Survey invitations after delivery (sampled), the periodic relationship survey and
    the one reminder to non-respondents."""
    from guanxi.surveys.jobs import run_invitations

    return run_invitations(engine)


def survey_follow_ups(engine: Engine, settings: Settings) -> dict[str, int]:
    """Follow-up tickets of detractors' answers that are still to be opened."""
    from guanxi.surveys.jobs import run_follow_ups

    return run_follow_ups(engine)


def care_daily(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Today's care greetings (birthday, festivals, anniversaries, win-back), once their
    send time has come; each rule runs once a day."""
    from guanxi.care.jobs import care_daily as run_care

    return run_care(make_sessionmaker(engine), now=clock.now(), timezone=settings.timezone)


def loyalty_accrual(engine: Engine, settings: Settings) -> dict[str, int]:
    """Points for the shipments since the last run; upgrades of the members they touched."""
    from guanxi.loyalty.jobs import run_accrual

    with make_sessionmaker(engine)() as session:
        return run_accrual(session, now=clock.now(), tz=settings.timezone)


def loyalty_daily(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Once a local day: points expiry, every member's tier (grace periods), coupon
    expiry."""
    from guanxi.loyalty.jobs import run_daily

    with make_sessionmaker(engine)() as session:
        outcome = run_daily(session, now=clock.now(), tz=settings.timezone)
    return {"ran": outcome.ran, **outcome.figures}


def pool_daily(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Customers back to the customer pool (no follow-up, contract ended) and the owners'
    warnings ahead of it; idempotent within a day."""
    from guanxi.pool.jobs import pool_daily as run_pool

    return run_pool(
        make_sessionmaker(engine),
        now=clock.now(),
        timezone=settings.timezone,
        language=settings.default_language,
    )


def contracts_daily(engine: Engine, settings: Settings) -> dict[str, int]:
    """Contracts past their end expire or renew; owners are reminded of those ending soon
    (once per contract and threshold)."""
    from guanxi.contracts.jobs import contracts_daily as run_contracts

    return run_contracts(
        make_sessionmaker(engine),
        now=clock.now(),
        timezone=settings.timezone,
        language=settings.default_language,
    )


def campaigns_due(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Campaigns whose send time has come are launched (a crashed launch resumed)."""
    from guanxi.campaigns.jobs import launch_due

    return launch_due(make_sessionmaker(engine), now=clock.now())


def campaign_conversions(engine: Engine, settings: Settings) -> dict[str, int]:
    """Conversions of campaigns whose attribution window is open, recomputed."""
    from guanxi.campaigns.jobs import refresh_all

    return refresh_all(make_sessionmaker(engine), now=clock.now())


def audit_anchor(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The audit chain's head appended to the anchor file outside the database (and the
    log), so `guanxi audit verify` detects a chain rewritten or truncated since."""
    from guanxi.audit.anchor import anchor_job

    return anchor_job(engine, settings)


def retention_daily(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Once a local day: purge what is past its retention period (an unfinished purge is
    resumed whenever the job runs)."""
    from guanxi.privacy.retention import daily_purge

    with make_sessionmaker(engine)() as session:
        return daily_purge(session, settings=settings, now=clock.now())


def privacy_due(engine: Engine, settings: Settings) -> dict[str, int]:
    """Privacy officers told of data-subject requests due within the warning days and of
    overdue ones (once per request and due date)."""
    from guanxi.privacy.jobs import privacy_due as run_privacy_due

    return run_privacy_due(
        make_sessionmaker(engine),
        now=clock.now(),
        timezone=settings.timezone,
        language=settings.default_language,
    )


def backup_nightly(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The nightly backup after GUANXI_BACKUP_HOUR (off when unset), keeping the newest
    GUANXI_BACKUP_KEEP; once a day across workers."""
    from guanxi.backup.jobs import backup_nightly as run_backup

    return run_backup(engine, settings)


def dedupe_incremental(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Customers added or changed since the last finished de-duplication run scored, every
    GUANXI_DEDUPE_INTERVAL_MINUTES (off when unset); one worker at a time."""
    from guanxi.dedupe.jobs import dedupe_incremental as run_dedupe

    return run_dedupe(engine, settings)


# (name, function, interval in seconds)
JOBS: list[tuple[str, Callable[[Engine, Settings], Any], int]] = [
    ("backup_nightly", backup_nightly, 600),
    ("dedupe_incremental", dedupe_incremental, 300),
    ("privacy_due", privacy_due, 3600),
    ("audit_anchor", audit_anchor, 3600),
    ("campaigns_due", campaigns_due, 60),
    ("campaign_conversions", campaign_conversions, 3600),
    ("sla_full_sweep", sla_full_sweep, 3600),
    ("sla_sweep", sla_sweep, 60),
    ("outbox", outbox, 30),
    ("analytics_requested", analytics_requested, 30),
    ("analytics_nightly", analytics_nightly, 600),
    ("loyalty_accrual", loyalty_accrual, 300),
    ("loyalty_daily", loyalty_daily, 600),
    ("care_daily", care_daily, 300),
    # Before the pool: contracts that ended today are expired when the pool asks.
    ("contracts_daily", contracts_daily, 3600),
    ("pool_daily", pool_daily, 3600),
    ("survey_invitations", survey_invitations, 3600),
    ("survey_follow_ups", survey_follow_ups, 300),
    ("retention_daily", retention_daily, 3600),
]


def run_once(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Every job once, in order (cron-style use, tests)."""
    return {name: job(engine, settings) for name, job, _every in JOBS}


def run_forever(engine: Engine, settings: Settings) -> None:
    """Run every job on its interval until stopped (Ctrl-C, SIGTERM)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from guanxi.core.metrics import counted

    scheduler = BlockingScheduler(timezone=settings.timezone)
    for name, job, every in JOBS:
        # The full sweep also runs at once: a just-upgraded database gets its moments.
        # (APScheduler reads an explicit next_run_time=None as "paused": pass it or not.)
        first = {"next_run_time": clock.now()} if name == "sla_full_sweep" else {}
        # One instance at a time per job; a late run is merged into the next, not queued.
        scheduler.add_job(
            # Counted and timed for /metrics (guanxi_worker_job_runs_total, core/metrics.py).
            counted(name, job),
            "interval",
            seconds=every,
            args=(engine, settings),
            id=name,
            max_instances=1,
            coalesce=True,
            **first,
        )
    log.info("worker started: %s", ", ".join(name for name, _job, _every in JOBS))
    scheduler.start()
