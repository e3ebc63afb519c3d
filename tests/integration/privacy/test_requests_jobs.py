"""The worker tells the privacy officers of requests due within the warning days and of
overdue ones, once per request and due date."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core import clock
from guanxi.notify.models import Notification
from guanxi.privacy.enums import RequestChannel, RequestKind, Verification
from guanxi.privacy.jobs import notify_due
from guanxi.privacy.schemas import RequestCreate
from guanxi.privacy.service import create_request, working_calendar

RECEIVED = datetime(2025, 9, 29, 2, 0, tzinfo=UTC)  # due 2025-10-27


def _notes(db: Session) -> list[tuple[int, str, str, str | None]]:
    return [
        (n.user_id, n.kind, n.subject, n.link)
        for n in db.scalars(select(Notification).order_by(Notification.id))
    ]


def test_due_soon_then_overdue_once_each(db: Session, make_user: Any, make_customer: Any) -> None:
    officer = make_user("privacy_officer")
    make_user("manager")
    gone = make_user("privacy_officer")
    gone.is_active = False
    db.commit()
    customer = make_customer()
    with clock.frozen(RECEIVED):
        req = create_request(
            db,
            request_in=RequestCreate(
                customer_id=customer.id,
                kind=RequestKind.deletion,
                channel=RequestChannel.letter,
                verification=Verification.id_document,
            ),
            actor=officer,
        )
    cal = working_calendar()
    # Four working days before: nothing yet (three is the default warning).
    quiet = notify_due(
        db, now=datetime(2025, 10, 21, 2, 0, tzinfo=UTC), language="en", calendar=cal
    )
    assert quiet.figures() == {"due_soon": 0, "overdue": 0, "notified": 0}
    soon = notify_due(
        db, now=datetime(2025, 10, 22, 2, 0, tzinfo=UTC), language="zh_CN", calendar=cal
    )
    assert soon.figures() == {"due_soon": 1, "overdue": 0, "notified": 1}
    again = notify_due(
        db, now=datetime(2025, 10, 23, 2, 0, tzinfo=UTC), language="en", calendar=cal
    )
    assert again.figures() == {"due_soon": 1, "overdue": 0, "notified": 0}
    late = notify_due(db, now=datetime(2025, 10, 28, 2, 0, tzinfo=UTC), language="en", calendar=cal)
    assert late.figures() == {"due_soon": 0, "overdue": 1, "notified": 1}
    notes = _notes(db)
    assert [(u, k, link) for u, k, _s, link in notes] == [
        (officer.id, "privacy_due", f"/privacy/requests/{req.id}"),
        (officer.id, "privacy_overdue", f"/privacy/requests/{req.id}"),
    ]
    assert notes[1][2] == (
        f"Privacy request #{req.id} (Deletion (删除)) is overdue: it was due on 2025-10-27"
    )


def test_the_worker_runs_it_hourly(committed_engine: Any, tmp_path: Any) -> None:
    from guanxi.worker import JOBS, privacy_due
    from tests.conftest import settings_for

    assert [(n, every) for n, _job, every in JOBS if n == "privacy_due"] == [("privacy_due", 3600)]
    settings = settings_for(committed_engine.url.render_as_string(hide_password=False), tmp_path)
    assert privacy_due(committed_engine, settings) == {"due_soon": 0, "overdue": 0, "notified": 0}
