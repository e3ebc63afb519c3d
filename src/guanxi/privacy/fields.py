"""Purposes declared per field (个人信息处理目的): for every column that holds personal
information, in every domain, what kind of information it is, whether it is sensitive
(PIPL art. 28), what it is processed for, on which legal basis (PIPL art. 13) and which
retention rule ends it.

The declarations feed the record of processing (:mod:`guanxi.privacy.processing`).
A unit test walks the whole schema: a column whose name or type looks personal must be
declared here or listed in :data:`NOT_PERSONAL` with the reason it is not, so a new column
cannot slip in undeclared.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from guanxi.core.i18n import N_


class DataCategory(StrEnum):
    """What kind of personal information a field holds."""

    identity = "identity"  # 身份信息
    contact = "contact"  # 联系方式
    address = "address"  # 地址
    transaction = "transaction"  # 交易记录
    communication = "communication"  # 通信内容
    location = "location"  # 行踪轨迹
    profile = "profile"  # 用户画像 (derived)
    account = "account"  # 员工账号
    technical = "technical"  # 网络标识


class Purpose(StrEnum):
    """What a field is processed for."""

    delivery = "delivery"
    real_name = "real_name"
    service = "service"
    claims = "claims"
    relationship = "relationship"
    marketing = "marketing"
    surveys = "surveys"
    analytics = "analytics"
    loyalty = "loyalty"
    sales = "sales"
    data_quality = "data_quality"
    security = "security"
    staff = "staff"
    rights = "rights"


class Basis(StrEnum):
    """The legal basis of PIPL art. 13 a field's processing rests on."""

    contract = "contract"  # 为订立、履行个人作为一方当事人的合同所必需
    legal_obligation = "legal_obligation"  # 为履行法定职责或者法定义务所必需
    consent = "consent"  # 取得个人的同意
    hr = "hr"  # 按照依法制定的劳动规章制度实施人力资源管理所必需


# Retention rules that are not a purge category of their own (the purge categories are
# guanxi.privacy.retention.CATEGORIES; a unit test checks every key is one or the other).
LIFETIME_RULES: dict[str, str] = {
    "consent_evidence": N_("Kept as the evidence of consents given and withdrawn"),
    "staff_account": N_("While the user account exists"),
    "audit_log": N_("Kept: the audit log is append-only and hash-chained"),
    "contract_term": N_("For the contract's term and the limitation period after it"),
    "privacy_requests": N_("Kept as evidence of how the request was answered"),
}

LABELS: dict[str, str] = {
    "identity": N_("Identity"),
    "contact": N_("Contact details"),
    "address": N_("Address"),
    "transaction": N_("Transactions"),
    "communication": N_("Communication content"),
    "location": N_("Location track"),
    "profile": N_("Derived profile"),
    "account": N_("Staff account"),
    "technical": N_("Network identifier"),
    "delivery": N_("Delivering shipments"),
    "real_name": N_("Real-name shipping (实名收寄)"),
    "service": N_("Customer service and complaints"),
    "claims": N_("Compensation claims"),
    "relationship": N_("Customer relationship management"),
    "marketing": N_("Marketing"),
    "surveys": N_("Satisfaction surveys"),
    "analytics": N_("Statistics and analysis"),
    "loyalty": N_("Membership and points"),
    "sales": N_("Sales and contracts"),
    "data_quality": N_("Data quality (duplicates)"),
    "security": N_("Account security and access audit"),
    "staff": N_("Staff management"),
    "rights": N_("Data-subject requests"),
    "contract": N_("Necessary for a contract with the person"),
    "legal_obligation": N_("Legal obligation"),
    "consent": N_("Consent"),
    "hr": N_("Human-resources management"),
}


@dataclass(frozen=True)
class FieldPurpose:
    """The declaration of one column holding personal information."""

    table: str
    column: str
    category: DataCategory
    sensitive: bool
    purposes: tuple[Purpose, ...]
    basis: Basis
    retention: str


C, P, B = DataCategory, Purpose, Basis


def _declare(
    table: str,
    columns: str,
    category: DataCategory,
    purposes: tuple[Purpose, ...],
    basis: Basis,
    retention: str,
    *,
    sensitive: bool = False,
) -> list[FieldPurpose]:
    return [
        FieldPurpose(table, column, category, sensitive, purposes, basis, retention)
        for column in columns.split()
    ]


_CUSTOMER = (P.delivery, P.service, P.relationship)
_AC = "archived_customers"

FIELDS: list[FieldPurpose] = [
    # customers: the data subject's own record.
    *_declare("customer", "name external_id", C.identity, _CUSTOMER, B.contract, _AC),
    # Pieces of the name, for search: removed with the name.
    *_declare("customer_search_token", "token", C.identity, (P.service,), B.contract, _AC),
    # Resident ID numbers are sensitive (PIPL art. 28) and collected for real-name shipping.
    *_declare(
        "customer",
        "id_number_enc id_number_bidx",
        C.identity,
        (P.real_name,),
        B.legal_obligation,
        _AC,
        sensitive=True,
    ),
    *_declare(
        "customer",
        "credit_code_enc credit_code_bidx",
        C.identity,
        (P.real_name, P.sales),
        B.legal_obligation,
        _AC,
    ),
    *_declare("customer", "email_enc email_bidx", C.contact, _CUSTOMER, B.contract, _AC),
    *_declare(
        "customer",
        "birthday",
        C.identity,
        (P.loyalty, P.marketing),
        B.consent,
        _AC,
    ),
    *_declare("customer", "notes", C.communication, (P.relationship,), B.contract, _AC),
    *_declare(
        "customer_phone",
        "phone_enc phone_bidx last4",
        C.contact,
        _CUSTOMER,
        B.contract,
        _AC,
    ),
    *_declare(
        "customer_address",
        "label province city district detail division_code",
        C.address,
        (P.delivery,),
        B.contract,
        _AC,
    ),
    *_declare(
        "contact_person",
        "name title phone_enc phone_bidx email_enc",
        C.contact,
        (P.relationship, P.service, P.sales),
        B.contract,
        _AC,
    ),
    *_declare(
        "customer_consent_event",
        "actor_name",
        C.account,
        (P.security,),
        B.legal_obligation,
        "consent_evidence",
    ),
    # shipments: the sender is the customer; the receiver's name and phone are on the
    # waybill (printed masked, 隐私面单); the route is needed to deliver.
    *_declare(
        "shipment",
        "receiver_name receiver_phone_enc receiver_phone_bidx",
        C.contact,
        (P.delivery, P.real_name),
        B.contract,
        _AC,
    ),
    *_declare(
        "shipment",
        "origin_province origin_city dest_province dest_city dest_district destination",
        C.address,
        (P.delivery, P.analytics),
        B.contract,
        _AC,
    ),
    *_declare(
        "shipment",
        "product_name departure_date return_date party_size insured_value_fen cod_amount_fen",
        C.transaction,
        (P.delivery, P.claims),
        B.contract,
        _AC,
    ),
    # Where a parcel was scanned traces the receiver's whereabouts: sensitive (行踪轨迹).
    *_declare(
        "shipment_event",
        "location note",
        C.location,
        (P.delivery, P.service),
        B.contract,
        _AC,
        sensitive=True,
    ),
    # tickets and claims: what the customer wrote and what was said.
    *_declare(
        "ticket",
        "subject description",
        C.communication,
        (P.service,),
        B.contract,
        _AC,
    ),
    *_declare("ticket", "contact_email_enc", C.contact, (P.service,), B.contract, _AC),
    *_declare("ticket_event", "note", C.communication, (P.service,), B.contract, _AC),
    *_declare(
        "claim",
        "evidence decision_note declared_value_fen",
        C.transaction,
        (P.claims,),
        B.contract,
        _AC,
    ),
    *_declare(
        "attachment",
        "filename",
        C.communication,
        (P.service, P.claims),
        B.contract,
        "ticket_attachments",
    ),
    # interactions: the follow-up log.
    *_declare(
        "interaction",
        "participants summary",
        C.communication,
        (P.relationship, P.service),
        B.contract,
        _AC,
    ),
    *_declare("action_item", "title", C.communication, (P.relationship,), B.contract, _AC),
    # surveys: free-text answers and the phone of an answer taken by phone.
    *_declare(
        "survey_response",
        "reason phone_enc phone_bidx",
        C.communication,
        (P.surveys,),
        B.consent,
        _AC,
    ),
    *_declare(
        "survey_answer",
        "value_text",
        C.communication,
        (P.surveys,),
        B.consent,
        _AC,
    ),
    # outbox: who was written to, and what.
    *_declare(
        "outbox_message",
        "to_enc",
        C.contact,
        (P.service, P.marketing, P.surveys),
        B.contract,
        "outbox_contents",
    ),
    *_declare(
        "outbox_message",
        "subject body params",
        C.communication,
        (P.service, P.marketing, P.surveys),
        B.contract,
        "outbox_contents",
    ),
    # sales: contacts of a lead before it is a customer; notes.
    *_declare(
        "opportunity",
        "contact_name_enc contact_company_enc contact_phone_enc contact_phone_bidx "
        "contact_email_enc contact_email_bidx",
        C.contact,
        (P.sales,),
        B.contract,
        _AC,
    ),
    *_declare("opportunity", "notes", C.communication, (P.sales,), B.contract, _AC),
    *_declare("contract", "notes", C.communication, (P.sales,), B.contract, "contract_term"),
    *_declare(
        "contract_amendment",
        "changes reason",
        C.transaction,
        (P.sales,),
        B.contract,
        "contract_term",
    ),
    *_declare("contract_amendment", "actor_label", C.account, (P.security,), B.hr, "contract_term"),
    *_declare(
        "contract_document", "filename", C.transaction, (P.sales,), B.contract, "contract_term"
    ),
    *_declare("pool_event", "note", C.communication, (P.sales,), B.contract, _AC),
    # loyalty: reasons staff type for corrections and voids.
    *_declare("loyalty_points", "reason", C.transaction, (P.loyalty,), B.contract, _AC),
    *_declare("coupon", "void_reason", C.transaction, (P.loyalty,), B.contract, _AC),
    # analytics: the churn model's reasons are a profile of the customer.
    *_declare(
        "analytics_customer_churn",
        "reasons",
        C.profile,
        (P.analytics, P.relationship),
        B.contract,
        "analytics_runs",
    ),
    # imports: a rejected row keeps the value that was refused (masked when personal).
    *_declare(
        "import_row_error", "value", C.identity, (P.data_quality,), B.contract, "import_files"
    ),
    # privacy: the requests themselves.
    *_declare(
        "privacy_request",
        "details resolution corrected_fields",
        C.communication,
        (P.rights,),
        B.legal_obligation,
        "privacy_requests",
    ),
    *_declare(
        "privacy_anonymisation",
        "actor_name reason",
        C.account,
        (P.rights,),
        B.legal_obligation,
        "privacy_requests",
    ),
    # staff: the users of Guanxi are people too.
    *_declare(
        "app_user",
        "username display_name email",
        C.account,
        (P.staff, P.security),
        B.hr,
        "staff_account",
    ),
    *_declare("app_user", "totp_secret", C.account, (P.security,), B.hr, "staff_account"),
    *_declare(
        "user_token",
        "client_address user_agent",
        C.technical,
        (P.security,),
        B.hr,
        "sessions_tokens",
    ),
    *_declare("login_failure", "address_hash", C.technical, (P.security,), B.hr, "login_failures"),
    *_declare(
        "notification",
        "subject body",
        C.communication,
        (P.staff, P.relationship),
        B.hr,
        "staff_account",
    ),
    *_declare("training_course", "notes", C.account, (P.staff,), B.hr, "staff_account"),
    *_declare("training_record", "note", C.account, (P.staff,), B.hr, "staff_account"),
    # who did what: the audit trail and the purge runs name the staff member.
    *_declare("audit_log", "actor_name", C.account, (P.security,), B.legal_obligation, "audit_log"),
    *_declare(
        "retention_run", "actor_name", C.account, (P.security,), B.legal_obligation, "audit_log"
    ),
]

# Columns whose name or type looks personal but are not, each with the reason.
_CONFIG = "configuration written by staff, not about a person"
_TECH = "technical text (errors, figures), no personal information"
_CODE = "a code from a fixed list"
NOT_PERSONAL: dict[tuple[str, str], str] = {
    ("analytics_run", "error"): _TECH,
    ("analytics_step", "error"): _TECH,
    ("audit_subject_key", "audit_subject_key_enc"): "a random key sealing the audit log's "
    "texts about a customer (deleted on anonymisation), not information about the person",
    ("analytics_step", "metrics"): _TECH,
    ("analytics_model", "metrics"): _TECH,
    ("analytics_model", "name"): _CODE,
    ("analytics_alert", "evidence"): "ticket and shipment ids only",
    ("loyalty_accrual_state", "name"): _CODE,
    ("import_job", "file_name"): "the name of a file chosen by staff",
    ("import_job", "message"): _TECH,
    ("import_row_error", "message"): "the rule a value broke, without the value",
    ("user_token", "name"): "the name a user gave an API token",
    ("user_token", "csrf_token"): "a random value of a session",
    ("analytics_kpi", "value"): "a figure over many customers",
    ("webhook_endpoint", "secret_enc"): "a signing secret of a system, not a person's",
    ("claim", "reason"): _CODE,
    ("loyalty_tier_change", "reason"): _CODE,
    ("opportunity", "lost_reason"): _CODE,
    ("opportunity", "title"): "the name of a deal",
    ("opportunity_stage_change", "reason"): _CODE,
    ("contract", "title"): "the name of an agreement with an enterprise",
    ("campaign", "goal"): _CONFIG,
    ("survey_outlet", "name"): "a branch or outlet",
    ("training_course", "title"): "the name of a course",
    ("user_scope", "value"): "a region name or team id a staff account is limited to",
}
# Tables holding configuration only (templates, rules, settings, teams).
CONFIG_TABLES: frozenset[str] = frozenset(
    {
        "cadence_rule",
        "coupon_template",
        "sales_lost_reason",
        "sms_template",
        "tag",
        "team",
        "ticket_category",
        "analytics_setting",
        "campaign_audience",
        "campaign_setting",
        "campaign_variant",
        "campaign_cost",
        "campaign",
        "care_rule",
        "care_setting",
        "contract_setting",
        "desk_setting",
        "loyalty_setting",
        "outbox_setting",
        "pool_setting",
        "privacy_setting",
        "routing_rule",
        "sales_team",
        "survey_setting",
        "survey_template",
        "survey_question",
        "survey_option",
        "webhook_endpoint",
    }
)


def declared() -> dict[tuple[str, str], FieldPurpose]:
    """Every declaration by (table, column)."""
    return {(f.table, f.column): f for f in FIELDS}
