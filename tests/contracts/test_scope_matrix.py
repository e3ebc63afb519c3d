"""The role x route x scope matrix: every route that takes a customer, ticket, shipment,
contract or sales opportunity id, for a scoped user of each role, against a record inside and one
outside the scope (for opportunities also a lead without a customer: inside when the user
owns it, outside when it is in the pool).

Anonymous: 401. Without the route's permission: 403 (in or out of scope alike). Out of
scope: 404, exactly as a missing record. In scope: the route's success. Every list, search
and export of those records, called by the scoped user, leaves out the canaries planted
outside the scope (and shows the records inside it); so do attachment downloads.

The routes are read from the app, so a new route with one of these ids is covered the day
it is added; a write route needs an entry in ``WRITES`` (its body and expected success)
and the test says so when it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.contracts.models import Contract
from guanxi.contracts.schemas import ContractCreate
from guanxi.contracts.service import create_contract, site_today
from guanxi.sales.models import Opportunity
from guanxi.sales.schemas import OpportunityCreate
from guanxi.sales.service import create_opportunity
from guanxi.security.deps import route_permission
from guanxi.security.permissions import ROLE_PERMISSIONS, Role
from guanxi.security.scope import set_scope
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets import attachments
from guanxi.tickets.models import Team, Ticket
from guanxi.tickets.schemas import TicketCreate
from guanxi.tickets.service import create_ticket
from tests.contracts.test_route_permissions import api_routes

# Permissions a route checks beyond its dependency's (any one of them will do).
ALSO_NEEDS = {("GET", "/customers/{customer_id}/surveys"): {"surveys.read", "surveys.enter"}}
ID_PARAMS = {
    "customer_id": "customer",
    "ticket_id": "ticket",
    "shipment_id": "shipment",
    "opportunity_id": "opportunity",
    "contract_id": "contract",
}
# Other path parameters of those routes, with a valid value.
OTHER_PARAMS = {"field": "phones"}

CANARY_CUSTOMER = "越界金丝雀客户"
CANARY_TICKET = "越界金丝雀工单"
CANARY_WAYBILL = "GXCANARY0001"
CANARY_PHONE = "13900139000"
INSIDE_CUSTOMER = "范围内客户"
INSIDE_TICKET = "范围内工单"
INSIDE_WAYBILL = "GXINSIDE0001"
CANARY_OPPORTUNITY = "越界金丝雀商机"
CANARY_LEAD = "越界金丝雀线索"
CANARY_CONTRACT = "越界金丝雀合同"
INSIDE_CONTRACT = "范围内合同"
# Contracts are signed with enterprises: one inside the scope and one outside.
CANARY_ENTERPRISE = "越界金丝雀企业"
INSIDE_ENTERPRISE = "范围内企业"
INSIDE_OPPORTUNITY = "范围内商机"
INSIDE_LEAD = "范围内网站线索"
CANARIES = (
    CANARY_CUSTOMER,
    CANARY_TICKET,
    CANARY_WAYBILL,
    CANARY_OPPORTUNITY,
    CANARY_LEAD,
    CANARY_CONTRACT,
    CANARY_ENTERPRISE,
)
# Expected revenue in fen of the opportunities inside and outside the scope (the outside
# one would show in the pipeline's totals).
INSIDE_REVENUE, OUTSIDE_REVENUE = 120_000, 9_876_500


@dataclass
class World:
    """The records of one test: inside (``in``) and outside (``out``) the user's scope."""

    customer: dict[str, int]
    ticket: dict[str, int]
    shipment: dict[str, int]
    opportunity: dict[str, int]
    # Leads without a customer: the user's own ("in") and one in the pool ("out").
    lead: dict[str, int]
    contract: dict[str, int]
    attachment: dict[str, int]
    colleague_id: int
    headers: dict[str, str]
    admin_headers: dict[str, str]
    client: Any
    # The JSON answer of the last step run before a call (a coupon's code).
    last: dict[str, Any] = field(default_factory=dict)

    def ids(self, side: str, lead: bool = False) -> dict[str, int]:
        """The path ids of one side (``lead``: the lead without a customer as the
        opportunity)."""
        return {
            "customer_id": self.customer[side],
            "ticket_id": self.ticket[side],
            "shipment_id": self.shipment[side],
            "opportunity_id": (self.lead if lead else self.opportunity)[side],
            "contract_id": self.contract[side],
        }


# A step run before an in-scope call, inside its savepoint: who runs it ("self": the user
# under test, "admin": an unscoped administrator), method ("ACT": a ticket action), path
# and JSON body ("{customer_id}": the customer's id, "{version}": the version of the
# opportunity or contract the path names).
Step = tuple[str, str, str, dict[str, Any] | None]


@dataclass(frozen=True)
class Call:
    """How to call a route in scope: steps first (rolled back with the call), the JSON
    body, form fields or file, and the success expected (a page's form post answers 200
    with its panel or 303 to the record)."""

    json: Callable[[World, str], dict[str, Any]] | None = None
    form: Callable[[World, str], dict[str, Any]] | None = None
    file: bool = False
    before: tuple[Step, ...] = ()
    expect: tuple[int, ...] | None = None
    # The route acts on a lead without a customer (converting one).
    on_lead: bool = False

    def success(self, method: str, path: str) -> tuple[int, ...]:
        """The answers that mean done: as set, else 200 (a page's form post: its panel
        again or a 303 to the record)."""
        if self.expect is not None:
            return self.expect
        return (200,) if method == "GET" or path.startswith("/api/") else PAGE_POST


def _ticket_version(world: World, side: str) -> int:
    # Out of scope the ticket cannot be read: any version will do, the answer is 404.
    resp = world.client.get(f"/api/v1/tickets/{world.ticket[side]}", headers=world.headers)
    return int(resp.json()["version"]) if resp.status_code == 200 else 1


def _opportunity_version(world: World, side: str, lead: bool = False) -> int:
    # Read as the administrator: out of scope (or without the right) any version will do.
    opportunity_id = (world.lead if lead else world.opportunity)[side]
    resp = world.client.get(
        f"/api/v1/sales/opportunities/{opportunity_id}", headers=world.admin_headers
    )
    return int(resp.json()["version"])


def _version(world: World, side: str) -> int:
    return _opportunity_version(world, side)


def _contract_version(world: World, side: str) -> int:
    resp = world.client.get(
        f"/api/v1/contracts/{world.contract[side]}", headers=world.admin_headers
    )
    return int(resp.json()["version"])


def _terms(world: World, side: str) -> dict[str, Any]:
    """A draft's terms as edited (the contract runs from a month ago for a year)."""
    start = site_today() - timedelta(days=30)
    return {
        "title": "改过的合同",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(),
    }


TAKE: tuple[Step, ...] = (("self", "POST", "/api/v1/tickets/{ticket_id}/take", None),)
RESOLVED: tuple[Step, ...] = (
    *TAKE,
    ("self", "ACT", "start", None),
    ("self", "ACT", "resolve", {"note": "已处理", "reply": True}),
)
ENROLLED: tuple[Step, ...] = (
    ("admin", "POST", "/api/v1/loyalty/members", {"customer_id": "{customer_id}"}),
)
WITH_POINTS: tuple[Step, ...] = (
    *ENROLLED,
    (
        "admin",
        "POST",
        "/api/v1/loyalty/members/{customer_id}/adjust",
        {"points": 500, "reason": "矩阵测试", "key": "scope-matrix"},
    ),
)
ARCHIVED: tuple[Step, ...] = (("admin", "POST", "/api/v1/customers/{customer_id}/archive", None),)
ON_SALE: tuple[Step, ...] = (
    *WITH_POINTS,
    (
        "admin",
        "POST",
        "/api/v1/coupons/templates",
        {
            "code": "matrix10",
            "name_zh": "矩阵十元券",
            "name_en": "Matrix 10",
            "kind": "amount_off",
            "amount_off_fen": 1000,
            "valid_days": 30,
            "points_price": 100,
        },
    ),
)
WITH_COUPON: tuple[Step, ...] = (
    *ON_SALE,
    (
        "admin",
        "POST",
        "/api/v1/coupons/issue-one",
        {"customer_id": "{customer_id}", "template_code": "matrix10", "key": "m-coupon"},
    ),
)
PAGE_POST = (200, 303)
OPPORTUNITY = "/api/v1/sales/opportunities/{opportunity_id}"
IN_POOL: tuple[Step, ...] = (
    ("admin", "POST", OPPORTUNITY + "/assign", {"owner_id": None, "version": "{version}"}),
)
CONTRACT = "/api/v1/contracts/{contract_id}"
ACTIVE: tuple[Step, ...] = (("admin", "POST", CONTRACT + "/activate", {"version": "{version}"}),)
WON: tuple[Step, ...] = (
    ("self", "POST", OPPORTUNITY + "/stage", {"stage": "won", "version": "{version}"}),
)


def _coupon(world: World, side: str) -> str:
    return str(world.last.get("code", "GX0000000000"))


CALLS: dict[tuple[str, str], Call] = {
    ("PATCH", "/api/v1/customers/{customer_id}"): Call(json=lambda w, s: {"industry": "物流"}),
    ("POST", "/api/v1/customers/{customer_id}/archive"): Call(),
    ("POST", "/api/v1/customers/{customer_id}/restore"): Call(before=ARCHIVED),
    ("POST", "/api/v1/customers/{customer_id}/reveal"): Call(json=lambda w, s: {"field": "phones"}),
    ("PUT", "/api/v1/customers/{customer_id}/consents"): Call(
        json=lambda w, s: {"purpose": "marketing_sms", "granted": False}
    ),
    ("POST", "/api/v1/shipments/{shipment_id}/events"): Call(
        json=lambda w, s: {"status": "picked_up", "location": "深圳"}, expect=(201,)
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/take"): Call(),
    ("POST", "/api/v1/tickets/{ticket_id}/actions"): Call(
        before=TAKE, json=lambda w, s: {"action": "start", "version": _ticket_version(w, s)}
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/satisfaction"): Call(
        before=RESOLVED, json=lambda w, s: {"score": 9}
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/hand-over"): Call(
        before=TAKE, json=lambda w, s: {"to_user_id": w.colleague_id, "reason": "换班"}
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/attachments"): Call(file=True, expect=(201,)),
    ("GET", "/api/v1/loyalty/members/{customer_id}"): Call(before=ENROLLED),
    ("GET", "/api/v1/loyalty/members/{customer_id}/ledger"): Call(before=ENROLLED),
    ("GET", "/api/v1/loyalty/members/{customer_id}/tiers"): Call(before=ENROLLED),
    ("POST", "/api/v1/loyalty/members/{customer_id}/adjust"): Call(
        before=ENROLLED,
        json=lambda w, s: {"points": 10, "reason": "补录积分", "key": "m-adjust"},
        expect=(201,),
    ),
    ("POST", "/api/v1/loyalty/members/{customer_id}/bonus"): Call(
        before=ENROLLED,
        json=lambda w, s: {"points": 10, "reason": "活动奖励", "key": "m-bonus"},
        expect=(201,),
    ),
    ("POST", "/api/v1/loyalty/members/{customer_id}/redeem"): Call(
        before=WITH_POINTS,
        json=lambda w, s: {"points": 10, "reference": "GXINSIDE0001", "key": "m-redeem"},
        expect=(201,),
    ),
    ("POST", "/api/v1/loyalty/members/{customer_id}/coupons"): Call(
        before=ON_SALE,
        json=lambda w, s: {"template_code": "matrix10", "key": "m-buy"},
        expect=(201,),
    ),
    # The edit form as the page fills it: the region kept (a scoped user may not clear it).
    ("POST", "/customers/{customer_id}"): Call(form=lambda w, s: {"region": "广东省深圳市"}),
    ("POST", "/customers/{customer_id}/restore"): Call(before=ARCHIVED),
    # The user owns both customers (so that only the scope differs): one is put back in
    # the pool before it is claimed.
    ("POST", "/pool/{customer_id}/claim"): Call(
        before=(("admin", "POST", "/pool/{customer_id}/release", None),)
    ),
    ("POST", "/tickets/{ticket_id}/act"): Call(before=TAKE, form=lambda w, s: {"action": "start"}),
    ("POST", "/tickets/{ticket_id}/satisfaction"): Call(before=RESOLVED),
    ("POST", "/tickets/{ticket_id}/hand-over"): Call(
        before=TAKE, form=lambda w, s: {"to_user_id": str(w.colleague_id), "reason": "换班"}
    ),
    ("POST", "/tickets/{ticket_id}/attachments"): Call(file=True),
    ("POST", "/customers/{customer_id}/interactions"): Call(
        form=lambda w, s: {"kind": "call", "summary": "回访"}
    ),
    ("GET", "/customers/{customer_id}/loyalty"): Call(before=ENROLLED),
    ("POST", "/customers/{customer_id}/loyalty/adjust"): Call(
        before=ENROLLED, form=lambda w, s: {"points": "10", "reason": "补录积分", "key": "p-adj"}
    ),
    ("POST", "/customers/{customer_id}/loyalty/redeem"): Call(
        before=WITH_POINTS,
        form=lambda w, s: {"points": "10", "reference": "GXINSIDE0001", "key": "p-red"},
    ),
    ("POST", "/customers/{customer_id}/loyalty/buy"): Call(
        before=ON_SALE, form=lambda w, s: {"template_code": "matrix10", "key": "p-buy"}
    ),
    ("POST", "/customers/{customer_id}/loyalty/issue"): Call(
        before=ON_SALE, form=lambda w, s: {"template_code": "matrix10", "key": "p-issue"}
    ),
    ("POST", "/customers/{customer_id}/loyalty/use"): Call(
        before=WITH_COUPON,
        form=lambda w, s: {"code": _coupon(w, s), "reference": "GXINSIDE0001", "amount": "50"},
    ),
    ("POST", "/customers/{customer_id}/loyalty/void"): Call(
        before=WITH_COUPON, form=lambda w, s: {"code": _coupon(w, s), "reason": "作废"}
    ),
    ("PUT", OPPORTUNITY): Call(
        json=lambda w, s: {
            "title": "改过的商机",
            "expected_revenue": 100,
            "version": _version(w, s),
        }
    ),
    ("POST", OPPORTUNITY + "/stage"): Call(
        json=lambda w, s: {"stage": "qualified", "version": _version(w, s)}
    ),
    ("POST", OPPORTUNITY + "/claim"): Call(before=IN_POOL),
    ("POST", OPPORTUNITY + "/assign"): Call(
        json=lambda w, s: {"owner_id": None, "version": _version(w, s)}
    ),
    ("POST", OPPORTUNITY + "/reopen"): Call(
        before=WON, json=lambda w, s: {"reason": "客户回心转意", "version": _version(w, s)}
    ),
    ("POST", OPPORTUNITY + "/convert"): Call(
        on_lead=True, json=lambda w, s: {"customer_id": w.customer["in"]}
    ),
    ("POST", OPPORTUNITY + "/interactions"): Call(
        json=lambda w, s: {"customer_id": w.customer[s], "kind": "call", "summary": "回访"},
        expect=(201,),
    ),
    ("POST", "/sales/opportunities/{opportunity_id}"): Call(
        form=lambda w, s: {
            "title": "改过的商机",
            "expected_revenue": "1.00",
            "version": str(_version(w, s)),
        }  # fmt: skip
    ),
    ("POST", "/sales/opportunities/{opportunity_id}/stage"): Call(
        form=lambda w, s: {"stage": "qualified", "version": str(_version(w, s)), "back": "detail"}
    ),
    ("POST", "/sales/opportunities/{opportunity_id}/claim"): Call(before=IN_POOL),
    ("POST", "/sales/opportunities/{opportunity_id}/assign"): Call(
        form=lambda w, s: {"owner_id": "unowned", "version": str(_version(w, s))}
    ),
    ("POST", "/sales/opportunities/{opportunity_id}/reopen"): Call(
        before=WON, form=lambda w, s: {"reason": "客户回心转意", "version": str(_version(w, s))}
    ),
    ("POST", "/sales/opportunities/{opportunity_id}/convert"): Call(
        on_lead=True, form=lambda w, s: {"customer_id": str(w.customer["in"])}
    ),
    ("POST", "/sales/opportunities/{opportunity_id}/interactions"): Call(
        form=lambda w, s: {"kind": "call", "summary": "回访"}
    ),
    ("PUT", CONTRACT): Call(json=lambda w, s: {**_terms(w, s), "version": _contract_version(w, s)}),
    ("POST", CONTRACT + "/activate"): Call(json=lambda w, s: {"version": _contract_version(w, s)}),
    ("POST", CONTRACT + "/terminate"): Call(
        before=ACTIVE,
        json=lambda w, s: {"reason": "客户停业", "version": _contract_version(w, s)},
    ),
    ("POST", CONTRACT + "/renew"): Call(before=ACTIVE, json=lambda w, s: {}, expect=(201,)),
    ("POST", CONTRACT + "/documents"): Call(file=True, expect=(201,)),
    ("POST", "/contracts/{contract_id}"): Call(
        form=lambda w, s: {**_terms(w, s), "version": str(_contract_version(w, s))}
    ),
    ("POST", "/contracts/{contract_id}/activate"): Call(
        form=lambda w, s: {"version": str(_contract_version(w, s))}
    ),
    ("POST", "/contracts/{contract_id}/terminate"): Call(
        before=ACTIVE,
        form=lambda w, s: {"terminate_reason": "客户停业", "version": str(_contract_version(w, s))},
    ),
    ("POST", "/contracts/{contract_id}/renew"): Call(before=ACTIVE),
    ("POST", "/contracts/{contract_id}/documents"): Call(file=True),
}


def id_routes(app: Any) -> list[tuple[str, str, str | None]]:
    """(method, path, permission) of every route with a customer, ticket, shipment,
    contract or opportunity id."""
    out = []
    for path, methods, route in api_routes(app):
        params = set(re.findall(r"{(\w+)}", path))
        if not params & ID_PARAMS.keys():
            continue
        unknown = params - ID_PARAMS.keys() - OTHER_PARAMS.keys()
        assert not unknown, f"{path}: give OTHER_PARAMS a value for {unknown}"
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append((method, path, route_permission(route.dependant)))
    return out


def list_routes(app: Any) -> list[str]:
    """Every GET list, search or export without path parameters: of customers, tickets,
    shipments and what hangs on them (contracts, the pool, sales), and every CSV, XLSX or
    export download. Not the audit log's: the auditor's trail of every change is not a
    list of customers (scopes limit agents' work, not the audit)."""
    families = ("customers", "tickets", "shipments", "contracts", "pool", "sales")
    out = []
    for path, methods, _route in api_routes(app):
        if "GET" not in methods or "{" in path or path.startswith(("/api/v1/audit", "/audit")):
            continue
        parts = path.removeprefix("/api/v1").strip("/").split("/")
        if parts[0] in families or path.endswith((".csv", ".xlsx", "/export", "/download")):
            out.append(path)
    return sorted(set(out))


def _world(db: Session, app: Any, client: Any, login: Any, make_user: Any, make_customer: Any,
           role: Role) -> World:  # fmt: skip
    user, headers = login(role.value)
    colleague = make_user("agent")
    admin, admin_headers = login("admin")
    inside_team, outside_team = (
        Team(code="scope-in", name="甲组"),
        Team(code="scope-out", name="乙组"),
    )
    db.add_all([inside_team, outside_team])
    db.flush()
    system = Actor.system("test")
    customers = {
        "in": make_customer(name=INSIDE_CUSTOMER, region="广东省深圳市", phones=["13800138000"]),
        "out": make_customer(name=CANARY_CUSTOMER, region="北京市", phones=[CANARY_PHONE]),
    }
    # Owned by the user: what the role alone would let them see, so only the scope differs.
    for c in customers.values():
        db.execute(update(type(c)).where(type(c).id == c.id).values(owner_id=user.id))
    db.commit()
    tickets, shipments, files = {}, {}, {}
    for side, name, waybill, team in (
        ("in", INSIDE_TICKET, INSIDE_WAYBILL, inside_team),
        ("out", CANARY_TICKET, CANARY_WAYBILL, outside_team),
    ):
        cid = customers[side].id
        ticket = create_ticket(
            db,
            ticket_in=TicketCreate(
                type="complaint", channel="hotline", customer_id=cid, subject=name
            ),
            actor=system,
        )
        db.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(team_id=team.id, owner_id=None)
        )
        db.commit()
        tickets[side] = ticket.id
        shipments[side] = create_shipment(
            db, shipment_in=ShipmentCreate(waybill_no=waybill, customer_id=cid), actor=admin
        ).id
        files[side] = attachments.store(
            db,
            ticket_id=ticket.id,
            filename=f"{waybill}.txt",
            declared_type="text/plain",
            stream=__import__("io").BytesIO(f"{name} {waybill}\n".encode()),
            settings=app.state.settings,
        ).id
    opportunities, leads = {}, {}
    for side, title, lead_title, revenue in (
        ("in", INSIDE_OPPORTUNITY, INSIDE_LEAD, INSIDE_REVENUE),
        ("out", CANARY_OPPORTUNITY, CANARY_LEAD, OUTSIDE_REVENUE),
    ):
        opportunity = create_opportunity(
            db,
            opportunity_in=OpportunityCreate(
                title=title, customer_id=customers[side].id, expected_revenue=revenue
            ),
            actor=admin,
        )
        lead = create_opportunity(
            db, opportunity_in=OpportunityCreate(title=lead_title, unowned=True), actor=admin
        )
        opportunities[side], leads[side] = opportunity.id, lead.id
    # The user owns both opportunities and the inside lead (whatever the role would let
    # them own: only the scope differs); the outside lead stays in the pool.
    owned = [opportunities["in"], opportunities["out"], leads["in"]]
    db.execute(update(Opportunity).where(Opportunity.id.in_(owned)).values(owner_id=user.id))
    db.commit()
    contracts = {}
    start = site_today() - timedelta(days=30)
    for side, title, name, region in (
        ("in", INSIDE_CONTRACT, INSIDE_ENTERPRISE, "广东省广州市"),
        ("out", CANARY_CONTRACT, CANARY_ENTERPRISE, "北京市"),
    ):
        enterprise = make_customer(name=name, kind="enterprise", region=region)
        db.execute(
            update(type(enterprise))
            .where(type(enterprise).id == enterprise.id)
            .values(owner_id=user.id)
        )
        contract = create_contract(
            db,
            contract_in=ContractCreate(
                customer_id=enterprise.id,
                title=title,
                start_date=start,
                end_date=start + timedelta(days=364),
            ),
            actor=admin,
        )
        contracts[side] = contract.id
    db.execute(update(Contract).where(Contract.id.in_(contracts.values())).values(owner_id=user.id))
    db.commit()
    set_scope(db, user_id=user.id, regions=["广东"], team_ids=[inside_team.id], actor=admin)
    return World(
        customer={k: v.id for k, v in customers.items()},
        ticket=tickets,
        shipment=shipments,
        opportunity=opportunities,
        lead=leads,
        contract=contracts,
        attachment=files,
        colleague_id=colleague.id,
        headers=headers,
        admin_headers=admin_headers,
        client=client,
    )


def _url(world: World, path: str, side: str, call: Call | None) -> str:
    lead = call is not None and call.on_lead
    return path.format(**world.ids(side, lead), **OTHER_PARAMS)


def _call(world: World, method: str, path: str, side: str, call: Call | None) -> Any:
    url = _url(world, path, side, call)
    kw: dict[str, Any] = {"headers": world.headers, "follow_redirects": False}
    if call is not None and call.json is not None:
        kw["json"] = call.json(world, side)
    if call is not None and call.form is not None:
        kw["data"] = call.form(world, side)
    if call is not None and call.file:
        kw["files"] = {"file": ("note.txt", b"scope matrix\n", "text/plain")}
    return world.client.request(method, url, **kw)


def _before(world: World, call: Call) -> None:
    ids = {k: str(v) for k, v in world.ids("in", call.on_lead).items()}
    for who, method, path, body in call.before:
        headers = world.headers if who == "self" else world.admin_headers
        if method == "ACT":
            url = f"/api/v1/tickets/{world.ticket['in']}/actions"
            json = {"action": path, "version": _ticket_version(world, "in"), **(body or {})}
            resp = world.client.post(url, json=json, headers=headers)
        else:
            json = {k: int(v.format(**ids)) if v == "{customer_id}" else v
                    for k, v in (body or {}).items()}  # fmt: skip
            if json.get("version") == "{version}":
                json["version"] = (
                    _contract_version(world, "in")
                    if path.startswith(CONTRACT)
                    else _opportunity_version(world, "in", call.on_lead)
                )
            resp = world.client.request(
                method, path.format(**ids), json=json or None, headers=headers
            )
        assert resp.status_code < 400, f"step {method} {path}: {resp.status_code} {resp.text}"
        json_answer = resp.headers.get("content-type", "").startswith("application/json")
        world.last = resp.json() if json_answer else {}


def _anonymous_refused(resp: Any, path: str) -> bool:
    """401 on the API; a page sends the visitor to sign in."""
    if path.startswith("/api/"):
        return bool(resp.status_code == 401)
    return bool(resp.status_code == 303 and resp.headers["location"].startswith("/login?"))


@pytest.mark.parametrize("role", list(Role))
def test_role_route_scope_matrix(
    role: Role,
    app: Any,
    client: Any,
    connection: Any,
    db: Session,
    login: Any,
    make_user: Any,
    make_customer: Any,
) -> None:
    world = _world(db, app, client, login, make_user, make_customer, role)
    held = {p.value for p in ROLE_PERMISSIONS[role]}
    failures = []
    for method, path, permission in id_routes(app):
        call = CALLS.get((method, path))
        if method != "GET" and call is None and path.startswith("/api/"):
            failures.append(f"{method} {path}: add it to CALLS")
            continue
        allowed = permission == "authenticated" or permission in held
        allowed = allowed and bool(ALSO_NEEDS.get((method, path), held) & held)
        outcomes = {}
        for side in ("in", "out"):
            # Each call from the same starting point: its writes are rolled back after it.
            savepoint = connection.begin_nested()
            world.last = {}
            try:
                if side == "in" and allowed and call is not None:
                    _before(world, call)
                url = _url(world, path, side, call)
                anonymous = world.client.request(method, url, follow_redirects=False)
                if not _anonymous_refused(anonymous, path):
                    failures.append(f"{method} {url}: anonymous {anonymous.status_code}")
                resp = _call(world, method, path, side, call)
                outcomes[side] = (resp.status_code, resp.text[:160])
            finally:
                savepoint.rollback()
        success = call.success(method, path) if call is not None else Call().success(method, path)
        expected_in = success if allowed else (403,)
        expected_out = 404 if allowed else 403
        if outcomes["in"][0] not in expected_in or outcomes["out"][0] != expected_out:
            failures.append(
                f"{method} {path}: in {outcomes['in'][0]} (want {expected_in}) "
                f"{outcomes['in'][1]!r}; out {outcomes['out'][0]} (want {expected_out}) "
                f"{outcomes['out'][1]!r}"
            )
    assert failures == []


@pytest.mark.parametrize("role", list(Role))
def test_lists_and_exports_never_show_out_of_scope_rows(
    role: Role,
    app: Any,
    client: Any,
    db: Session,
    login: Any,
    make_user: Any,
    make_customer: Any,
) -> None:
    world = _world(db, app, client, login, make_user, make_customer, role)
    leaks = []
    for path in list_routes(app):
        # The canary's phone as the search (a search box shows what was searched for, so
        # the name would be echoed back), and the ticket queues of everyone.
        for query in ("", "?q=" + CANARY_PHONE, "?view=open", "?view=unassigned&include_done=true"):
            resp = client.get(path + query, headers=world.headers)
            if resp.status_code >= 500:
                leaks.append(f"GET {path}{query}: {resp.status_code}")
            body = resp.content.decode("utf-8", errors="replace")
            for canary in CANARIES:
                if canary in body:
                    leaks.append(f"GET {path}{query} shows {canary}")
    # Attachment downloads: the file inside the scope opens, the one outside is missing.
    inside = client.get(f"/api/v1/attachments/{world.attachment['in']}", headers=world.headers)
    outside = client.get(f"/api/v1/attachments/{world.attachment['out']}", headers=world.headers)
    readable = "ticket.read" in {p.value for p in ROLE_PERMISSIONS[role]}
    assert (inside.status_code, outside.status_code) == ((200, 404) if readable else (403, 403))
    if readable:
        assert inside.content == f"{INSIDE_TICKET} {INSIDE_WAYBILL}\n".encode()
        assert CANARY_WAYBILL.encode() not in outside.content
    assert leaks == []


def test_the_scoped_lists_show_what_is_inside(
    app: Any, client: Any, db: Session, login: Any, make_user: Any, make_customer: Any
) -> None:
    world = _world(db, app, client, login, make_user, make_customer, Role.agent)
    h = world.headers
    customers = client.get("/api/v1/customers", headers=h).json()
    # Newest first: the enterprise inside (for the contracts) was added after.
    assert [c["name"] for c in customers["items"]] == [INSIDE_ENTERPRISE, INSIDE_CUSTOMER]
    tickets = client.get("/api/v1/tickets", headers=h).json()
    assert [t["subject"] for t in tickets] == [INSIDE_TICKET]
    shipments = client.get("/api/v1/shipments", headers=h).json()
    assert [s["waybill_no"] for s in shipments["items"]] == [INSIDE_WAYBILL]
    for page in ("/customers", "/tickets?view=open", "/shipments"):
        body = client.get(page, headers=h).text
        assert INSIDE_CUSTOMER in body or INSIDE_TICKET in body or INSIDE_WAYBILL in body, page


def test_the_scoped_pipeline_and_contracts_show_what_is_inside(
    app: Any, client: Any, db: Session, login: Any, make_user: Any, make_customer: Any
) -> None:
    world = _world(db, app, client, login, make_user, make_customer, Role.sales)
    h = world.headers
    opportunities = client.get("/api/v1/sales/opportunities", headers=h).json()
    # The user's two inside, and the pool's lead of the new enterprise inside.
    assert sorted(o["title"] for o in opportunities) == sorted(
        [INSIDE_OPPORTUNITY, INSIDE_LEAD, f"{INSIDE_ENTERPRISE} · 新企业客户"]
    )
    forecast = client.get("/api/v1/sales/forecast", headers=h).json()
    assert forecast["total_expected"] == INSIDE_REVENUE
    contracts = client.get("/api/v1/contracts", headers=h).json()
    assert [c["title"] for c in contracts["items"]] == [INSIDE_CONTRACT]
    assert contracts["total"] == 1
