"""The statistics of the campaign report: Welch's interval agrees with scipy's Welch
t-test, the moments of grouped sums, the seeded split (reproducible, in proportion) and
the tracked-link codes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from guanxi.campaigns.launch import new_codes, split
from guanxi.campaigns.roi import Moments, scaled, welch


def _moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values * values).sum()))


def test_welch_matches_scipys_welch_t_test() -> None:
    rng = np.random.default_rng(1)
    treated = rng.exponential(30, 700) * (rng.random(700) < 0.3)
    control = rng.exponential(30, 300) * (rng.random(300) < 0.2)
    interval = welch(_moments(treated), _moments(control))
    assert interval is not None
    test = stats.ttest_ind(treated, control, equal_var=False)
    ci = test.confidence_interval(0.95)
    assert interval.estimate == pytest.approx(treated.mean() - control.mean())
    assert interval.low == pytest.approx(ci.low)
    assert interval.high == pytest.approx(ci.high)
    assert interval.level == 0.95


def test_welch_needs_two_observations_a_group_and_handles_no_spread() -> None:
    assert welch(Moments(1, 5.0, 25.0), Moments(10, 0.0, 0.0)) is None
    flat = welch(Moments(3, 3.0, 3.0), Moments(4, 0.0, 0.0))
    assert flat is not None
    assert (flat.estimate, flat.low, flat.high) == (1.0, 1.0, 1.0)


def test_scaled_moves_the_whole_interval() -> None:
    base = welch(Moments(3, 3.0, 5.0), Moments(3, 0.0, 2.0))
    assert base is not None
    moved = scaled(base, 10, -4)
    assert moved is not None
    assert moved.estimate == pytest.approx(base.estimate * 10 - 4)
    assert moved.low == pytest.approx(base.low * 10 - 4)
    assert moved.high == pytest.approx(base.high * 10 - 4)
    assert scaled(None, 2) is None


def test_moments() -> None:
    m = _moments(np.array([1.0, 2.0, 3.0, 4.0]))
    assert m.mean == 2.5
    assert m.variance == pytest.approx(np.var([1, 2, 3, 4], ddof=1))
    assert Moments(0, 0.0, 0.0).mean == 0.0


def test_the_split_is_reproducible_and_in_proportion() -> None:
    ids = list(range(1, 100_001))
    weights = [("A", 1), ("B", 3)]
    one = split(ids, seed=42, control_pct=20, weights=weights)
    assert one == split(ids, seed=42, control_pct=20, weights=weights)
    # The same customer lands in the same group whatever else the audience holds.
    part = split(ids[5000:6000], seed=42, control_pct=20, weights=weights)
    assert part == one[5000:6000]
    other = split(ids, seed=43, control_pct=20, weights=weights)
    assert other != one
    shares = {g: one.count(g) / len(ids) for g in ("control", "A", "B")}
    assert shares["control"] == pytest.approx(0.20, abs=0.01)
    assert shares["A"] == pytest.approx(0.20, abs=0.01)
    assert shares["B"] == pytest.approx(0.60, abs=0.01)
    assert split(ids[:10], seed=1, control_pct=0, weights=[("A", 1)]) == ["A"] * 10
    assert split([], seed=1, control_pct=10, weights=[("A", 1)]) == []


def test_link_codes_are_unique_url_safe_and_16_characters() -> None:
    codes = new_codes(20_000)
    assert len(set(codes)) == 20_000
    assert all(len(c) == 16 for c in codes)
    assert all(c.replace("-", "").replace("_", "").isalnum() for c in codes)
