"""Coded values of the service desk and the ticket workflow as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class TicketType(StrEnum):
    """What the customer came with."""

    complaint = "complaint"  # 投诉
    inquiry = "inquiry"  # 咨询
    service_request = "service_request"  # 服务请求
    claim = "claim"  # 理赔


class TicketChannel(StrEnum):
    """Where the ticket came in."""

    hotline = "hotline"
    online_chat = "online_chat"
    outlet = "outlet"
    email = "email"
    web_form = "web_form"
    wechat = "wechat"
    social_media = "social_media"
    api = "api"
    # A referral from the postal bureau / the 12305 complaint line: legal deadlines apply.
    regulator = "regulator"


class Severity(StrEnum):
    """How bad it is for the customer."""

    critical = "critical"
    major = "major"
    minor = "minor"


class Priority(StrEnum):
    """How soon it is worked on (from type, severity and channel by the priority matrix)."""

    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


class TicketStatus(StrEnum):
    """Where a ticket stands."""

    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    waiting_customer = "waiting_customer"  # SLA paused
    waiting_third_party = "waiting_third_party"  # SLA paused
    resolved = "resolved"
    closed = "closed"


class TicketAction(StrEnum):
    """What a person (or the system) does to a ticket."""

    assign = "assign"
    start = "start"
    wait_customer = "wait_customer"
    wait_third_party = "wait_third_party"
    resume = "resume"
    resolve = "resolve"
    close = "close"
    reopen = "reopen"


S, A = TicketStatus, TicketAction

# The workflow: from each status, the actions allowed and where they lead. Anything not
# listed is refused with a message naming the current status.
TRANSITIONS: dict[TicketStatus, dict[TicketAction, TicketStatus]] = {
    S.new: {A.assign: S.assigned, A.start: S.in_progress},
    S.assigned: {A.assign: S.assigned, A.start: S.in_progress, A.resolve: S.resolved},
    S.in_progress: {
        A.assign: S.in_progress,
        A.wait_customer: S.waiting_customer,
        A.wait_third_party: S.waiting_third_party,
        A.resolve: S.resolved,
    },
    S.waiting_customer: {
        A.assign: S.waiting_customer,
        A.resume: S.in_progress,
        A.resolve: S.resolved,
    },
    S.waiting_third_party: {
        A.assign: S.waiting_third_party,
        A.resume: S.in_progress,
        A.resolve: S.resolved,
    },
    # "Re-process until the customer is satisfied": a resolved ticket reopens.
    S.resolved: {A.close: S.closed, A.reopen: S.in_progress},
    # A closed ticket reopens only within the policy's window (checked by the service).
    S.closed: {A.reopen: S.in_progress},
}

# Statuses in which the SLA clock does not run.
PAUSED = frozenset({S.waiting_customer, S.waiting_third_party})
# Statuses in which the resolution target no longer applies.
DONE = frozenset({S.resolved, S.closed})


def next_status(current: TicketStatus, action: TicketAction) -> TicketStatus | None:
    """Where ``action`` takes a ticket in ``current``, or None when it is not allowed."""
    return TRANSITIONS.get(current, {}).get(action)


class ClaimStatus(StrEnum):
    """Where a claim stands."""

    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    paid = "paid"


class ClaimReason(StrEnum):
    """What happened to the shipment."""

    loss = "loss"
    damage = "damage"
    delay = "delay"
    shortage = "shortage"  # 少件 / 内件短少


LABELS: dict[str, str] = {
    "submitted": N_("Submitted"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "paid": N_("Paid"),
    "loss": N_("Loss"),
    "damage": N_("Damage"),
    "delay": N_("Delay"),
    "shortage": N_("Shortage"),
    "complaint": N_("Complaint"),
    "inquiry": N_("Inquiry"),
    "service_request": N_("Service request"),
    "claim": N_("Claim"),
    "hotline": N_("Hotline"),
    "online_chat": N_("Online chat"),
    "outlet": N_("Outlet"),
    "email": N_("E-mail"),
    "web_form": N_("Web form"),
    "wechat": N_("WeChat"),
    "api": N_("API"),
    "new": N_("Not yet taken"),
    "social_media": N_("Social media"),
    "regulator": N_("Regulator referral"),
    "critical": N_("Critical"),
    "major": N_("Major"),
    "minor": N_("Minor"),
    "urgent": N_("Urgent"),
    "high": N_("High"),
    "normal": N_("Normal"),
    "low": N_("Low"),
    "assigned": N_("Assigned"),
    "in_progress": N_("In progress"),
    "waiting_customer": N_("Waiting on customer"),
    "waiting_third_party": N_("Waiting on third party"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "assign": N_("Assign"),
    "start": N_("Start work"),
    "wait_customer": N_("Wait on customer"),
    "wait_third_party": N_("Wait on third party"),
    "resume": N_("Resume"),
    "resolve": N_("Resolve"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "create": N_("Ticket opened"),
    "take": N_("Taken"),
    "hand_over": N_("Handed over"),
    # The survey's CSAT answer (1-10); 4 or lower is "not satisfied" (surveys/).
    "satisfaction": N_("Satisfaction answered"),
    "unsatisfied": N_("Customer not satisfied"),
    "customer_message": N_("Message from the customer"),
    "least_loaded": N_("Fewest open tickets"),
    "round_robin": N_("Round-robin"),
    "queue": N_("Team queue (agents take)"),
}
