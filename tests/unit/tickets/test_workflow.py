"""The ticket workflow, exhaustively: every status x action pair is either the listed
transition or refused."""

from __future__ import annotations

import pytest

from guanxi.tickets.enums import TicketAction, TicketStatus, next_status
from guanxi.tickets.service import priority_for

S, A = TicketStatus, TicketAction

ALLOWED = {
    (S.new, A.assign): S.assigned,
    (S.new, A.start): S.in_progress,
    (S.assigned, A.assign): S.assigned,
    (S.assigned, A.start): S.in_progress,
    (S.assigned, A.resolve): S.resolved,
    (S.in_progress, A.assign): S.in_progress,
    (S.in_progress, A.wait_customer): S.waiting_customer,
    (S.in_progress, A.wait_third_party): S.waiting_third_party,
    (S.in_progress, A.resolve): S.resolved,
    (S.waiting_customer, A.assign): S.waiting_customer,
    (S.waiting_customer, A.resume): S.in_progress,
    (S.waiting_customer, A.resolve): S.resolved,
    (S.waiting_third_party, A.assign): S.waiting_third_party,
    (S.waiting_third_party, A.resume): S.in_progress,
    (S.waiting_third_party, A.resolve): S.resolved,
    (S.resolved, A.close): S.closed,
    (S.resolved, A.reopen): S.in_progress,
    (S.closed, A.reopen): S.in_progress,
}


@pytest.mark.parametrize("status", list(TicketStatus))
@pytest.mark.parametrize("action", list(TicketAction))
def test_every_pair(status: TicketStatus, action: TicketAction) -> None:
    assert next_status(status, action) == ALLOWED.get((status, action))


def test_the_table_covers_all_pairs() -> None:
    assert len(list(TicketStatus)) * len(list(TicketAction)) == 56
    assert len(ALLOWED) == 18


@pytest.mark.parametrize(
    ("type_", "severity", "channel", "expected"),
    [
        ("complaint", "critical", "hotline", "urgent"),
        ("inquiry", "minor", "regulator", "urgent"),
        ("complaint", "major", "hotline", "high"),
        ("inquiry", "major", "web_form", "high"),
        ("complaint", "minor", "wechat", "normal"),
        ("claim", "minor", "outlet", "normal"),
        ("service_request", "minor", "api", "normal"),
        ("inquiry", "minor", "hotline", "low"),
    ],
)
def test_priority_matrix(type_: str, severity: str, channel: str, expected: str) -> None:
    from guanxi.tickets.enums import Severity, TicketChannel, TicketType

    got = priority_for(TicketType(type_), Severity(severity), TicketChannel(channel))
    assert got.value == expected
