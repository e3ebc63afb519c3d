"""Codes of the data-quality report's figures; labels are translated in the UI and the CLI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class Scope(StrEnum):
    """Which active customers a completeness figure is measured against (its denominator)."""

    all = "all"
    individual = "individual"
    # Enterprises and government / public bodies: the kinds that have a credit code.
    organisation = "organisation"
    enterprise = "enterprise"


class CompletenessField(StrEnum):
    """A fact whose presence the report measures."""

    name = "name"
    kind = "kind"
    phone = "phone"
    email = "email"
    id_number = "id_number"
    credit_code = "credit_code"
    address = "address"
    address_district = "address_district"
    region = "region"
    industry = "industry"
    owner = "owner"
    birthday = "birthday"
    source = "source"
    contacts = "contacts"


class InvalidRule(StrEnum):
    """A kind of invalid or suspicious value."""

    address_no_province = "address_no_province"
    address_unparsed = "address_unparsed"
    landline_only = "landline_only"
    junk_name = "junk_name"
    birthday_future = "birthday_future"
    birthday_before_1900 = "birthday_before_1900"
    kind_unknown = "kind_unknown"
    source_unknown = "source_unknown"
    lifecycle_unknown = "lifecycle_unknown"
    credit_rating_unknown = "credit_rating_unknown"


class DuplicateRule(StrEnum):
    """A shared key that makes customers suspected duplicates of each other."""

    phone = "phone"
    email = "email"
    id_number = "id_number"
    credit_code = "credit_code"
    name_district = "name_district"


SCOPE_LABELS: dict[str, str] = {
    "all": N_("All active customers"),
    "individual": N_("Individuals"),
    "organisation": N_("Enterprises and public bodies"),
    "enterprise": N_("Enterprises"),
}

FIELD_LABELS: dict[str, str] = {
    "name": N_("Name"),
    "kind": N_("Kind"),
    "phone": N_("Phone (at least one)"),
    "email": N_("E-mail"),
    "id_number": N_("Resident ID number"),
    "credit_code": N_("Unified social credit code"),
    "address": N_("Address (at least one)"),
    "address_district": N_("Address with district"),
    "region": N_("Region"),
    "industry": N_("Industry"),
    "owner": N_("Account manager"),
    "birthday": N_("Birthday"),
    "source": N_("Source (not “Other”)"),
    "contacts": N_("Contact person (at least one)"),
}

INVALID_LABELS: dict[str, str] = {
    "address_no_province": N_("Address without province"),
    "address_unparsed": N_("Address without division code (not parsed)"),
    "landline_only": N_("Individual with landline only (no mobile)"),
    "junk_name": N_("Junk name (digits only, one character, test / 测试 / xxx, 未知 …)"),
    "birthday_future": N_("Birthday in the future"),
    "birthday_before_1900": N_("Birthday before 1900"),
    "kind_unknown": N_("Kind not in the list"),
    "source_unknown": N_("Source not in the list"),
    "lifecycle_unknown": N_("Lifecycle stage not in the list"),
    "credit_rating_unknown": N_("Credit rating not in the list"),
}

DUPLICATE_LABELS: dict[str, str] = {
    "phone": N_("Same phone number"),
    "email": N_("Same e-mail address"),
    "id_number": N_("Same resident ID number"),
    "credit_code": N_("Same unified social credit code"),
    "name_district": N_("Same name in the same district"),
}
