"""The dashboards over HTTP: tiles, charts and tables with the hand-counted figures of
``_kpi_data`` in Chinese and English, the drill-down page, the JSON API with its cursor,
the CSV and XLSX exports byte for byte, the empty state, and who may see what."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook
from sqlalchemy.orm import Session

from guanxi.analytics import runner
from guanxi.app import create_app
from guanxi.audit.service import Actor
from guanxi.security.permissions import ROLE_PERMISSIONS, Permission, Role
from guanxi.security.schemas import UserCreate
from guanxi.security.service import create_user
from tests.conftest import PASSWORD
from tests.integration.analytics._kpi_data import AS_OF, fill
from tests.integration.analytics.conftest import AnalyticsDb

JUNE = "period=month&start=2026-06-01"


@pytest.fixture(scope="module")
def world(analytics_db: AnalyticsDb) -> dict[str, int]:
    ids = fill(analytics_db.rows)
    summary = runner.run(
        analytics_db.engine, analytics_db.settings, only=["kpi"], force=True, as_of=AS_OF
    )
    assert summary.status == "succeeded", summary
    with Session(analytics_db.engine) as session:
        for role in ("analyst", "manager", "agent"):
            create_user(
                session,
                user_in=UserCreate(
                    username=f"dash_{role}", display_name=role, role=role, password=PASSWORD
                ),  # type: ignore[arg-type]
                actor=Actor.system("test"),
            )
        session.commit()
    return ids


@pytest.fixture(scope="module")
def dash_app(analytics_db: AnalyticsDb, world: dict[str, int]) -> Any:
    application = create_app(analytics_db.settings)
    yield application
    application.state.engine.dispose()


def signed_in(app: Any, role: str, lang: str = "zh_CN") -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    client.cookies.set("guanxi_lang", lang)
    resp = client.post(
        "/login",
        data={"username": f"dash_{role}", "password": PASSWORD, "next": "/analytics"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return client


@pytest.fixture(scope="module")
def analyst(dash_app: Any) -> Iterator[TestClient]:
    with signed_in(dash_app, "analyst") as client:
        yield client


@pytest.fixture(scope="module")
def analyst_en(dash_app: Any) -> Iterator[TestClient]:
    with signed_in(dash_app, "analyst", "en") as client:
        yield client


def tile(html: str, metric: str) -> tuple[str, str]:
    """(value, change) shown on a KPI tile."""
    found = re.search(
        rf'id="tile-{metric}".*?<strong class="an-tile-value">(.*?)</strong>\s*'
        r'<span class="an-tile-change[^"]*">(.*?)</span>\s*</a>',
        html,
        re.S,
    )
    assert found, metric
    change = re.sub(r"<[^>]+>", "", found.group(2)).strip()
    return found.group(1), change


def charts(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="an-charts"[^>]*>(.*?)</script>', html, re.S
    )
    assert found
    return {c["id"]: c for c in json.loads(found.group(1))}


def test_the_overview_shows_the_hand_counted_figures(analyst: TestClient) -> None:
    resp = analyst.get(f"/analytics?{JUNE}")
    assert resp.status_code == 200
    html = resp.text
    assert tile(html, "active_customers") == ("2", "+0.0% 较上期")
    # Nothing to compare with: no new customer in May.
    assert tile(html, "new_customers") == ("1", "无可比")
    assert tile(html, "retention_rate") == ("50.0%", "-50.0 pp 较上期")
    assert tile(html, "churn_rate") == ("50.0%", "+50.0 pp 较上期")
    assert tile(html, "shipments") == ("3", "+0.0% 较上期")
    assert tile(html, "revenue_fen") == ("¥31.00", "-46.6% 较上期")
    assert tile(html, "loss_rate") == ("33.3%", "+33.3 pp 较上期")
    assert tile(html, "on_time_rate") == ("50.0%", "+0.0 pp 较上期")
    assert "活跃客户" in html
    assert "2026-06 · 全部" in html
    drawn = charts(html)
    volume = drawn["chart-volume"]
    assert volume["categories"][-2:] == ["2026-05", "2026-06"]
    assert volume["series"][0]["data"][-2:] == [3, 3]
    assert volume["series"][1]["data"][-2:] == [58.0, 31.0]  # yuan
    assert volume["series"][0]["links"][-1] == (
        "/analytics/drill?metric=shipments&period=month&dimension=all&member=&start=2026-06-01"
    )
    retention = drawn["chart-retention"]["series"][0]["data"]
    assert retention[-2:] == [100.0, 50.0]  # percent
    segments = drawn["chart-segments"]
    assert sorted(segments["series"][0]["data"]) == [1, 1, 1, 1, 1]
    assert "/static/vendor/echarts/echarts.min.js" in html


def test_the_overview_in_english(analyst_en: TestClient) -> None:
    html = analyst_en.get(f"/analytics?{JUNE}").text
    assert tile(html, "retention_rate") == ("50.0%", "-50.0 pp vs previous")
    assert "Active customers" in html
    assert "2026-06 · All" in html


def test_the_service_tab(analyst: TestClient, analyst_en: TestClient) -> None:
    html = analyst.get(f"/analytics/service?{JUNE}").text
    assert tile(html, "complaints")[0] == "3"
    assert tile(html, "complaints_per_10k") == ("10000.0", "+200.0% 较上期")
    assert tile(html, "first_response_median_min")[0] == "65 分钟"
    assert tile(html, "resolution_mean_h")[0] == "25.0 小时"
    assert tile(html, "sla_attainment") == ("50.0%", "-50.0 pp 较上期")
    assert tile(html, "csat") == ("2.00", "-60.0% 较上期")
    assert tile(html, "claim_cost_fen") == ("¥15.00", "+0.0% 较上期")
    assert charts(html)["chart-complaints"]["series"][1]["data"][-2:] == [100.0, 50.0]
    english = analyst_en.get(f"/analytics/service?{JUNE}").text
    assert tile(english, "first_response_median_min")[0] == "65 min"


def test_a_slice(analyst: TestClient) -> None:
    html = analyst.get(f"/analytics?{JUNE}&dimension=region&member=浙江省").text
    assert tile(html, "active_customers")[0] == "0"
    assert tile(html, "churn_rate")[0] == "100.0%"
    assert tile(html, "repeat_rate")[0] == "—"
    html = analyst.get(f"/analytics?{JUNE}&dimension=segment&member=champions").text
    assert tile(html, "active_customers")[0] == "1"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=month&start=2026-06-02", "start"),
        ("period=fortnight", "period"),
        ("period=month&dimension=region&member=火星", "member"),
        ("period=month&start=June", "start"),
    ],
)
def test_a_period_or_slice_the_run_lacks_is_refused(
    analyst: TestClient, query: str, field: str
) -> None:
    resp = analyst.get(f"/analytics?{query}")
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == [f"query.{field}"]


def test_the_drill_down_page(analyst: TestClient, dash_app: Any, world: dict[str, int]) -> None:
    html = analyst.get(f"/analytics/drill?metric=active_customers&{JUNE}").text
    assert re.search(r'id="drill-total">2<', html)
    assert re.findall(r'href="/customers/(\d+)"', html) == [str(world["a"]), str(world["d"])]
    # Tickets: the analyst sees their figures, without links to a desk they cannot open.
    html = analyst.get(f"/analytics/drill?metric=complaints&{JUNE}").text
    assert re.search(r'id="drill-total">3<', html)
    assert "/tickets/" not in html
    assert f"#{world['t2']}" in html
    with signed_in(dash_app, "manager") as manager:
        html = manager.get(f"/analytics/drill?metric=complaints&{JUNE}").text
    assert re.findall(r'href="/tickets/(\d+)"', html) == [
        str(world["t2"]), str(world["t4"]), str(world["t5"])
    ]  # fmt: skip
    # The denominator of the SLA attainment: both resolved tickets.
    html = analyst.get(f"/analytics/drill?metric=sla_attainment&{JUNE}&part=denominator").text
    assert re.search(r'id="drill-total">2<', html)


def test_the_drill_down_pages_fifty_to_a_page(analyst: TestClient, world: dict[str, int]) -> None:
    resp = analyst.get(
        "/api/v1/analytics/drill", params={"metric": "shipments", "period": "year",
                                            "start": "2026-01-01", "limit": 4}
    )  # fmt: skip
    body = resp.json()
    assert body["total"] == 9
    assert body["entity"] == "shipments"
    first = [s["id"] for s in body["shipments"]]
    rest = analyst.get(
        "/api/v1/analytics/drill",
        params={"metric": "shipments", "period": "year", "start": "2026-01-01", "limit": 50,
                "cursor": body["next_cursor"]},
    ).json()  # fmt: skip
    assert first + [s["id"] for s in rest["shipments"]] == sorted(
        world[f"s{n}"] for n in range(1, 10)
    )
    assert rest["next_cursor"] is None


def test_the_kpi_api_and_its_cursor(analyst: TestClient) -> None:
    params = {"metric": ["shipments", "revenue_fen"], "period": "month", "from": "2026-05-01",
              "to": "2026-06-01", "limit": 3}  # fmt: skip
    page = analyst.get("/api/v1/analytics/kpis", params=params).json()
    assert page["as_of"].startswith("2026-06-30T04:00:00")
    items = page["items"]
    rest = analyst.get(
        "/api/v1/analytics/kpis", params={**params, "cursor": page["next_cursor"]}
    ).json()
    assert rest["next_cursor"] is None
    got = [(i["period_start"], i["metric"], i["value"], i["numerator"], i["denominator"])
           for i in items + rest["items"]]  # fmt: skip
    assert got == [
        ("2026-05-01", "revenue_fen", 5800.0, 5800.0, 3.0),
        ("2026-05-01", "shipments", 3.0, 3.0, None),
        ("2026-06-01", "revenue_fen", 3100.0, 3100.0, 3.0),
        ("2026-06-01", "shipments", 3.0, 3.0, None),
    ]
    regions = analyst.get(
        "/api/v1/analytics/kpis",
        params={"metric": "shipments", "period": "month", "dimension": "region",
                "from": "2026-06-01", "to": "2026-06-01"},
    ).json()["items"]  # fmt: skip
    assert {(i["member"], i["value"]) for i in regions} == {("广东省", 1.0), ("江苏省", 2.0)}


def test_the_csv_exports_are_exact(analyst_en: TestClient, world: dict[str, int]) -> None:
    resp = analyst_en.get(
        "/api/v1/analytics/kpis/export",
        params={"format": "csv", "metric": ["shipments", "loss_rate"], "period": "month",
                "from": "2026-06-01", "to": "2026-06-01"},
    )  # fmt: skip
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"] == 'attachment; filename="kpi-month-all.csv"'
    assert (
        resp.content
        == (
            "\ufeffMetric,Metric code,Unit,Period,Period start,Slice,Member,Value,Numerator,"
            "Denominator\r\n"
            "Loss rate,loss_rate,rate,2026-06,2026-06-01,all,,0.3333333333333333,1,3\r\n"
            "Shipments,shipments,count,2026-06,2026-06-01,all,,3,3,\r\n"
        ).encode()
    )
    resp = analyst_en.get(
        "/api/v1/analytics/drill/export",
        params={"format": "csv", "metric": "claim_cost_fen", "period": "month",
                "start": "2026-06-01"},
    )  # fmt: skip
    a, c2, s4 = world["a"], world["c2"], world["s4"]
    assert resp.content.decode("utf-8") == (
        "\ufeffClaim,Reason,Status,Approved (yuan),Decided,Waybill,Customer ID,Customer\r\n"
        f"{c2},Damage,Approved,15.00,2026-06-15 10:00,GXT{s4:09d},{a},客户{a}\r\n"
    )


def test_the_xlsx_export_and_chinese_headers(analyst: TestClient, world: dict[str, int]) -> None:
    resp = analyst.get(
        "/api/v1/analytics/drill/export",
        params={"format": "xlsx", "metric": "on_time_rate", "period": "month",
                "start": "2026-06-01", "part": "denominator"},
    )  # fmt: skip
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(resp.content)).get_sheet_by_index(0)
    rows = sheet.to_python()
    assert rows[0][:4] == ["运单", "客户编号", "客户", "产品类型"]
    assert [r[0] for r in rows[1:]] == [f"GXT{world['s6']:09d}", f"GXT{world['s9']:09d}"]
    classes = analyst.get("/api/v1/analytics/classes/export", params={"format": "csv"})
    lines = classes.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "分类,编码,名称,客户"
    assert len(lines) == 1 + 12
    assert "客户分群,champions,重要价值客户,1" in lines
    assert "价值等级,low,低,3" in lines


# --------------------------------------------------------------------------- no run yet


def test_before_the_first_run_the_pages_say_how_to_get_figures(
    client: Any, login: Any, make_user: Any
) -> None:
    user = make_user("analyst")
    resp = client.post(
        "/login", data={"username": user.username, "password": PASSWORD}, follow_redirects=False
    )
    assert resp.status_code == 303
    client.cookies.set("guanxi_lang", "en")
    for path in ("/analytics", "/analytics/service", "/analytics/drill?metric=shipments"):
        page = client.get(path)
        assert page.status_code == 200
        assert "guanxi analytics run" in page.text
    assert "No forecast yet" in client.get("/analytics/forecast").text
    _, headers = login("analyst")
    body = client.get("/api/v1/analytics/kpis", headers=headers).json()
    assert body == {"run_id": None, "as_of": None, "items": [], "next_cursor": None}
    assert client.get("/api/v1/analytics/forecast", headers=headers).status_code == 404


@pytest.mark.parametrize("role", list(Role))
def test_who_may_see_the_dashboards(role: Role, client: Any, login: Any, make_user: Any) -> None:
    allowed = Permission.analytics_read in ROLE_PERMISSIONS[role]
    _, headers = login(role.value)
    for path in ("/api/v1/analytics/kpis", "/api/v1/analytics/drill?metric=shipments"):
        resp = client.get(path, headers=headers)
        if allowed:
            # The drill needs a run: 404 before the first one, never a 5xx.
            assert resp.status_code in (200, 404), resp.text
        else:
            assert resp.status_code == 403
        assert client.get(path).status_code == 401
    user = make_user(role.value)
    with TestClient(client.app, raise_server_exceptions=False) as browser:
        browser.post("/login", data={"username": user.username, "password": PASSWORD})
        for path in ("/analytics", "/analytics/service", "/analytics/forecast"):
            assert browser.get(path).status_code == (200 if allowed else 403)
        # The menu offers the dashboards to those who may open them.
        assert ('href="/analytics"' in browser.get("/customers").text) == allowed
    with TestClient(client.app, raise_server_exceptions=False) as anonymous:
        resp = anonymous.get("/analytics", follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/login")


# --------------------------------------------------------------------------- forecast


def test_the_forecast_api_page_and_export(
    analyst: TestClient, analyst_en: TestClient, analytics_db: AnalyticsDb
) -> None:
    from datetime import date

    from guanxi.analytics.models import AnalyticsRun, AnalyticsStep, ForecastPoint

    # A forecast run as the forecast step leaves it: two actual days, two days ahead.
    with Session(analytics_db.engine) as session:
        run = AnalyticsRun(as_of=AS_OF, status="succeeded", trigger="test", requested="forecast")
        session.add(run)
        session.flush()
        session.add(
            AnalyticsStep(
                run_id=run.id,
                step="forecast",
                status="succeeded",
                metrics=json.dumps({"first_day": "2026-07-01"}),
            )
        )
        for day, expected, low, high, tickets in (
            (date(2026, 6, 29), 120.0, 120.0, 120.0, 4.0),
            (date(2026, 6, 30), 130.0, 130.0, 130.0, 5.0),
            (date(2026, 7, 1), 140.0, 120.5, 161.25, 4.2),
            (date(2026, 7, 2), 150.0, 128.0, 175.0, 4.5),
        ):
            session.add(
                ForecastPoint(
                    run_id=run.id, region="", service_type="", day=day, expected=expected,
                    low=low, high=high, expected_tickets=tickets,
                )
            )  # fmt: skip
        session.commit()
    body = analyst.get("/api/v1/analytics/forecast").json()
    assert body["first_day"] == "2026-07-01"
    assert body["forecast"] == [
        {"day": "2026-07-01", "expected": 140.0, "low": 120.5, "high": 161.25,
         "expected_tickets": 4.2},
        {"day": "2026-07-02", "expected": 150.0, "low": 128.0, "high": 175.0,
         "expected_tickets": 4.5},
    ]  # fmt: skip
    assert body["actuals"] == [
        {"day": "2026-06-29", "shipments": 120.0, "tickets": 4.0},
        {"day": "2026-06-30", "shipments": 130.0, "tickets": 5.0},
    ]
    resp = analyst.get("/api/v1/analytics/forecast", params={"region": "火星"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "query.region"
    csv = analyst_en.get("/api/v1/analytics/forecast/export", params={"format": "csv"})
    assert csv.content.decode("utf-8") == (
        "\ufeffDay,Kind,Shipments,Low,High,Tickets\r\n"
        "2026-06-29,Actual,120,,,4\r\n"
        "2026-06-30,Actual,130,,,5\r\n"
        "2026-07-01,Forecast,140,120.5,161.2,4.2\r\n"
        "2026-07-02,Forecast,150,128,175,4.5\r\n"
    )
    page = analyst.get("/analytics/forecast").text
    chart = charts(page)["chart-forecast"]
    assert chart["categories"] == ["2026-06-29", "2026-06-30", "2026-07-01", "2026-07-02"]
    assert [s["data"] for s in chart["series"]] == [
        [120.0, 130.0, None, None],  # actual
        [None, None, 120.5, 128.0],  # band: low
        [None, None, 40.8, 47.0],  # band: width
        [None, None, 140.0, 150.0],  # forecast
        [4.0, 5.0, 4.2, 4.5],  # tickets
    ]
