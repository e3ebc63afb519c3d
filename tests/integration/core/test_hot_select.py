"""HotSelect: a Core select compiled once per dialect and run on the driver's cursor.

It must read exactly what ``Connection.execute`` reads: the same rows, the same column keys,
literal values bound, and column types' result processing applied (UTC datetimes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.orm import Session

from guanxi.core.db import HotSelect
from guanxi.security.models import User, UserToken
from guanxi.security.service import issue_token, resolve_token


def test_rows_match_connection_execute(db: Session, make_user: Any) -> None:
    alice = make_user("agent", username="alice")
    make_user("manager", username="bob")
    stmt = (
        select(User.id, User.username, User.created_at)
        .where((User.username == "alice") | (User.username == "bob"))
        .order_by(User.username)
    )
    hot = HotSelect(stmt).all(db, {})
    core = db.connection().execute(stmt).all()
    assert [tuple(r) for r in hot] == [tuple(r) for r in core]
    assert [r.username for r in hot] == ["alice", "bob"]
    assert hot[0].id == alice.id
    # UTCDateTime's processing ran: aware, in UTC, on SQLite's text storage as on PostgreSQL.
    assert hot[0].created_at.tzinfo is not None
    assert hot[0].created_at.utcoffset().total_seconds() == 0


def test_named_parameters_and_bound_literals(db: Session, make_user: Any) -> None:
    carol = make_user("agent", username="carol")
    stmt = select(
        func.count(User.id), func.coalesce(func.max(User.id), 0), func.coalesce(None, 7)
    ).where(User.username == bindparam("name"))
    hot = HotSelect(stmt)
    assert tuple(hot.all(db, {"name": "carol"})[0]) == (1, carol.id, 7)
    # The same compiled statement with another value; nothing matches.
    assert tuple(hot.all(db, {"name": "nobody"})[0]) == (0, 0, 7)
    assert hot.first(db, {"name": "nobody"}) is not None


def test_in_lists_are_refused(db: Session) -> None:
    hot = HotSelect(select(User.id).where(User.username.in_(["x", "y"])))
    with pytest.raises(ValueError, match="expanding"):
        hot.all(db, {})


def test_first_is_none_without_rows(db: Session) -> None:
    hot = HotSelect(select(User.id).where(User.id == bindparam("id")))
    assert hot.first(db, {"id": 987654}) is None


def test_token_lookup_attaches_the_user_without_a_second_query(db: Session, make_user: Any) -> None:
    dave = make_user("agent", username="dave")
    secret, _ = issue_token(db, user=dave, kind="api", hours=1)
    db.expunge_all()
    live = resolve_token(db, secret=secret, kind="api")
    assert live is not None
    assert live.user.username == "dave"
    assert live.user.role == "agent"
    # Attached as if loaded: usable in relationships and identical to session.get().
    assert live.user in db
    assert db.get(User, dave.id) is live.user
    assert not db.dirty
    assert not db.new
    # A wrong kind, an expired and a revoked token all resolve to nothing.
    assert resolve_token(db, secret=secret, kind="web") is None
    row = db.scalar(select(UserToken).where(UserToken.user_id == dave.id))
    assert row is not None
    row.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    db.flush()
    assert resolve_token(db, secret=secret, kind="api") is None


def test_the_driver_connection_is_asked_again_in_each_transaction(
    committed_engine: Engine,
) -> None:
    from guanxi.core.db import _HOT_CONNECTION, make_sessionmaker

    hot = HotSelect(select(User.username).where(User.username == bindparam("name")))
    session = make_sessionmaker(committed_engine)()
    try:
        assert hot.first(session, {"name": "nobody"}) is None
        first = session.info[_HOT_CONNECTION]
        assert first[0] is session.get_transaction()
        assert first[2] is session.connection().connection.dbapi_connection
        hot.first(session, {"name": "nobody"})
        assert session.info[_HOT_CONNECTION] is first  # same transaction: kept
        # Written and committed elsewhere: the next transaction sees it.
        with make_sessionmaker(committed_engine)() as other:
            other.add(User(username="erin", display_name="e", role="agent", password_hash="x"))
            other.commit()
        session.commit()
        erin = hot.first(session, {"name": "erin"})
        assert erin is not None
        assert erin.username == "erin"
        second = session.info[_HOT_CONNECTION]
        assert second[0] is session.get_transaction()
        assert second[0] is not first[0]
        session.close()
        assert hot.first(session, {"name": "erin"}) is not None
        assert session.info[_HOT_CONNECTION][0] is session.get_transaction() is not second[0]
    finally:
        session.close()
