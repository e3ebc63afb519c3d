"""A framework-free twin of the customer 360 API, for the benchmark baseline only.

Mounted at ``/_bare/customers/{id}`` when ``GUANXI_BENCH_BARE=1``. At start-up it records
the exact SQL statements the real 360 request runs (authentication included) for one sample
customer, then answers by replaying them with the raw database driver for the requested id
and dumping the rows as JSON: the same database work with no routing, validation, ORM,
serialisation models or middleware. Off by default; never mounted in production.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import sessionmaker
from starlette.types import Receive, Scope, Send

from guanxi.core.db import HotSelect
from guanxi.customers.models import Customer
from guanxi.security.models import User, UserToken


def capture_statements(
    engine: Engine, sm: sessionmaker[Any]
) -> tuple[list[tuple[str, tuple[Any, ...]]], int]:
    """Run the real 360 service once and record its SQL and parameters."""
    from guanxi.workspace.service import customer_360

    with sm() as session:
        sample = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
        token_hash = session.scalar(select(UserToken.token_hash).limit(1))
        user = session.scalar(select(User).where(User.role == "agent").limit(1))
    if sample is None or user is None:
        raise RuntimeError("bare endpoint needs demo data and an agent user")
    recorded: list[tuple[str, tuple[Any, ...]]] = []

    def listener(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            return
        recorded.append((statement, tuple(params) if isinstance(params, list | tuple) else params))

    event.listen(engine, "before_cursor_execute", listener)
    HotSelect.trace = lambda sql, params: recorded.append((sql, tuple(params)))
    try:
        with sm() as session:
            if token_hash:
                session.scalar(
                    select(UserToken).where(
                        UserToken.token_hash == token_hash, UserToken.kind == "api"
                    )
                )
            customer_360(session, customer_id=sample, viewer=user)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
        HotSelect.trace = None
    return recorded, sample


class BareCustomer360:
    """Raw-ASGI app replaying the recorded statements with ``sqlite3``."""

    def __init__(
        self, db_path: str, statements: list[tuple[str, tuple[Any, ...]]], sample_id: int
    ) -> None:
        self.db_path = db_path
        self.statements = statements
        self.sample_id = sample_id
        self.local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, check_same_thread=False)
            self.local.conn = conn
        return conn

    def _params(self, params: tuple[Any, ...], cid: int) -> tuple[Any, ...]:
        swap = {self.sample_id: cid, str(self.sample_id): str(cid)}
        return tuple(swap.get(p, p) if isinstance(p, int | str) else p for p in params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            cid = int(scope["path"].rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            cid = 0
        conn = self._conn()
        out = [
            conn.execute(sql, self._params(params, cid)).fetchall()
            for sql, params in self.statements
        ]
        body = json.dumps(out, default=str, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
