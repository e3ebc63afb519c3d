"""Staff training through the JSON API on both databases: planning courses, attendance
sheets with scores, a person's history and figures; every refusal names its field in the
reader's language and changes nothing; every change is audited; agents may not write."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.security.models import User
from guanxi.tickets.teams import save_team, set_member
from guanxi.training import service
from guanxi.training.models import TrainingCourse, TrainingRecord

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}
COURSE = {
    "title": "投诉处理情景演练",
    "topic": "complaints",
    "mode": "practice",
    "planned_on": "2026-10-15",
    "hours": 2,
    "plan_period": "month",
}


def staff(db: Session, role: str, name: str) -> User:
    """A user who never signs in here (no password hashing: keeps the tests quick)."""
    user = User(username=f"{role}_{uuid.uuid4().hex[:8]}", display_name=name, role=role,
                password_hash="!", is_active=True)  # fmt: skip
    db.add(user)
    db.commit()
    return user


@pytest.fixture
def desk(db: Session) -> dict[str, Any]:
    """A team of two agents, an agent of another team, an administrator."""
    admin = staff(db, "admin", "管理员")
    a, b, c = staff(db, "agent", "甲"), staff(db, "agent", "乙"), staff(db, "agent", "丙")
    t1 = save_team(db, actor=admin, code="t1", name="一组")
    t2 = save_team(db, actor=admin, code="t2", name="二组")
    set_member(db, actor=admin, team_id=t1.id, user_id=a.id)
    set_member(db, actor=admin, team_id=t1.id, user_id=b.id)
    set_member(db, actor=admin, team_id=t2.id, user_id=c.id)
    return {"admin": admin, "a": a, "b": b, "c": c, "t1": t1.id, "t2": t2.id}


def _audits(db: Session, action: str) -> list[AuditEntry]:
    return list(
        db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    )


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_a_manager_plans_a_course_and_it_is_audited(
    client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    manager, headers = login("manager")
    resp = client.post(
        "/api/v1/training/courses", json=COURSE | {"team_id": desk["t1"]}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert {k: body[k] for k in ("title", "topic", "mode", "planned_on", "hours", "team_id")} == {
        "title": "投诉处理情景演练",
        "topic": "complaints",
        "mode": "practice",
        "planned_on": "2026-10-15",
        "hours": 2.0,
        "team_id": desk["t1"],
    }
    assert (body["plan_period"], body["version"], body["created_by"]) == ("month", 1, manager.id)
    [entry] = _audits(db, "training.course_created")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        manager.id,
        "training_course",
        str(body["id"]),
    )
    assert entry.after == {
        "title": "投诉处理情景演练",
        "topic": "complaints",
        "mode": "practice",
        "planned_on": "2026-10-15",
        "hours": 2.0,
        "team_id": desk["t1"],
        "plan_period": "month",
        "notes": None,
    }
    listed = client.get(
        "/api/v1/training/courses",
        params={"from": "2026-10-01", "to": "2026-11-01"},
        headers=headers,
    ).json()
    assert [c["id"] for c in listed] == [body["id"]]
    assert (
        client.get(
            "/api/v1/training/courses", params={"from": "2026-10-16"}, headers=headers
        ).json()
        == []
    )


def test_an_invalid_course_names_each_field_in_chinese_and_saves_nothing(
    client: Any, login: Any, db: Session
) -> None:
    _, headers = login("manager")
    bad = {
        "title": "",
        "topic": "sports",
        "mode": "online",
        "planned_on": "2026-13-01",
        "hours": 0.2,
        "plan_period": "week",
    }
    resp = client.post("/api/v1/training/courses", json=bad, headers=headers | ZH)
    assert resp.status_code == 422
    errors = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert errors == {
        "title": "内容过短",
        "topic": "必须是以下之一：'culture', 'business', 'communication', 'complaints', "
        "'security' or 'other'",
        "planned_on": "请输入日期，例如 1990-05-17",
        "hours": "不能小于 0.5",
        "plan_period": "必须是以下之一：'month', 'quarter' or 'year'",
    }
    early = client.post(
        "/api/v1/training/courses",
        json=COURSE | {"planned_on": "1999-12-31", "team_id": 999_999},
        headers=headers | EN,
    )
    assert early.status_code == 422
    assert [(e["field"], e["message"]) for e in early.json()["errors"]] == [
        ("planned_on", "Must be at least 2000-01-01")
    ]
    no_team = client.post(
        "/api/v1/training/courses", json=COURSE | {"team_id": 999_999}, headers=headers | ZH
    )
    assert no_team.status_code == 422
    assert no_team.json()["errors"] == [
        {"field": "team_id", "loc": ["team_id"], "code": "team_unknown", "message": "没有这个小组"}
    ]
    assert _count(db, TrainingCourse) == 0
    assert _audits(db, "training.course_created") == []


def _course(client: Any, headers: dict[str, str], **kw: Any) -> int:
    resp = client.post("/api/v1/training/courses", json=COURSE | kw, headers=headers)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_the_attendance_sheet_saves_scores_and_audits_only_changes(
    client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    manager, headers = login("manager")
    course = _course(client, headers, team_id=desk["t1"])
    detail = client.get(f"/api/v1/training/courses/{course}", headers=headers).json()
    # The roster: the team's members, by name, nothing recorded yet.
    assert [(r["display_name"], r["recorded"]) for r in detail["roster"]] == [
        ("乙", False),
        ("甲", False),
    ]
    a, b, c = desk["a"].id, desk["b"].id, desk["c"].id
    sheet = {
        "records": [
            {"user_id": a, "attended": True, "score": 87.5},
            {"user_id": b, "attended": False, "note": "病假"},
        ]
    }
    resp = client.put(f"/api/v1/training/courses/{course}/records", json=sheet, headers=headers)
    assert resp.status_code == 200, resp.text
    assert [(r["user_id"], r["attended"], r["score"], r["note"]) for r in resp.json()] == [
        (a, True, 87.5, None),
        (b, False, None, "病假"),
    ]
    first = _audits(db, "training.recorded")
    assert [(e.target_id, e.before, e.after) for e in first] == [
        (f"{course}:{a}", None, {"attended": True, "score": 87.5, "note": None}),
        (f"{course}:{b}", None, {"attended": False, "score": None, "note": "病假"}),
    ]
    # a unchanged; b made up the course later; c joins as a guest from another team.
    again = {
        "records": [
            {"user_id": a, "attended": True, "score": 87.5},
            {"user_id": b, "attended": True, "score": 92, "note": "补考"},
            {"user_id": c, "attended": True, "score": 60},
        ]
    }
    resp = client.put(f"/api/v1/training/courses/{course}/records", json=again, headers=headers)
    assert resp.status_code == 200, resp.text
    later = _audits(db, "training.recorded")[len(first) :]
    assert [(e.target_id, e.before, e.after, e.actor_id) for e in later] == [
        (
            f"{course}:{b}",
            {"attended": False, "score": None, "note": "病假"},
            {"attended": True, "score": 92.0, "note": "补考"},
            manager.id,
        ),
        (f"{course}:{c}", None, {"attended": True, "score": 60.0, "note": None}, manager.id),
    ]
    roster = client.get(f"/api/v1/training/courses/{course}", headers=headers).json()["roster"]
    assert [(r["display_name"], r["attended"], r["score"]) for r in roster] == [
        ("丙", True, 60.0),
        ("乙", True, 92.0),
        ("甲", True, 87.5),
    ]


def test_an_invalid_sheet_names_each_line_and_saves_nothing(
    client: Any, login: Any, db: Session, desk: dict[str, Any], make_user: Any
) -> None:
    _, headers = login("manager")
    course = _course(client, headers, team_id=desk["t1"])
    a, b = desk["a"].id, desk["b"].id
    analyst = staff(db, "analyst", "分析师")
    shape = {
        "records": [
            {"user_id": a, "attended": True, "score": 101},
            {"user_id": b, "attended": True, "score": -1},
            {"user_id": a, "attended": True, "score": "八十"},
        ]
    }
    resp = client.put(
        f"/api/v1/training/courses/{course}/records", json=shape, headers=headers | ZH
    )
    assert resp.status_code == 422
    assert [(e["field"], e["message"]) for e in resp.json()["errors"]] == [
        ("records.0.score", "不能大于 100"),
        ("records.1.score", "不能小于 0"),
        ("records.2.score", "必须是数字"),
    ]
    shape = {
        "records": [
            {"user_id": a, "attended": False, "score": 70},
            {"user_id": b, "attended": True, "score": 101},
        ]
    }
    # The score checks are the sheet's own: both lines are named in one answer.
    for lang, texts in (
        (ZH, ["只有出勤的人员才能填写成绩", "不能大于 100"]),
        (EN, ["A score is only given to someone who attended", "Must be at most 100"]),
    ):
        resp = client.put(
            f"/api/v1/training/courses/{course}/records", json=shape, headers=headers | lang
        )
        assert resp.status_code == 422
        assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
            ("records.0.score", "training_score_absent", texts[0]),
            ("records.1.score", "less_than_equal", texts[1]),
        ]
    people = {
        "records": [
            {"user_id": a, "attended": True},
            {"user_id": b, "attended": True},
            {"user_id": b, "attended": True},
            {"user_id": analyst.id, "attended": True},
        ]
    }
    resp = client.put(
        f"/api/v1/training/courses/{course}/records", json=people, headers=headers | ZH
    )
    assert resp.status_code == 422
    assert [(e["field"], e["code"], e["message"]) for e in resp.json()["errors"]] == [
        ("records.2.user_id", "training_user_twice", "此人在表中出现了两次"),
        ("records.3.user_id", "training_user_unknown", "不是客服团队的成员"),
    ]
    assert _count(db, TrainingRecord) == 0
    assert _audits(db, "training.recorded") == []
    missing = client.put(
        "/api/v1/training/courses/999999/records",
        json={"records": [{"user_id": a, "attended": True}]},
        headers=headers,
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_only_training_managers_write(
    role: str, client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    _, manager = login("manager")
    course = _course(client, manager, team_id=desk["t1"])
    _, headers = login(role)
    before = client.get(f"/api/v1/training/courses/{course}", headers=manager).json()
    sheet = {"records": [{"user_id": desk["a"].id, "attended": True, "score": 90}]}
    changed = COURSE | {"title": "改名", "version": 1}
    assert client.post("/api/v1/training/courses", json=COURSE, headers=headers).status_code == 403
    assert (
        client.put(f"/api/v1/training/courses/{course}/records", json=sheet, headers=headers)
    ).status_code == 403
    assert (
        client.put(f"/api/v1/training/courses/{course}", json=changed, headers=headers)
    ).status_code == 403
    assert client.delete(f"/api/v1/training/courses/{course}", headers=headers).status_code == 403
    # Reading needs team.performance: analysts yes, the others no.
    expected = 200 if role == "analyst" else 403
    assert client.get("/api/v1/training/courses", headers=headers).status_code == expected
    assert (
        client.get(f"/api/v1/training/people/{desk['a'].id}", headers=headers).status_code
        == expected
    )
    # Nothing changed.
    assert client.get(f"/api/v1/training/courses/{course}", headers=manager).json() == before
    assert _count(db, TrainingCourse) == 1
    assert _count(db, TrainingRecord) == 0
    assert client.get("/api/v1/training/courses").status_code == 401


def test_a_stale_edit_is_refused_and_a_fresh_one_audited_with_the_changes(
    client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    _, headers = login("manager")
    course = _course(client, headers, team_id=desk["t1"])
    url = f"/api/v1/training/courses/{course}"
    fresh = COURSE | {"team_id": desk["t1"], "hours": 3, "notes": "带耳机", "version": 1}
    resp = client.put(url, json=fresh, headers=headers)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["hours"], resp.json()["version"]) == (3.0, 2)
    [entry] = _audits(db, "training.course_changed")
    assert (entry.before, entry.after) == (
        {"hours": 2.0, "notes": None},
        {"hours": 3.0, "notes": "带耳机"},
    )
    stale = client.put(url, json=fresh | {"hours": 4}, headers=headers | ZH)
    assert stale.status_code == 409
    assert stale.json()["errors"] == [
        {
            "field": "version",
            "loc": ["version"],
            "code": "version_conflict",
            "message": "该记录已被他人修改，请刷新后重试",
        }
    ]
    assert client.get(url, headers=headers).json()["course"]["hours"] == 3.0


def test_removing_a_course_removes_its_records_and_is_audited(
    client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    _, headers = login("manager")
    course = _course(client, headers, team_id=desk["t1"])
    sheet = {"records": [{"user_id": desk["a"].id, "attended": True, "score": 90}]}
    client.put(f"/api/v1/training/courses/{course}/records", json=sheet, headers=headers)
    assert client.delete(f"/api/v1/training/courses/{course}", headers=headers).status_code == 204
    assert (_count(db, TrainingCourse), _count(db, TrainingRecord)) == (0, 0)
    [entry] = _audits(db, "training.course_deleted")
    assert entry.before is not None
    assert (entry.before["title"], entry.before["records"]) == ("投诉处理情景演练", 1)
    assert client.get(f"/api/v1/training/courses/{course}", headers=headers).status_code == 404


def test_a_persons_history_and_the_figures_of_a_period(
    client: Any, login: Any, db: Session, desk: dict[str, Any]
) -> None:
    _, headers = login("manager")
    a, b, c = desk["a"].id, desk["b"].id, desk["c"].id
    team = _course(client, headers, team_id=desk["t1"], planned_on="2026-10-15")
    everyone = _course(client, headers, title="企业文化", topic="culture", planned_on="2026-10-20")
    other = _course(client, headers, team_id=desk["t2"], planned_on="2026-11-05")
    _course(client, headers, team_id=desk["t2"], planned_on="2026-11-06")
    put = "/api/v1/training/courses/{}/records"
    client.put(
        put.format(team),
        headers=headers,
        json={
            "records": [
                {"user_id": a, "attended": True, "score": 80},
                {"user_id": b, "attended": False},
            ]
        },
    )
    client.put(
        put.format(everyone),
        headers=headers,
        json={
            "records": [
                {"user_id": a, "attended": True, "score": 70},
                {"user_id": c, "attended": True},
            ]
        },
    )
    client.put(put.format(other), headers=headers, json={"records": [
        {"user_id": a, "attended": True, "score": 100}]})  # fmt: skip
    body = client.get(f"/api/v1/training/people/{a}", headers=headers).json()
    # The other team's course of 6 November is not a's: not on the list.
    assert [(i["course"]["id"], i["attended"], i["score"]) for i in body["items"]] == [
        (other, True, 100.0),
        (everyone, True, 70.0),
        (team, True, 80.0),
    ]
    assert body["totals"] == {"planned": 3, "attended": 3, "scored": 3, "score_mean": 250 / 3}
    history_b = client.get(f"/api/v1/training/people/{b}", headers=headers).json()
    assert [(i["course"]["id"], i["attended"]) for i in history_b["items"]] == [
        (everyone, None),
        (team, False),
    ]
    october = service.figures(db, start=date(2026, 10, 1), end=date(2026, 11, 1))
    got = {u: (f.planned, f.attended, f.scored, f.score_mean) for u, f in october.items()}
    assert got == {a: (2, 2, 2, 75.0), b: (2, 0, 0, None), c: (1, 1, 0, None)}
    teams = service.team_figures(db, october)
    assert (teams[desk["t1"]].planned, teams[desk["t1"]].attended) == (4, 2)
    assert (teams[desk["t2"]].planned, teams[desk["t2"]].score_mean) == (1, None)
    assert client.get("/api/v1/training/people/999999", headers=headers).status_code == 404
