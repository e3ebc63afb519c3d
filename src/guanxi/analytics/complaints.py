"""Step ``text``: the complaint-text classifier trained on the tickets' own categories and
priorities, and the terms of each week's tickets with the emerging ones flagged.

The model (jieba + TF-IDF + logistic regression, :mod:`guanxi.analytics.text`) is kept with
the run as bytes; :func:`current_model` loads the newest one once per process and the ticket
form asks it for a category and priority while the agent types.
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.analytics import text
from guanxi.analytics.models import TermWeek, TrainedModel
from guanxi.analytics.runner import Step, StepContext, StepResult, latest_run, register
from guanxi.core.errors import ValidationFailed

MODEL_NAME = "ticket_text"
# Weeks of terms kept per run (the page shows the last twelve).
TERM_WEEKS = 26
TOP_TERMS = 20

TICKETS_SQL = """
SELECT subject, description, category, priority, created_at
FROM ticket
WHERE created_at < $as_of AND category IS NOT NULL
ORDER BY created_at, id
"""


def _run(ctx: StepContext) -> StepResult:
    rows = ctx.workspace.query(TICKETS_SQL, as_of=ctx.as_of).to_pylist()
    texts = [text.ticket_text(r["subject"], r["description"]) for r in rows]
    times = [r["created_at"] for r in rows]
    tokens = [text.terms(t) for t in texts]
    ctx.progress(1, 3)
    metrics: dict[str, Any] = {"tickets": len(rows)}
    written = 0
    if len(rows) >= text.MIN_TICKETS:
        try:
            model = text.train(
                texts,
                [text.top_level(r["category"]) for r in rows],
                times,
                priorities=[r["priority"] for r in rows],
                tokens=tokens,
            )
        except ValidationFailed as exc:
            # One category only, and the like: nothing to learn yet; the last model stays.
            metrics["trained"] = False
            metrics["reason"] = exc.message
        else:
            scores = {name: m.as_dict() for name, m in model.metrics.items()}
            ctx.save_model(MODEL_NAME, model.to_bytes(), scores)
            metrics.update(trained=True, **scores)
            written += 1
    else:
        metrics["trained"] = False
    ctx.progress(2, 3)
    written += ctx.write(TermWeek, _term_rows(texts, times, tokens, ctx.as_of.date()))
    ctx.progress(3, 3)
    return StepResult(rows=written, metrics=metrics)


def _term_rows(
    texts: list[str], times: list[Any], tokens: list[list[str]], today: date
) -> list[dict[str, Any]]:
    weekly = text.WeeklyTerms.build(texts, times, tokens=tokens)
    first = today - timedelta(weeks=TERM_WEEKS)
    out: list[dict[str, Any]] = []
    for week in weekly.weeks:
        monday = date.fromisoformat(_monday(week))
        if monday < first - timedelta(days=6):
            continue
        total = weekly.tickets[week]
        rising = {e.term: e for e in weekly.emerging(week)}
        for term, count in weekly.top(week, TOP_TERMS):
            e = rising.pop(term, None)
            out.append(_term(monday, term, count, total, e))
        for term, e in rising.items():  # emerging but not among the top terms
            out.append(_term(monday, term, e.count, total, e))
    return out


def _term(monday: date, term: str, count: int, total: int, e: Any) -> dict[str, Any]:
    return {
        "week": monday,
        "term": term[:40],
        "count": count,
        "share": count / total if total else 0.0,
        "ratio": e.ratio if e is not None else None,
        "emerging": e is not None,
    }


def _monday(week: str) -> str:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1).isoformat()


_cache: dict[str, Any] = {}
_lock = threading.Lock()


def current_model(session: Session) -> text.TextModel | None:
    """The newest trained complaint-text model, loaded once per process per model row."""
    row = session.execute(
        select(TrainedModel.id, TrainedModel.run_id)
        .where(TrainedModel.name == MODEL_NAME)
        .order_by(TrainedModel.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    with _lock:
        if _cache.get("id") != row.id:
            blob = session.scalar(select(TrainedModel.blob).where(TrainedModel.id == row.id))
            try:
                model = text.TextModel.from_bytes(blob) if blob is not None else None
            except ValidationFailed:
                # Written by another version of the software: wait for the next run.
                model = None
            _cache.update(id=row.id, model=model)
        cached: text.TextModel | None = _cache["model"]
    return cached


def model_metrics(session: Session) -> dict[str, Any]:
    """Held-out accuracy and macro-F1 of the current model (for the pages)."""
    raw = session.scalar(
        select(TrainedModel.metrics)
        .where(TrainedModel.name == MODEL_NAME)
        .order_by(TrainedModel.id.desc())
        .limit(1)
    )
    return json.loads(raw) if raw else {}


def weekly_terms(session: Session, *, weeks: int = 12) -> list[TermWeek]:
    """Terms of the last ``weeks`` weeks of the current ``text`` run, newest week first."""
    run_id = latest_run(session, "text")
    if run_id is None:
        return []
    newest = session.scalar(
        select(TermWeek.week)
        .where(TermWeek.run_id == run_id)
        .order_by(TermWeek.week.desc())
        .limit(1)
    )
    if newest is None:
        return []
    return list(
        session.scalars(
            select(TermWeek)
            .where(TermWeek.run_id == run_id, TermWeek.week > newest - timedelta(weeks=weeks))
            .order_by(TermWeek.week.desc(), TermWeek.count.desc(), TermWeek.term)
        )
    )


STEP = register(Step(name="text", reads=("ticket",), run=_run, writes=(TrainedModel, TermWeek)))
