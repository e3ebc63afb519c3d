"""The service-desk mix for locust (benchmarks/load.py and tests/integration/ops/test_load.py):
each simulated user is a signed-in supervisor who searches customers by name and by
mobile, opens 360 views and steps tickets through their workflow (wait for the customer /
resume) with the version the API requires, re-reading and retrying on a conflict as a
real client does.

What the clients saw is kept in :data:`LEDGER` (successful updates per ticket, conflicts,
unexpected answers) so the runner can compare it with the database afterwards: every
accepted update must be there once (no lost write).

Configured by :func:`configure` before the users start (tokens, customers, tickets); the
module holds no state of its own otherwise. Under locust everything runs in one process on
gevent, so the counters need no locks.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from locust import HttpUser, between, task

# A conflict is retried this many times before the client gives up (and it is counted):
# with tens of users on a few tickets, a handful of retries always wins in the end.
MAX_ATTEMPTS = 20


@dataclass
class Workload:
    """What the users work on: their tokens and the seeded customers and tickets."""

    tokens: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    customer_ids: list[int] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)


@dataclass
class Ledger:
    """What the clients saw: accepted updates per ticket, conflicts and give-ups."""

    updates: Counter[int] = field(default_factory=Counter)
    conflicts: int = 0
    gave_up: int = 0
    unexpected: list[str] = field(default_factory=list)


WORKLOAD = Workload()
LEDGER = Ledger()


def configure(workload: Workload) -> None:
    """Set the workload and clear the ledger (before a run)."""
    global WORKLOAD, LEDGER
    WORKLOAD = workload
    LEDGER = Ledger()


class DeskUser(HttpUser):
    """A supervisor at the service desk (weights: 3 searches by name, 3 by mobile, 3 360
    views, 2 ticket updates)."""

    wait_time = between(0.05, 0.3)
    _seq = 0

    def on_start(self) -> None:
        """Take the next token (users are spread over the seeded accounts)."""
        DeskUser._seq += 1
        token = WORKLOAD.tokens[DeskUser._seq % len(WORKLOAD.tokens)]
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.rng = random.Random(DeskUser._seq)

    def _expect(self, resp: Any, *ok: int) -> bool:
        if resp.status_code in ok:
            resp.success()
            return True
        message = f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:200]}"
        LEDGER.unexpected.append(message)
        resp.failure(message)
        return False

    @task(3)
    def search_name(self) -> None:
        """Search by a customer's name (the whole name or its first two characters)."""
        name = self.rng.choice(WORKLOAD.names)
        q = name if self.rng.random() < 0.5 else name[:2]
        with self.client.get(
            "/api/v1/customers", params={"q": q, "limit": 20}, name="search: name",
            catch_response=True,
        ) as resp:  # fmt: skip
            if self._expect(resp, 200) and not resp.json()["items"]:
                resp.failure(f"no customer found for the name {q!r}")
                LEDGER.unexpected.append(f"search by name {q!r}: no result")

    @task(3)
    def search_phone(self) -> None:
        """Search by a customer's mobile number: exactly one customer has it."""
        phone = self.rng.choice(WORKLOAD.phones)
        with self.client.get(
            "/api/v1/customers", params={"q": phone}, name="search: phone", catch_response=True
        ) as resp:
            if self._expect(resp, 200) and len(resp.json()["items"]) != 1:
                resp.failure("a mobile number found other than one customer")
                LEDGER.unexpected.append("search by phone: not exactly one result")

    @task(3)
    def view_360(self) -> None:
        """Open a customer's 360 view."""
        cid = self.rng.choice(WORKLOAD.customer_ids)
        with self.client.get(
            f"/api/v1/customers/{cid}", name="360 view", catch_response=True
        ) as resp:
            self._expect(resp, 200)

    @task(2)
    def update_ticket(self) -> None:
        """Move a ticket between in progress and waiting for the customer, with the
        version just read; on 409 (someone else was first) read again and retry."""
        tid = self.rng.choice(WORKLOAD.ticket_ids)
        for _attempt in range(MAX_ATTEMPTS):
            with self.client.get(
                f"/api/v1/tickets/{tid}", name="ticket: read", catch_response=True
            ) as got:
                if not self._expect(got, 200):
                    return
                ticket = got.json()
            action = "wait_customer" if ticket["status"] == "in_progress" else "resume"
            with self.client.post(
                f"/api/v1/tickets/{tid}/actions",
                json={"action": action, "version": ticket["version"], "note": "负载测试"},
                name="ticket: update",
                catch_response=True,
            ) as resp:
                if resp.status_code == 409:
                    # Expected under contention: not an error, the client retries.
                    resp.success()
                    LEDGER.conflicts += 1
                    continue
                if self._expect(resp, 200):
                    LEDGER.updates[tid] += 1
                return
        LEDGER.gave_up += 1
