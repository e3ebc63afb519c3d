"""Named permissions and the roles that hold them (least privilege by default)."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class Permission(StrEnum):
    """A named right checked by ``require(...)`` on every route."""

    customer_read = "customer.read"
    # Without it a user sees only the customers they own (sales: their own book).
    customer_read_all = "customer.read_all"
    customer_write = "customer.write"
    customer_archive = "customer.archive"
    customer_reveal = "customer.reveal"
    # Files of many customers' personal data in clear: a bulk reveal, managers only.
    customer_export_clear = "customer.export_clear"
    # Bulk intake: import files of customers, contacts and shipments.
    data_import = "data.import"
    # Data-quality report: completeness, invalid values, duplicates, stale records.
    data_quality = "data.quality"
    # Merge duplicate customers (and undo a merge), work the duplicate review queue.
    customer_merge = "customer.merge"
    # Service desk: read tickets, work them (take, reply, resolve), supervise (step in,
    # reassign).
    ticket_read = "ticket.read"
    ticket_write = "ticket.write"
    ticket_manage = "ticket.manage"
    # Configure the desk: categories, teams and members, routing rules, SLA policy.
    desk_configure = "desk.configure"
    # Decide compensation claims (each role up to its amount limit, tickets/claims.py).
    claim_approve = "claim.approve"
    # Analytics: dashboards, KPIs, forecasts, segment lists (company-wide figures).
    analytics_read = "analytics.read"
    # A customer's classes, segment, CLV and churn risk in the 360 view.
    analytics_portrait = "analytics.portrait"
    # Recompute the analytics and change their rules (RFM, classes, CLV horizon).
    analytics_manage = "analytics.manage"
    # Team performance scorecards and training records of service staff.
    team_performance = "team.performance"
    training_manage = "training.manage"
    shipment_read = "shipment.read"
    shipment_write = "shipment.write"
    # Satisfaction surveys: results and the customers' answers; templates, the survey
    # policy and outlet QR codes; agent entry of answers given on paper or the phone.
    surveys_read = "surveys.read"
    surveys_manage = "surveys.manage"
    surveys_enter = "surveys.enter"
    # Outbound channels: see the outbox and deliveries (supervisors, compliance); manage
    # them -- retry / cancel, SMS templates, webhooks, quiet hours (administrators).
    notify_read = "notify.read"
    notify_manage = "notify.manage"
    # Customer-care automation: see the rules, their previews and runs; write the rules,
    # switch them on and off, set the care policy (frequency cap, send time).
    care_read = "care.read"
    care_manage = "care.manage"
    # Loyalty: members, points and coupons (read); the policy, coupon templates and issue
    # to segments (manage); manual points corrections and voiding coupons (adjust);
    # spending a customer's points and redeeming coupons at the counter (redeem).
    loyalty_read = "loyalty.read"
    loyalty_manage = "loyalty.manage"
    loyalty_adjust = "loyalty.adjust"
    loyalty_redeem = "loyalty.redeem"
    # Marketing campaigns: reports, audiences and their sizes (read); build audiences,
    # plan, launch and stop campaigns, record their costs (manage).
    campaign_read = "campaign.read"
    campaign_manage = "campaign.manage"
    # Sales: one's own opportunities, leads and contracts, claiming customers from the pool
    # (pipeline); the team's pipeline and forecast, reassigning, pool rules, sales teams
    # (manage).
    sales_pipeline = "sales.pipeline"
    sales_manage = "sales.manage"
    # Personal-information protection (PIPL): register a data-subject request for a caller
    # (request); see the requests, the record of processing and the retention reports
    # (read); decide and carry out requests, anonymise, set retention policies (manage).
    privacy_request = "privacy.request"
    privacy_read = "privacy.read"
    privacy_manage = "privacy.manage"
    audit_read = "audit.read"
    user_read = "user.read"
    user_manage = "user.manage"


class Role(StrEnum):
    """Job roles of a customer-service organisation."""

    admin = "admin"
    manager = "manager"
    agent = "agent"
    sales = "sales"
    analyst = "analyst"
    auditor = "auditor"
    privacy_officer = "privacy_officer"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.manager: frozenset(
        {
            P.customer_read,
            P.customer_read_all,
            P.customer_write,
            P.customer_archive,
            P.customer_reveal,
            P.customer_export_clear,
            P.data_import,
            P.data_quality,
            P.customer_merge,
            P.ticket_read,
            P.ticket_write,
            P.ticket_manage,
            P.desk_configure,
            P.claim_approve,
            P.analytics_read,
            P.analytics_portrait,
            P.analytics_manage,
            P.team_performance,
            P.training_manage,
            P.shipment_read,
            P.shipment_write,
            P.audit_read,
            P.user_read,
            P.notify_read,
            P.surveys_read,
            P.surveys_manage,
            P.surveys_enter,
            P.care_read,
            P.care_manage,
            P.loyalty_read,
            P.loyalty_manage,
            P.loyalty_adjust,
            P.loyalty_redeem,
            P.campaign_read,
            P.campaign_manage,
            P.sales_pipeline,
            P.sales_manage,
            P.privacy_request,
            P.privacy_read,
        }
    ),
    # Customer service on the phone must read the number back to confirm identity.
    Role.agent: frozenset(
        {
            P.customer_read,
            P.customer_read_all,
            P.customer_write,
            P.customer_reveal,
            P.ticket_read,
            P.ticket_write,
            P.claim_approve,
            P.analytics_portrait,
            P.shipment_read,
            P.shipment_write,
            # Agents enter the survey answers customers give on the phone or on paper (and
            # see the answers of the customers they serve in the 360 view).
            P.surveys_enter,
            # Members' points and coupons on the phone: look them up, spend points and
            # redeem coupons for the caller (corrections are a supervisor's).
            P.loyalty_read,
            P.loyalty_redeem,
            # A caller asking for a copy of their data or its deletion: logged by the agent.
            P.privacy_request,
        }
    ),
    # Sales see basic information only: no reveal of identifiers. Account managers enter
    # the survey answers collected on visits.
    Role.sales: frozenset(
        {
            P.customer_read,
            P.customer_write,
            P.shipment_read,
            P.analytics_portrait,
            P.surveys_enter,
            # Their own customers' tier, points and coupons (member list: their book only).
            P.loyalty_read,
            # Their opportunities, leads and contracts; customers claimed from the pool.
            P.sales_pipeline,
        }
    ),
    Role.analyst: frozenset(
        {
            P.customer_read,
            P.customer_read_all,
            P.shipment_read,
            P.data_quality,
            P.analytics_read,
            P.analytics_portrait,
            P.analytics_manage,
            P.team_performance,
            P.surveys_read,
            # Audience sizes and run figures of the care rules (campaign planning).
            P.care_read,
            # The tier report and the points liability.
            P.loyalty_read,
            # Campaign reports: reach, conversions, ROI against the control group.
            P.campaign_read,
        }
    ),
    # Compliance auditors check consent evidence and what was sent to whom, and when.
    Role.auditor: frozenset(
        {
            P.customer_read,
            P.customer_read_all,
            P.shipment_read,
            P.audit_read,
            P.user_read,
            P.notify_read,
            # What care messages go to whom, under which consent.
            P.care_read,
            # Points and coupons: a ledger of value owed to customers.
            P.loyalty_read,
            # Which marketing went to whom, under which consent.
            P.campaign_read,
            # Data-subject requests, the record of processing, retention reports.
            P.privacy_read,
        }
    ),
    # The personal-information protection officer (个人信息保护负责人, PIPL art. 52):
    # carries out data-subject requests (reveal to answer access requests), sets retention,
    # reads the audit log and the consent evidence.
    Role.privacy_officer: frozenset(
        {
            P.customer_read,
            P.customer_read_all,
            P.customer_reveal,
            P.customer_write,
            P.shipment_read,
            P.audit_read,
            P.notify_read,
            P.privacy_request,
            P.privacy_read,
            P.privacy_manage,
        }
    ),
}


def role_has(role: Role | str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())


ROLE_LABELS: dict[str, str] = {
    "admin": N_("Administrator"),
    "manager": N_("Service supervisor"),
    "agent": N_("Customer service agent"),
    "sales": N_("Account manager"),
    "analyst": N_("Analyst"),
    "auditor": N_("Compliance auditor"),
    "privacy_officer": N_("Privacy officer"),
}
