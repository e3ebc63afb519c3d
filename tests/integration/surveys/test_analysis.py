"""Driver analysis finds the dimension planted to drive CSAT; the before / after comparison
finds a planted shift, with the hand-computed means, intervals and NPS."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from guanxi.core.db import write_transaction
from guanxi.surveys import analysis, results
from guanxi.surveys.models import SurveyResponse
from guanxi.surveys.service import current_version
from tests.integration.surveys.helpers import template

TZ = "Asia/Shanghai"
DIMS = ("service_attitude", "timeliness", "process", "price", "after_sales")


def _add(db: Session, rows: list[dict[str, Any]]) -> None:
    tpl = template(db, "after_ticket")
    version = current_version(db, tpl.id)
    assert version is not None
    with write_transaction(db):
        for row in rows:
            db.add(
                SurveyResponse(
                    template_id=tpl.id, version_id=version.id, trigger="ticket",
                    channel="sms", language="zh_CN", follow_up="none", **row,
                )
            )  # fmt: skip


def test_driver_analysis_finds_the_planted_driver(db: Session) -> None:
    # Five independent dimension scores; CSAT follows timeliness closely, price a little,
    # the rest not at all.
    rng = np.random.default_rng(6)
    n = 240
    dims = rng.integers(1, 11, size=(n, 5))
    noise = rng.normal(0, 0.8, size=n)
    csat = np.clip(np.rint(1.0 + 0.75 * dims[:, 1] + 0.15 * dims[:, 3] + noise), 1, 10)
    at = datetime(2026, 11, 10, 2, tzinfo=UTC)
    _add(
        db,
        [
            {
                "submitted_at": at + timedelta(minutes=i),
                "csat": int(csat[i]),
                **{f"dim_{d}": int(dims[i, j]) for j, d in enumerate(DIMS)},
            }
            for i in range(n)
        ],
    )
    found = analysis.drivers(db, results.Filters(date(2026, 11, 1), date(2026, 11, 30)), TZ)
    assert found.responses == n
    ranked = [d.dimension for d in found.drivers]
    assert ranked[:2] == ["timeliness", "price"]
    top, second = found.drivers[0], found.drivers[1]
    assert top.beta > 0.85
    assert top.p_value < 1e-10
    assert top.correlation > 0.85
    assert 0.05 < second.beta < 0.3
    for other in found.drivers[2:]:
        assert abs(other.beta) < 0.08
    assert found.r_squared is not None
    assert found.r_squared > 0.8


def test_too_few_answers_give_no_drivers(db: Session) -> None:
    at = datetime(2026, 11, 10, 2, tzinfo=UTC)
    _add(db, [{"submitted_at": at, "csat": 5 + i % 3, "dim_timeliness": 4 + i} for i in range(5)])
    found = analysis.drivers(db, results.Filters(date(2026, 11, 1), date(2026, 11, 30)), TZ)
    assert (found.responses, found.drivers) == (5, [])


def test_before_and_after_a_campaign(db: Session) -> None:
    at = date(2026, 10, 1)
    before = datetime(2026, 9, 21, 2, tzinfo=UTC)
    after = datetime(2026, 10, 11, 2, tzinfo=UTC)
    rows = []
    for i in range(60):
        rows.append({"submitted_at": before, "csat": (5, 6, 7)[i % 3], "nps": (3, 7, 9)[i % 3]})
        rows.append({"submitted_at": after, "csat": (7, 8, 9)[i % 3], "nps": (9, 10, 7)[i % 3]})
    # Outside both windows of 30 days.
    rows.append({"submitted_at": datetime(2026, 8, 1, tzinfo=UTC), "csat": 1, "nps": 0})
    rows.append({"submitted_at": datetime(2026, 11, 5, tzinfo=UTC), "csat": 1, "nps": 0})
    _add(db, rows)
    out = analysis.compare(db, results.Filters(at, at), TZ, at=at, days=30)
    assert (out.before.start, out.before.end) == (date(2026, 9, 1), date(2026, 9, 30))
    assert (out.after.start, out.after.end) == (date(2026, 10, 1), date(2026, 10, 30))
    assert (out.before.responses, out.after.responses) == (60, 60)
    assert (out.before.csat_mean, out.after.csat_mean) == (6.0, 8.0)
    # s = sqrt(40 / 59), t(0.975, 59) = 2.000995: 6 +- 0.21271.
    half = 2.000995 * math.sqrt(40 / 59) / math.sqrt(60)
    assert out.before.csat_ci == pytest.approx((6 - half, 6 + half), abs=1e-4)
    assert out.after.csat_ci == pytest.approx((8 - half, 8 + half), abs=1e-4)
    # NPS: before 20 promoters, 20 detractors of 60: 0; after 40 promoters: 66.7.
    assert out.before.nps == pytest.approx(0.0)
    assert out.after.nps == pytest.approx(200 / 3)
    assert out.csat_p_value is not None
    assert out.csat_p_value < 1e-20
    assert out.nps_p_value is not None
    assert out.nps_p_value < 1e-6
    # Nothing on one side: no test (the answers of 09-21 10:00 local fall after).
    one = analysis.compare(db, results.Filters(at, at), TZ, at=date(2026, 9, 21), days=10)
    assert (one.before.responses, one.after.responses, one.after.csat_mean) == (0, 60, 6.0)
    assert (one.before.csat_ci, one.csat_p_value, one.nps_p_value) == (None, None, None)
