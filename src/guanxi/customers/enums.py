"""Fixed lists of the customer domain; labels are translated in the UI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class CustomerKind(StrEnum):
    """Individual (个人客户), enterprise (企业客户) or government / public body."""

    individual = "individual"
    enterprise = "enterprise"
    government = "government"


class SourceChannel(StrEnum):
    """Where the customer came from (获客渠道)."""

    website = "website"
    app = "app"
    wechat = "wechat"
    outlet = "outlet"
    pickup_point = "pickup_point"
    ecommerce = "ecommerce"
    referral = "referral"
    cold_outreach = "cold_outreach"
    third_party = "third_party"
    hotline = "hotline"
    import_file = "import"
    other = "other"


class LifecycleStage(StrEnum):
    """Where the relationship stands."""

    prospect = "prospect"
    new = "new"
    active = "active"
    dormant = "dormant"
    churned = "churned"


class CreditRating(StrEnum):
    """Credit rating used for monthly-settlement (月结) decisions."""

    aaa = "AAA"
    aa = "AA"
    a = "A"
    b = "B"
    c = "C"


class CustomerStatus(StrEnum):
    """Archived customers are hidden from lists but kept with their history.

    A merged customer is a duplicate folded into another record (the survivor): kept, with
    its history, so the merge can be undone.
    """

    active = "active"
    archived = "archived"
    merged = "merged"


class PhoneKind(StrEnum):
    """Mobile or landline, derived from the number."""

    mobile = "mobile"
    landline = "landline"
    other = "other"


LABELS: dict[str, str] = {
    "individual": N_("Individual"),
    "enterprise": N_("Enterprise"),
    "government": N_("Government / public body"),
    "website": N_("Website"),
    "app": N_("App"),
    "wechat": N_("WeChat"),
    "outlet": N_("Outlet"),
    "pickup_point": N_("Pickup point"),
    "ecommerce": N_("E-commerce platform"),
    "referral": N_("Referral"),
    "cold_outreach": N_("Cold outreach"),
    "third_party": N_("Third party"),
    "hotline": N_("Hotline"),
    "import": N_("File import"),
    "other": N_("Other"),
    "prospect": N_("Prospect"),
    "new": N_("New"),
    "active": N_("Active"),
    "dormant": N_("Dormant"),
    "churned": N_("Churned"),
    "archived": N_("Archived"),
    "merged": N_("Merged"),
    "mobile": N_("Mobile"),
    "landline": N_("Landline"),
    # consent purposes (customers/consent.py)
    "marketing_sms": N_("Marketing by SMS"),
    "marketing_email": N_("Marketing by e-mail"),
    "survey": N_("Satisfaction surveys"),
    "cross_border": N_("Transfer abroad"),
}


FIELD_LABELS: dict[str, str] = {
    "kind": N_("Kind"),
    "name": N_("Name"),
    "external_id": N_("Customer number"),
    "phones": N_("Phones"),
    "email": N_("E-mail"),
    "id_number": N_("Resident ID number"),
    "credit_code": N_("Unified social credit code"),
    "addresses": N_("Addresses"),
    "contacts": N_("Contact persons"),
    "source": N_("Source"),
    "industry": N_("Industry"),
    "region": N_("Region"),
    "owner_id": N_("Account manager"),
    "tags": N_("Tags"),
    "birthday": N_("Birthday"),
    "lifecycle_stage": N_("Lifecycle stage"),
    "credit_rating": N_("Credit rating"),
    "notes": N_("Notes"),
    "status": N_("Status"),
    "field": N_("Field"),
    "count": N_("Count"),
    "merged_id": N_("Merged customer"),
    "survivor_id": N_("Merged into"),
    "merge_id": N_("Merge"),
    "moved": N_("Moved records"),
    "kept": N_("Kept (edited since)"),
    "waybill_no": N_("Waybill number"),
    "fee_fen": N_("Fee (fen)"),
    "username": N_("User name"),
    "role": N_("Role"),
    "language": N_("Language"),
    "purpose": N_("Purpose"),
    "granted": N_("Granted"),
    # Why the owner changed (customers.service.assign_owner: claimed, returned_..., ...).
    "reason": N_("Reason"),
    # A data subject's copy (privacy): which request it answered, in which file format.
    "request_id": N_("Request"),
    "format": N_("File format"),
}
# Fields whose values are codes of a fixed list (shown translated in the history).
CODED_FIELDS = {"kind", "source", "lifecycle_stage", "status", "role", "field", "purpose", "reason"}
