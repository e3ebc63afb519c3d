"""Fixed lists of the privacy domain, each member with a label translated in the UI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class RequestKind(StrEnum):
    """What a data subject asks for (PIPL art. 44-47)."""

    access = "access"  # 查阅
    copy = "copy"  # 复制 / 可携带
    correction = "correction"  # 更正、补充
    deletion = "deletion"  # 删除 (carried out as anonymisation)
    restriction = "restriction"  # 限制处理
    objection = "objection"  # 拒绝处理 (e.g. of marketing)


class RequestStatus(StrEnum):
    """Where a request stands."""

    received = "received"
    in_progress = "in_progress"
    completed = "completed"
    rejected = "rejected"


OPEN = (RequestStatus.received.value, RequestStatus.in_progress.value)
CLOSED = (RequestStatus.completed.value, RequestStatus.rejected.value)


class RequestChannel(StrEnum):
    """How the request reached us."""

    phone = "phone"
    counter = "counter"
    email = "email"
    letter = "letter"
    web = "web"


class Verification(StrEnum):
    """How the requester proved to be the customer."""

    id_document = "id_document"  # 身份证件核验
    phone_callback = "phone_callback"  # 回拨预留电话
    sms_code = "sms_code"  # 短信验证码
    in_person = "in_person"  # 网点当面核验
    authorised_agent = "authorised_agent"  # 授权委托书


LABELS: dict[str, str] = {
    "access": N_("Access (查阅)"),
    "copy": N_("Copy / portability (复制)"),
    "correction": N_("Correction (更正)"),
    "deletion": N_("Deletion (删除)"),
    "restriction": N_("Restriction of processing"),
    "objection": N_("Objection to processing"),
    "received": N_("Received"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "phone": N_("Phone"),
    "counter": N_("Counter"),
    "email": N_("E-mail"),
    "letter": N_("Letter"),
    "web": N_("Web"),
    "id_document": N_("ID document checked"),
    "phone_callback": N_("Call-back to the number on file"),
    "sms_code": N_("SMS code to the number on file"),
    "in_person": N_("In person at an outlet"),
    "authorised_agent": N_("Authorised representative"),
}


# The request's audit trail on its page.
ACTION_LABELS: dict[str, str] = {
    "privacy.request_registered": N_("Registered"),
    "privacy.request_started": N_("Taken on"),
    "privacy.request_corrected": N_("Customer record corrected"),
    "privacy.request_exported": N_("Data exported"),
    "privacy.request_completed": N_("Completed"),
    "privacy.request_rejected": N_("Rejected"),
}
