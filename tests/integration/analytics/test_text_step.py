"""Step ``text`` over the ticket table, and the ticket form's suggestion from its model."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics import runner, text
from guanxi.analytics.complaints import MODEL_NAME, _cache, current_model
from guanxi.analytics.models import TermWeek, TrainedModel
from guanxi.demo.texts import complaint_texts
from tests.conftest import PASSWORD
from tests.integration.analytics.conftest import AnalyticsDb, local

# A Sunday evening: the newest ISO week (Mon 23 – Sun 29 March) is complete.
AS_OF = local(2026, 3, 29, 23, 0)
CODES = ["delay.transit", "damage.package", "loss.whole", "pickup.missed"]


@pytest.fixture(scope="module")
def tickets(analytics_db: AnalyticsDb) -> int:
    rng = np.random.default_rng(11)
    codes = [CODES[i % len(CODES)] for i in range(160)]
    texts = complaint_texts(codes, rng)
    customer = analytics_db.rows.customer(local(2025, 1, 1, 9, 0))
    start = AS_OF - timedelta(weeks=12)
    for i, (code, (subject, description)) in enumerate(zip(codes, texts, strict=True)):
        at = start + timedelta(minutes=756 * i)  # 12.6 hours apart: 13 a week
        # The newest week: a planted topic (台风停运) in all of its tickets.
        if at >= local(2026, 3, 23, 0, 0):
            description = f"{description} 听说台风停运了。"
        analytics_db.rows.ticket(
            customer,
            at,
            category=code,
            subject=subject,
            description=description,
            priority="high" if code.startswith("loss") else "normal",
        )
    return len(codes)


def test_text_step_trains_the_model_and_counts_weekly_terms(
    analytics_db: AnalyticsDb, tickets: int
) -> None:
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["text"], force=True, as_of=AS_OF
    )
    assert summary.steps == {"text": "succeeded"}
    metrics = summary.metrics["text"]
    assert (metrics["tickets"], metrics["trained"]) == (tickets, True)
    # Held out: the newest 20 % by time.
    assert (metrics["category"]["n_train"], metrics["category"]["n_test"]) == (128, 32)
    assert metrics["category"]["labels"] == ["damage", "delay", "loss", "pickup"]
    assert metrics["category"]["accuracy"] > metrics["category"]["baseline_accuracy"]
    with Session(analytics_db.engine) as session:
        model = current_model(session)
        assert model is not None
        top, _priority = model.suggest_all("快递员一直没来上门取件", "")
        assert top[0][0] == "pickup"
        newest = session.scalar(
            select(TermWeek.week)
            .where(TermWeek.run_id == summary.run_id)
            .order_by(TermWeek.week.desc())
            .limit(1)
        )
        emerging = set(
            session.scalars(
                select(TermWeek.term).where(
                    TermWeek.run_id == summary.run_id,
                    TermWeek.week == newest,
                    TermWeek.emerging.is_(True),
                )
            )
        )
    assert {"台风", "停运"} <= emerging


def _sign_in(client: Any, username: str) -> str:
    client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    page = client.get("/tickets/new")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _model_row(db: Session) -> None:
    rng = np.random.default_rng(5)
    codes = [CODES[i % len(CODES)] for i in range(200)]
    pairs = complaint_texts(codes, rng)
    model = text.train(
        [text.ticket_text(s, d) for s, d in pairs],
        [text.top_level(c) for c in codes],
        [AS_OF - timedelta(hours=i) for i in range(len(codes))][::-1],
        priorities=["high" if c.startswith("loss") else "normal" for c in codes],
    )
    from guanxi.analytics.models import AnalyticsRun

    run = AnalyticsRun(as_of=AS_OF, status="succeeded")
    db.add(run)
    db.flush()
    db.add(TrainedModel(run_id=run.id, name=MODEL_NAME, blob=model.to_bytes(), metrics="{}"))
    db.flush()
    _cache.clear()


def test_ticket_form_suggests_and_preselects_an_empty_category(
    client: Any, login: Any, db: Session
) -> None:
    _model_row(db)
    user, _headers = login("agent")
    csrf = _sign_in(client, user.username)
    form = {
        "csrf_token": csrf,
        "subject": "包裹外包装破损",
        "description": "箱子压坏了，里面东西也碎了",
        "category": "",
    }
    html = client.post("/tickets/suggest", data=form, headers={"Accept-Language": "zh-CN"}).text
    assert '<span class="pill ok">破损' in html
    assert 'hx-swap-oob="true"' in html
    assert '<option value="damage" selected>破损</option>' in html
    # A category the agent chose is never overruled.
    chosen = client.post("/tickets/suggest", data=form | {"category": "delay"}).text
    assert "hx-swap-oob" not in chosen
    assert "pill ok" in chosen


def test_no_model_no_suggestion(client: Any, login: Any) -> None:
    _cache.clear()
    user, _headers = login("agent")
    csrf = _sign_in(client, user.username)
    html = client.post("/tickets/suggest", data={"csrf_token": csrf, "subject": "快件延误"}).text
    assert "Suggested" not in html
    assert "pill" not in html
