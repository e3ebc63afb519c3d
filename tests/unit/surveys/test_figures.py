"""Pure figures: NPS coding, summaries from sums, period names, the relationship period."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from guanxi.surveys.analysis import nps_coded
from guanxi.surveys.results import Tally, period_label, period_start
from guanxi.surveys.triggers import period_of


def test_nps_coding() -> None:
    coded = nps_coded(np.array([0, 6, 7, 8, 9, 10], dtype=float))
    assert coded.tolist() == [-100.0, -100.0, 0.0, 0.0, 100.0, 100.0]
    assert coded.mean() == pytest.approx(0.0)


def test_a_summary_from_sums() -> None:
    t = Tally(n=4, csat_n=3, csat_sum=24, satisfied=2, nps_n=4, promoters=3, detractors=1)
    t.add(Tally(n=1, nps_n=1, detractors=1, dim_sum={"price": 6}, dim_n={"price": 1}))
    s = t.summary()
    assert (s.responses, s.csat_mean, s.satisfied_share) == (5, 8.0, pytest.approx(2 / 3))
    assert (s.promoters, s.passives, s.detractors, s.nps) == (3, 0, 2, 20.0)
    assert (s.dimensions["price"], s.dimension_answers["price"]) == (6.0, 1)
    empty = Tally().summary()
    assert (empty.csat_mean, empty.nps, empty.satisfied_share) == (None, None, None)


def test_periods() -> None:
    assert period_start(date(2026, 11, 15), "week") == date(2026, 11, 9)
    assert period_label(date(2026, 11, 9), "week") == "2026-W46"
    assert period_label(date(2027, 1, 1), "week") == "2026-W53"
    assert period_start(date(2026, 11, 15), "month") == date(2026, 11, 1)
    assert period_label(date(2026, 11, 1), "month") == "2026-11"


def test_relationship_periods_in_local_time() -> None:
    tz = "Asia/Shanghai"
    assert period_of(datetime(2026, 3, 31, 15, 59, tzinfo=UTC), 3, tz) == "2026-01"
    assert period_of(datetime(2026, 3, 31, 16, 0, tzinfo=UTC), 3, tz) == "2026-04"
    assert period_of(datetime(2026, 11, 20, tzinfo=UTC), 1, tz) == "2026-11"
    assert period_of(datetime(2026, 11, 20, tzinfo=UTC), 6, tz) == "2026-07"
    assert period_of(datetime(2026, 11, 20, tzinfo=UTC), 12, tz) == "2026-01"
