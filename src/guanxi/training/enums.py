"""Coded values of staff training: what a course is about, how it is given, and which plan
(monthly, quarterly, annual) it belongs to — the manuals' 培训内容, 培训方式 and 培训计划."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class TrainingTopic(StrEnum):
    """What a course teaches (the manuals' training contents)."""

    culture = "culture"  # 公司文化及价值观
    business = "business"  # 业务知识 / 物流行业知识
    communication = "communication"  # 沟通技巧
    complaints = "complaints"  # 投诉处理
    security = "security"  # 信息安全
    other = "other"


class TrainingMode(StrEnum):
    """How a course is given: online, in a room together, or practice on simulated cases."""

    online = "online"  # 线上培训
    offline = "offline"  # 线下培训
    practice = "practice"  # 实践操作 (模拟实际场景)


class PlanPeriod(StrEnum):
    """The plan a course belongs to (年度、季度、月度培训计划)."""

    month = "month"
    quarter = "quarter"
    year = "year"


LABELS: dict[str, str] = {
    "culture": N_("Company culture and values"),
    "business": N_("Business knowledge"),
    "communication": N_("Communication skills"),
    "complaints": N_("Complaint handling"),
    "security": N_("Information security"),
    "other": N_("Other"),
    "online": N_("Online"),
    "offline": N_("Classroom"),
    "practice": N_("Practice (simulated cases)"),
    "month": N_("Monthly plan"),
    "quarter": N_("Quarterly plan"),
    "year": N_("Annual plan"),
}
