"""The training pages on both databases: the year's plans, planning a course from the
form, the attendance sheet of a course (the team's members on one form, a guest row),
refusals shown beside their field in Chinese with nothing saved, a person's history."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.tickets.teams import save_team, set_member
from guanxi.training.models import TrainingCourse, TrainingRecord
from tests.conftest import PASSWORD
from tests.integration.training.test_training_api import staff

ZH = {"Accept-Language": "zh-CN"}


def _sign_in(client: Any, username: str) -> str:
    client.cookies.clear()
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": "/training"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = client.get("/training")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _records(db: Session) -> dict[int, tuple[bool, float | None, str | None]]:
    db.expire_all()
    return {r.user_id: (r.attended, r.score, r.note) for r in db.scalars(select(TrainingRecord))}


def test_plan_a_course_from_the_form_then_fill_its_attendance_sheet(
    client: Any, db: Session, make_user: Any
) -> None:
    manager = make_user("manager")
    admin, a, b = staff(db, "admin", "管理员"), staff(db, "agent", "甲"), staff(db, "agent", "乙")
    guest = staff(db, "agent", "丙")
    team = save_team(db, actor=admin, code="hotline", name="热线组")
    set_member(db, actor=admin, team_id=team.id, user_id=a.id)
    set_member(db, actor=admin, team_id=team.id, user_id=b.id)
    csrf = _sign_in(client, manager.username)
    form = {
        "csrf_token": csrf,
        "title": "电话沟通技巧",
        "topic": "communication",
        "mode": "offline",
        "planned_on": "2026-10-32",
        "hours": "1.5",
        "plan_period": "month",
        "team_id": str(team.id),
    }
    refused = client.post("/training/courses", data=form, headers=ZH)
    assert refused.status_code == 422
    # The message is beside the date field, and listed at the top with the field's name.
    assert re.search(
        r'id="f-planned_on"[^>]*value="2026-10-32"[^>]*>\s*<p class="error" id="e-planned_on" '
        r'role="alert">请输入日期，例如 1990-05-17</p>',
        refused.text,
    )
    assert "<li>日期: 请输入日期，例如 1990-05-17</li>" in refused.text
    assert db.scalar(select(func.count()).select_from(TrainingCourse)) == 0

    created = client.post(
        "/training/courses", data=form | {"planned_on": "2026-10-15"}, follow_redirects=False
    )
    assert created.status_code == 303
    course = db.scalars(select(TrainingCourse)).one()
    assert created.headers["location"] == f"/training/courses/{course.id}"
    assert (course.title, course.hours, course.team_id, course.created_by) == (
        "电话沟通技巧",
        1.5,
        team.id,
        manager.id,
    )
    plans = client.get("/training?year=2026", headers=ZH).text
    row = plans.split('id="courses"', 1)[1].split("</table>", 1)[0]
    assert f'<a href="/training/courses/{course.id}">电话沟通技巧</a>' in row
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells == ["2026-10-15", "沟通技巧", "线下培训", "1.5", "热线组", "月度计划", "0 / 0"]

    url = f"/training/courses/{course.id}"
    page = client.get(url, headers=ZH).text
    roster = page.split('id="roster"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-user="(\d+)"', roster) == [str(b.id), str(a.id)]
    assert f'<option value="{guest.id}">丙</option>' in roster

    sheet = {
        "csrf_token": csrf,
        "user_id": [str(a.id), str(b.id)],
        f"attended.{a.id}": "1",
        f"score.{a.id}": "101",
        f"score.{b.id}": "60",
        "guest_id": str(guest.id),
        "attended.guest": "1",
        "score.guest": "75",
    }
    bad = client.post(f"{url}/records", data=sheet, headers=ZH)
    assert bad.status_code == 422
    assert re.search(
        rf'name="score.{a.id}"[^>]*value="101"[^>]*>\s*<p class="error" role="alert">'
        "不能大于 100</p>",
        bad.text,
    )
    # b's score without attendance, beside b's score field.
    assert re.search(
        rf'name="score.{b.id}"[^>]*value="60"[^>]*>\s*<p class="error" role="alert">'
        "只有出勤的人员才能填写成绩</p>",
        bad.text,
    )
    assert _records(db) == {}

    good = sheet | {f"score.{a.id}": "88", f"score.{b.id}": "", f"note.{b.id}": "请假"}
    saved = client.post(f"{url}/records", data=good, follow_redirects=False)
    assert saved.status_code == 303
    assert _records(db) == {
        a.id: (True, 88.0, None),
        b.id: (False, None, "请假"),
        guest.id: (True, 75.0, None),
    }
    shown = client.get(url, headers=ZH).text
    assert re.search(rf'name="score.{a.id}"[^>]*value="88"', shown)
    assert re.search(rf'name="attended.{a.id}" value="1" checked', shown)
    # The guest is on the roster now and no longer offered.
    assert f'data-user="{guest.id}"' in shown
    assert f'<option value="{guest.id}">' not in shown

    person = client.get(f"/training/people/{a.id}", headers=ZH).text
    totals = person.split('id="training-totals"', 1)[1].split("</p>", 1)[0]
    assert "应参加 1 门课程，已参加 1 门" in html.unescape(totals)
    assert "平均考核成绩 88.0" in totals


def test_a_course_change_and_removal_through_the_page(
    client: Any, db: Session, make_user: Any
) -> None:
    manager = make_user("manager")
    csrf = _sign_in(client, manager.username)
    base = {
        "csrf_token": csrf,
        "title": "信息安全",
        "topic": "security",
        "mode": "online",
        "planned_on": "2026-09-10",
        "plan_period": "quarter",
    }
    client.post("/training/courses", data=base, follow_redirects=False)
    course = db.scalars(select(TrainingCourse)).one()
    url = f"/training/courses/{course.id}"
    stale = client.post(url, data=base | {"hours": "2", "version": "7"}, headers=ZH)
    assert stale.status_code == 422
    assert "该记录已被他人修改，请刷新后重试" in stale.text
    bad_hours = client.post(url, data=base | {"hours": "0", "version": "1"}, headers=ZH)
    assert bad_hours.status_code == 422
    assert '<p class="error" id="e-hours" role="alert">不能小于 0.5</p>' in bad_hours.text
    ok = client.post(url, data=base | {"hours": "2", "version": "1"}, follow_redirects=False)
    assert ok.status_code == 303
    db.expire_all()
    assert (db.get(TrainingCourse, course.id).hours, db.get(TrainingCourse, course.id).version) == (
        2.0,
        2,
    )
    gone = client.post(f"{url}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/training?year=2026")
    assert db.scalar(select(func.count()).select_from(TrainingCourse)) == 0


def test_agents_cannot_open_or_change_training(client: Any, db: Session, make_user: Any) -> None:
    manager, agent = make_user("manager"), make_user("agent")
    csrf = _sign_in(client, manager.username)
    client.post(
        "/training/courses",
        data={"csrf_token": csrf, "title": "课", "topic": "other", "mode": "online",
              "planned_on": "2026-10-01"},
        follow_redirects=False,
    )  # fmt: skip
    course = db.scalars(select(TrainingCourse)).one()
    client.cookies.clear()
    client.post(
        "/login",
        data={"username": agent.username, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert client.get("/training").status_code == 403
    assert client.get(f"/training/courses/{course.id}").status_code == 403
    assert client.get(f"/training/people/{agent.id}").status_code == 403
    # Without the manager's token and permission, nothing is written.
    posted = client.post(
        f"/training/courses/{course.id}/records",
        data={"user_id": str(agent.id), f"attended.{agent.id}": "1"},
    )
    assert posted.status_code == 403
    assert db.scalar(select(func.count()).select_from(TrainingRecord)) == 0


def test_the_scorecard_page_says_how_to_get_figures_before_the_first_run(
    client: Any, make_user: Any
) -> None:
    analyst = make_user("analyst")
    client.post(
        "/login",
        data={"username": analyst.username, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    page = client.get("/analytics/scorecard", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "guanxi analytics run" in page.text
    assert client.get("/api/v1/analytics/scorecard").status_code == 404
    # The nav shows the team performance link to those who may see it.
    assert '<a href="/analytics/scorecard" aria-current="page">Team performance</a>' in page.text
