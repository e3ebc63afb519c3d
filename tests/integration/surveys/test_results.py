"""Results on hand-computed data: CSAT, NPS with its three groups, dimension means,
response rate, weekly and monthly trends (local days), breakdowns by region, agent and
segment, and the CSV export.

Six answers to the after-ticket survey in November 2026 (Asia/Shanghai):

    #  local time          csat nps  region agent segment    timeliness
    1  11-02 10:00         9    10   浙江省  A     champions  9
    2  11-03 10:00         8    9    浙江省  A     champions
    3  11-08 23:30         7    8    广东省  B     at_risk
    4  11-09 01:00 (UTC 11-08 17:00)  4  3  广东省  B  at_risk  2
    5  11-10 10:00         10   6    广东省  A     -
    6  11-11 10:00         -    7    -      -     -

NPS: promoters 2 (10, 9), passives 2 (8, 7), detractors 2 (3, 6): 100 x (2 - 2) / 6 = 0.
CSAT: (9 + 8 + 7 + 4 + 10) / 5 = 7.6; satisfied (>= 8): 3 / 5 = 60 %. Timeliness 5.5 (2).
Weeks: W45 (11-02..11-08) holds 1-3: NPS 100 x (2 - 0) / 3 = 66.7, CSAT 8.0;
W46 holds 4-6: NPS 100 x (0 - 2) / 3 = -66.7, CSAT 7.0.
Regions: 浙江省 NPS 100, CSAT 8.5; 广东省 NPS -66.7, CSAT 7.0, satisfied 1/3.
Agents: A (1, 2, 5) NPS 33.3, CSAT 9.0; B (3, 4) NPS -50, CSAT 5.5.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from guanxi.analytics.models import AnalyticsRun, AnalyticsStep, CustomerClass
from guanxi.core.db import write_transaction
from guanxi.surveys import results
from guanxi.surveys.models import SurveyResponse
from guanxi.surveys.service import current_version
from tests.integration.surveys.helpers import invite, template

TZ = "Asia/Shanghai"
NOV = results.Filters(start=date(2026, 11, 1), end=date(2026, 11, 30))


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def planted(db: Session, make_user: Any, make_customer: Any) -> dict[str, Any]:
    a, b = make_user("agent"), make_user("agent")
    c1, c2 = make_customer(name="甲"), make_customer(name="乙")
    tpl = template(db, "after_ticket")
    version = current_version(db, tpl.id)
    assert version is not None
    rows = [
        (utc(11, 2, 2), 9, 10, "浙江省", a.id, c1.id, 9),
        (utc(11, 3, 2), 8, 9, "浙江省", a.id, c1.id, None),
        (utc(11, 8, 15, 30), 7, 8, "广东省", b.id, c2.id, None),
        (utc(11, 8, 17), 4, 3, "广东省", b.id, c2.id, 2),
        (utc(11, 10, 2), 10, 6, "广东省", a.id, None, None),
        (utc(11, 11, 2), None, 7, None, None, None, None),
        # Outside November: never counted.
        (utc(10, 31, 15, 59), 1, 0, "浙江省", a.id, None, None),
    ]
    with write_transaction(db):
        for at, csat, nps, region, agent, customer, timeliness in rows:
            db.add(
                SurveyResponse(
                    template_id=tpl.id, version_id=version.id, trigger="ticket", channel="sms",
                    language="zh_CN", submitted_at=at, csat=csat, nps=nps, region=region,
                    agent_id=agent, customer_id=customer, dim_timeliness=timeliness,
                    service_type="express", follow_up="none",
                )
            )  # fmt: skip
        run = AnalyticsRun(as_of=utc(11, 1, 0), status="succeeded", trigger="test")
        db.add(run)
        db.flush()
        db.add(AnalyticsStep(run_id=run.id, step="rfm", status="succeeded"))
        for cid, segment in ((c1.id, "champions"), (c2.id, "at_risk")):
            db.add(
                CustomerClass(
                    run_id=run.id, customer_id=cid, segment=segment, frequency_class="high",
                    value_tier="high", relationship="loyal",
                )
            )  # fmt: skip
    return {"a": a, "b": b, "template": tpl}


def test_summary_is_hand_computed(db: Session, planted: dict[str, Any]) -> None:
    s = results.summary(db, NOV, TZ)
    assert (s.responses, s.csat_answers, s.nps_answers) == (6, 5, 6)
    assert s.csat_mean == pytest.approx(7.6)
    assert s.satisfied_share == pytest.approx(0.6)
    assert (s.promoters, s.passives, s.detractors) == (2, 2, 2)
    assert s.nps == pytest.approx(0.0)
    assert s.dimensions["timeliness"] == pytest.approx(5.5)
    assert s.dimension_answers["timeliness"] == 2
    assert s.dimensions["price"] is None


def test_trends_group_by_local_week_and_month(db: Session, planted: dict[str, Any]) -> None:
    weeks = results.trend(db, NOV, TZ, "week")
    assert [label for label, _s in weeks] == ["2026-W45", "2026-W46"]
    (_w45, first), (_w46, second) = weeks
    assert (first.responses, second.responses) == (3, 3)
    assert first.nps == pytest.approx(200 / 3)
    assert second.nps == pytest.approx(-200 / 3)
    assert (first.csat_mean, second.csat_mean) == (pytest.approx(8.0), pytest.approx(7.0))
    [(month, whole)] = results.trend(db, NOV, TZ, "month")
    assert (month, whole.responses, whole.nps) == ("2026-11", 6, pytest.approx(0.0))


def test_breakdowns_by_region_agent_and_segment(db: Session, planted: dict[str, Any]) -> None:
    regions = dict(results.breakdown(db, NOV, TZ, "region"))
    assert list(regions) == ["广东省", "浙江省", "unknown"]
    assert (regions["浙江省"].nps, regions["浙江省"].csat_mean) == (100.0, 8.5)
    assert regions["广东省"].nps == pytest.approx(-200 / 3)
    assert regions["广东省"].satisfied_share == pytest.approx(1 / 3)
    assert (regions["unknown"].responses, regions["unknown"].nps) == (1, 0.0)
    agents = dict(results.breakdown(db, NOV, TZ, "agent"))
    a, b = str(planted["a"].id), str(planted["b"].id)
    assert agents[a].nps == pytest.approx(100 / 3)
    assert agents[a].csat_mean == pytest.approx(9.0)
    assert (agents[b].nps, agents[b].csat_mean) == (-50.0, 5.5)
    segments = dict(results.breakdown(db, NOV, TZ, "segment"))
    assert {k: v.responses for k, v in segments.items()} == {
        "champions": 2,
        "at_risk": 2,
        "unclassified": 2,
    }
    assert segments["at_risk"].nps == pytest.approx(-50.0)
    only = results.summary(db, results.Filters(NOV.start, NOV.end, segment="champions"), TZ)
    assert (only.responses, only.nps, only.csat_mean) == (2, 100.0, 8.5)


def test_response_rate_counts_the_invitations_sent(
    db: Session, planted: dict[str, Any], make_customer: Any
) -> None:
    from guanxi.surveys import responses

    invited = [
        invite(db, make_customer(name=f"客户{n}").id, "after_ticket", now=utc(11, 5 + n, 2))
        for n in range(4)
    ]
    invite(db, make_customer(name="十月").id, "after_ticket", now=utc(10, 20, 2))
    from guanxi.core import clock

    with clock.frozen(utc(11, 12, 2)):
        responses.answer_link(db, token=invited[0].token, answers={"csat": 8, "nps": 9}, lang="en")
    data = results.results(db, NOV, TZ, period="month", by="template")
    assert (data.invitations, data.answered_invitations) == (4, 1)
    assert data.response_rate == pytest.approx(0.25)
    assert data.summary.responses == 7
    assert data.breakdown[0][0] == "after_ticket"


def test_the_csv_export(db: Session, planted: dict[str, Any]) -> None:
    text = "".join(results.export_csv(db, NOV, TZ))
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == results.EXPORT_HEADER
    assert len(rows) == 7
    first = dict(zip(rows[0], rows[1], strict=True))
    assert (first["submitted_at"], first["csat"], first["nps"], first["template"]) == (
        "2026-11-02 10:00:00",
        "9",
        "10",
        "after_ticket",
    )
    assert [r[1][:10] for r in rows[1:]] == [
        "2026-11-02", "2026-11-03", "2026-11-08", "2026-11-09", "2026-11-10", "2026-11-11",
    ]  # fmt: skip


def test_results_api_and_page(
    client: Any, login: Any, db: Session, planted: dict[str, Any]
) -> None:
    _user, headers = login("analyst")
    resp = client.get(
        "/api/v1/surveys/results",
        params={"start": "2026-11-01", "end": "2026-11-30", "by": "region", "period": "week"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["summary"]["nps"] == 0.0
    assert body["summary"]["csat_mean"] == 7.6
    assert [row[0] for row in body["breakdown"]] == ["广东省", "浙江省", "unknown"]
    bad = client.get("/api/v1/surveys/results", params={"by": "colour"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.by"
    export = client.get(
        "/api/v1/surveys/results/export.csv",
        params={"start": "2026-11-01", "end": "2026-11-30"},
        headers=headers,
    )
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    # The route streams the service's CSV of the same filters, every row of it.
    assert export.content.decode("utf-8") == "".join(results.export_csv(db, NOV, TZ))
    assert len(export.content.decode("utf-8").splitlines()) == 7
    # An agent may not read company-wide results.
    _agent, agent_headers = login("agent")
    assert client.get("/api/v1/surveys/results", headers=agent_headers).status_code == 403
