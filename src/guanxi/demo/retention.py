"""Demo: the retention purge run once over the demo data, after a preview, so the
retention page (/privacy/retention) shows a report on the first visit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.config import Settings
from guanxi.privacy.retention import run_purge


@dataclass(frozen=True)
class DemoRetention:
    """What the demo's purge did: rows and files removed over all categories."""

    previewed: int
    rows: int
    files: int


def seed_retention(session: Session, settings: Settings) -> DemoRetention:
    """Preview, then purge once (the daily job's work) as the demo actor."""
    actor = Actor.system("demo")
    preview = run_purge(session, actor=actor, trigger="demo", settings=settings, dry_run=True)
    purged = run_purge(session, actor=actor, trigger="demo", settings=settings)
    return DemoRetention(
        previewed=sum(r.rows + r.files for r in preview.reports),
        rows=sum(r.rows for r in purged.reports),
        files=sum(r.files for r in purged.reports),
    )
