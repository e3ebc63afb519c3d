"""A campaign's report: the funnel per group, the incremental revenue and ROI with a
confidence interval, the conversion-rate uplift with its interval, and satisfaction
before and after.

Estimation (intent to treat: every treated recipient counts, whether or not the message
reached them, so the comparison with the random control group stays unbiased):

- per-recipient revenue ``y`` (fen, zero for most) in the treated (T) and control (C)
  groups; the per-capita uplift ``mean(T) − mean(C)`` with Welch's t interval (unequal
  variances, Welch–Satterthwaite degrees of freedom; ``scipy.stats.t``);
- incremental revenue = uplift × |T|, its interval scaled the same way; net = that minus
  the cost lines; ROI = net / cost;
- conversion uplift: the same difference of means on the 0/1 "converted" indicator.

The group sums (n, Σy, Σy²) come from one aggregate query, so a report over half a million
recipients reads no rows into Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from guanxi.campaigns.models import Campaign, CampaignRecipient
from guanxi.campaigns.schemas import (
    CONTROL,
    CampaignReport,
    GroupFigures,
    Interval,
    Satisfaction,
)
from guanxi.campaigns.service import get_campaign, total_cost
from guanxi.campaigns.tracking import window
from guanxi.core.i18n import N_

LEVEL = 0.95
TREATED = "treated"
# Satisfaction "before" looks back this far from the campaign's start.
BEFORE = timedelta(days=90)


@dataclass(frozen=True)
class Moments:
    """A sample summarised: size, sum and sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        """The sample mean (0 for an empty sample)."""
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 below two observations)."""
        if self.n < 2:
            return 0.0
        return max(self.squares - self.total * self.total / self.n, 0.0) / (self.n - 1)


def welch(treated: Moments, control: Moments, level: float = LEVEL) -> Interval | None:
    """``mean(treated) − mean(control)`` with Welch's t interval; None when a group has
    fewer than two observations (no variance to estimate)."""
    from scipy import stats

    if treated.n < 2 or control.n < 2:
        return None
    diff = treated.mean - control.mean
    vt, vc = treated.variance / treated.n, control.variance / control.n
    se2 = vt + vc
    if se2 == 0:
        return Interval(estimate=diff, low=diff, high=diff, level=level)
    df = se2 * se2 / (vt * vt / (treated.n - 1) + vc * vc / (control.n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return Interval(estimate=diff, low=diff - half, high=diff + half, level=level)


def scaled(interval: Interval | None, factor: float, shift: float = 0.0) -> Interval | None:
    """``interval × factor + shift`` (a positive factor keeps low below high)."""
    if interval is None:
        return None
    return Interval(
        estimate=interval.estimate * factor + shift,
        low=interval.low * factor + shift,
        high=interval.high * factor + shift,
        level=interval.level,
    )


def _group_rows(session: Session, campaign: Campaign) -> list[Any]:
    """Per variant (and control): recipients, clicked, converted, Σrevenue, Σrevenue²,
    sent, delivered (outbox rows of the campaign's source)."""
    from guanxi.notify.models import OutboxMessage

    r = CampaignRecipient
    o = OutboxMessage
    revenue = cast(r.revenue_fen, Float)
    stmt = (
        select(
            r.variant,
            func.count(r.customer_id),
            func.sum(case((r.clicks > 0, 1), else_=0)),
            func.sum(case((r.conversions > 0, 1), else_=0)),
            func.coalesce(func.sum(r.revenue_fen), 0),
            func.coalesce(func.sum(revenue * revenue), 0.0),
            func.sum(case((o.status == "sent", 1), else_=0)),
            func.sum(case((o.delivery == "delivered", 1), else_=0)),
        )
        .outerjoin(o, and_(o.customer_id == r.customer_id, o.source == campaign.source))
        .where(r.campaign_id == campaign.id)
        .group_by(r.variant)
        .order_by(r.variant)
    )
    return list(session.execute(stmt))


def report(session: Session, *, campaign_id: int) -> CampaignReport:
    """The campaign's report (see the module docstring)."""
    campaign = get_campaign(session, campaign_id)
    rows = _group_rows(session, campaign)
    groups: list[GroupFigures] = []
    moments: dict[str, Moments] = {}
    conv: dict[str, Moments] = {}
    for variant, n, clicked, converted, rev, rev2, sent, delivered in rows:
        groups.append(
            GroupFigures(
                group=variant,
                recipients=int(n),
                sent=int(sent or 0),
                delivered=int(delivered or 0),
                clicked=int(clicked or 0),
                converted=int(converted or 0),
                revenue_fen=int(rev or 0),
            )
        )
        moments[variant] = Moments(int(n), float(rev or 0), float(rev2 or 0))
        conv[variant] = Moments(int(n), float(converted or 0), float(converted or 0))
    treated_groups = [g for g in groups if g.group != CONTROL]
    if len(treated_groups) > 1:
        groups.append(_sum_group(TREATED, treated_groups))
    treated = _pool([m for k, m in moments.items() if k != CONTROL])
    control = moments.get(CONTROL, Moments(0, 0.0, 0.0))
    t_conv = _pool([m for k, m in conv.items() if k != CONTROL])
    c_conv = conv.get(CONTROL, Moments(0, 0.0, 0.0))
    cost = total_cost(campaign)
    per_capita = welch(treated, control)
    incremental = scaled(per_capita, treated.n)
    net = scaled(incremental, 1.0, -cost)
    roi = scaled(net, 1 / cost) if cost and net is not None else None
    before, after = satisfaction(session, campaign)
    return CampaignReport(
        campaign_id=campaign.id,
        status=campaign.status,
        groups=groups,
        cost_fen=cost,
        incremental_revenue_fen=incremental,
        net_fen=net,
        roi=roi,
        conversion_uplift=welch(t_conv, c_conv),
        satisfaction_before=before,
        satisfaction_after=after,
    )


def _pool(parts: Sequence[Moments]) -> Moments:
    return Moments(
        sum(p.n for p in parts), sum(p.total for p in parts), sum(p.squares for p in parts)
    )


def _sum_group(name: str, groups: Sequence[GroupFigures]) -> GroupFigures:
    return GroupFigures(
        group=name,
        recipients=sum(g.recipients for g in groups),
        sent=sum(g.sent for g in groups),
        delivered=sum(g.delivered for g in groups),
        clicked=sum(g.clicked for g in groups),
        converted=sum(g.converted for g in groups),
        revenue_fen=sum(g.revenue_fen for g in groups),
    )


def satisfaction(session: Session, campaign: Campaign) -> tuple[Satisfaction, Satisfaction]:
    """Mean CSAT of the treated recipients' survey answers in the 90 days before the
    campaign's start and within its attribution window after it."""
    from guanxi.surveys.results import csat_of_customers

    span = window(campaign)
    empty = Satisfaction(responses=0, mean_csat=None)
    if span is None:
        return empty, empty
    start, end = span
    treated = select(CampaignRecipient.customer_id).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.variant != CONTROL
    )
    n0, m0 = csat_of_customers(session, customers=treated, since=start - BEFORE, until=start)
    n1, m1 = csat_of_customers(session, customers=treated, since=start, until=end)
    return Satisfaction(responses=n0, mean_csat=m0), Satisfaction(responses=n1, mean_csat=m1)


# Column headings of the export (translated when written).
EXPORT_HEADINGS = (
    N_("Group"),
    N_("Recipients"),
    N_("Sent"),
    N_("Delivered to handset"),
    N_("Clicked"),
    N_("Converted"),
    N_("Revenue (yuan)"),
)


def export_table(
    session: Session, *, campaign_id: int, lang: str
) -> tuple[list[str], list[list[Any]]]:
    """The report as a table (one line per group, then the estimates) for CSV / XLSX."""
    from guanxi.core import i18n

    data = report(session, campaign_id=campaign_id)

    def tr(text: str) -> str:
        return i18n.gettext(lang, text)

    header = [tr(h) for h in EXPORT_HEADINGS]
    lines: list[list[Any]] = [
        [
            tr(N_("Control group")) if g.group == CONTROL else g.group,
            g.recipients,
            g.sent,
            g.delivered,
            g.clicked,
            g.converted,
            round(g.revenue_fen / 100, 2),
        ]
        for g in data.groups
    ]
    for label, value in (
        (N_("Incremental revenue (yuan)"), data.incremental_revenue_fen),
        (N_("Net of cost (yuan)"), data.net_fen),
    ):
        if value is not None:
            lines.append(
                [
                    tr(label),
                    round(value.estimate / 100, 2),
                    round(value.low / 100, 2),
                    round(value.high / 100, 2),
                    "",
                    "",
                    "",
                ]
            )
    return header, lines
