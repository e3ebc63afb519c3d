"""Two submissions of one link at the same moment store one response (threads, real
commits, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select

from guanxi.audit.service import Actor
from guanxi.core.db import make_sessionmaker
from guanxi.customers.schemas import CustomerCreate
from guanxi.customers.service import create_customer
from guanxi.surveys import responses
from guanxi.surveys.models import SurveyResponse
from guanxi.surveys.responses import SurveyLinkError
from tests.integration.surveys.helpers import invite


def test_concurrent_double_submit_stores_one_response(committed_engine: Engine) -> None:
    factory = make_sessionmaker(committed_engine)
    with factory() as session:
        customer = create_customer(
            session,
            customer_in=CustomerCreate(name="并发客户", phones=["13700137000"]),  # type: ignore[arg-type]
            actor=Actor.system("test"),
        )
        invited = invite(session, customer.id, "relationship")
    start = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(score: int) -> None:
        with factory() as session:
            start.wait()
            try:
                responses.answer_link(
                    session, token=invited.token, answers={"nps": score}, lang="zh_CN"
                )
                result = "stored"
            except SurveyLinkError as exc:
                result = exc.reason
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=submit, args=(9 + n % 2,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["answered", "answered", "answered", "stored"]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
