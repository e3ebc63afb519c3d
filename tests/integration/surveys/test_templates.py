"""Templates are versioned: a published version never changes, editing starts a draft,
publishing retires the previous version, and an invitation keeps the version it was sent
with."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.core.errors import Conflict, ValidationFailed
from guanxi.surveys import responses, service
from guanxi.surveys.enums import Dimension, QuestionKind
from guanxi.surveys.models import SurveyAnswer, SurveyVersion
from guanxi.surveys.schemas import OptionIn, QuestionIn, TemplateCreate
from tests.integration.surveys.helpers import invite


def _q(kind: QuestionKind, zh: str, **kw: Any) -> QuestionIn:
    return QuestionIn(kind=kind, label_zh=zh, label_en=kw.pop("en", zh), **kw)


def test_versions_are_immutable_once_published(
    db: Session, manager: Any, mobile_customer: Any
) -> None:
    template = service.create_template(
        db,
        template_in=TemplateCreate(
            code="outlet_visit",
            name_zh="网点服务调查",
            name_en="Outlet visit",
            questions=[_q(QuestionKind.csat, "总体满意度", required=True)],
        ),
        actor=manager,
    )
    # A draft is never sent.
    assert service.current_version(db, template.id) is None
    with pytest.raises(ValidationFailed):
        service.live_version_id(db, template)
    v1 = service.publish(db, template_id=template.id, actor=manager)
    assert (v1.number, v1.status) == (1, "published")
    first = invite(db, mobile_customer.id, "outlet_visit", key="first")
    # Editing starts draft 2 from version 1; version 1 is untouched.
    service.add_question(
        db,
        template_id=template.id,
        question_in=_q(
            QuestionKind.single,
            "您是如何寄件的？",
            options=[
                OptionIn(value="outlet", label_zh="网点", label_en="Outlet"),
                OptionIn(value="pickup", label_zh="上门取件", label_en="Pickup"),
            ],
        ),
        actor=manager,
    )
    service.add_question(
        db,
        template_id=template.id,
        question_in=_q(QuestionKind.dimension, "时效", dimension=Dimension.timeliness),
        actor=manager,
    )
    draft = service.move_question(db, template_id=template.id, code="q2", offset=1, actor=manager)
    read = service.template_read(db, service.get_template(db, template.id))
    assert read.current is not None
    assert read.draft is not None
    assert [q.code for q in read.current.questions] == ["csat"]
    assert [q.code for q in read.draft.questions] == ["csat", "dim_timeliness", "q2"]
    assert (read.draft.number, draft.status) == (2, "draft")
    v2 = service.publish(db, template_id=template.id, actor=manager)
    db.refresh(v1)
    assert (v1.status, v2.status, v2.number) == ("retired", "published", 2)
    second = invite(db, mobile_customer.id, "outlet_visit", key="second")
    # The first invitation still asks version 1's one question; the second version 2's.
    _inv, view1 = responses.open_link(db, first.token)
    _inv, view2 = responses.open_link(db, second.token)
    assert (view1.number, [q.code for q in view1.questions]) == (1, ["csat"])
    assert (view2.number, [q.code for q in view2.questions]) == (
        2,
        ["csat", "dim_timeliness", "q2"],
    )
    answered = responses.answer_link(db, token=first.token, answers={"csat": 8}, lang="zh_CN")
    assert answered.version_id == v1.id
    with pytest.raises(ValidationFailed):  # version 1 has no question q2
        responses.answer_link(db, token=second.token, answers={"csat": 8, "q2": "x"}, lang="en")
    answered2 = responses.answer_link(
        db, token=second.token, answers={"csat": 7, "q2": "pickup"}, lang="en"
    )
    choices = db.scalar(
        select(SurveyAnswer.choices).where(SurveyAnswer.response_id == answered2.id,
                                           SurveyAnswer.choices.is_not(None))
    )  # fmt: skip
    assert choices == "pickup"
    # Removing from the draft of version 3 leaves version 2 as published.
    service.remove_question(db, template_id=template.id, code="q2", actor=manager)
    numbers = list(
        db.scalars(
            select(SurveyVersion.number)
            .where(SurveyVersion.template_id == template.id)
            .order_by(SurveyVersion.number)
        )
    )
    assert numbers == [1, 2, 3]


def test_template_rules(db: Session, manager: Any) -> None:
    with pytest.raises(Conflict):
        service.create_template(
            db,
            template_in=TemplateCreate(code="relationship", name_zh="重复", name_en="Twice"),
            actor=manager,
        )
    template = service.create_template(
        db, template_in=TemplateCreate(code="empty", name_zh="空", name_en="Empty"), actor=manager
    )
    with pytest.raises(ValidationFailed) as empty:
        service.publish(db, template_id=template.id, actor=manager)
    assert empty.value.errors[0].code == "survey_empty"
    with pytest.raises(ValidationFailed) as reason:
        service.add_question(
            db,
            template_id=template.id,
            question_in=_q(QuestionKind.text, "原因", reason_for="nps"),
            actor=manager,
        )
    assert reason.value.errors[0].code == "survey_reason_target"
    with pytest.raises(ValueError, match="at least two options"):
        _q(QuestionKind.single, "选择", options=[OptionIn(value="a", label_zh="甲", label_en="A")])


def test_templates_api(client: Any, login: Any) -> None:
    _user, headers = login("manager")
    created = client.post(
        "/api/v1/surveys/templates",
        json={
            "code": "api_survey",
            "name_zh": "接口调查",
            "name_en": "API survey",
            "kind": "nps",
            "questions": [{"kind": "nps", "label_zh": "推荐", "label_en": "Recommend"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.json()["draft"]["questions"][0]["code"] == "nps"
    published = client.post(f"/api/v1/surveys/templates/{tid}/publish", headers=headers)
    assert published.json()["current"]["number"] == 1
    bad = client.put(
        f"/api/v1/surveys/templates/{tid}/draft",
        json={"questions": [{"kind": "dimension", "label_zh": "x", "label_en": "x"}]},
        headers=headers,
    )
    assert bad.status_code == 422
    replaced = client.put(
        f"/api/v1/surveys/templates/{tid}/draft",
        json={
            "questions": [
                {"kind": "nps", "label_zh": "推荐", "label_en": "Recommend", "required": True},
                {"kind": "text", "label_zh": "原因", "label_en": "Why", "reason_for": "nps"},
            ]
        },
        headers=headers,
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["current"]["number"], body["draft"]["number"]) == (1, 2)
    assert [q["code"] for q in body["draft"]["questions"]] == ["nps", "q2"]
    # An agent reads nothing here and changes nothing.
    _agent, agent_headers = login("agent")
    assert client.get("/api/v1/surveys/templates", headers=agent_headers).status_code == 403
    assert (
        client.post(f"/api/v1/surveys/templates/{tid}/publish", headers=agent_headers).status_code
        == 403
    )
