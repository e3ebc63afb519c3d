"""Coded values of sales: the stages of an opportunity and where leads come from; labels are
translated in the UI."""

from __future__ import annotations

from enum import StrEnum

from guanxi.core.i18n import N_


class Stage(StrEnum):
    """Where an opportunity (销售机会) stands; won and lost are closed."""

    lead = "lead"  # 线索
    qualified = "qualified"  # 已确认需求
    proposal = "proposal"  # 方案报价
    negotiation = "negotiation"  # 商务谈判
    won = "won"  # 赢单
    lost = "lost"  # 输单


class LeadSource(StrEnum):
    """How the opportunity came in."""

    web_form = "web_form"
    campaign = "campaign"
    new_enterprise = "new_enterprise"
    manual = "manual"


OPEN_STAGES = (Stage.lead, Stage.qualified, Stage.proposal, Stage.negotiation)
CLOSED_STAGES = (Stage.won, Stage.lost)

# The chance of winning assumed at each stage (percent) unless the owner sets their own;
# closed stages are certain either way.
DEFAULT_PROBABILITY: dict[Stage, int] = {
    Stage.lead: 10,
    Stage.qualified: 25,
    Stage.proposal: 50,
    Stage.negotiation: 75,
    Stage.won: 100,
    Stage.lost: 0,
}

LABELS: dict[str, str] = {
    "lead": N_("Sales lead"),
    "qualified": N_("Qualified"),
    "proposal": N_("Proposal"),
    "negotiation": N_("Negotiation"),
    "won": N_("Closed won"),
    "lost": N_("Closed lost"),
    "web_form": N_("Web form"),
    "campaign": N_("Campaign"),
    "new_enterprise": N_("New enterprise customer"),
    "manual": N_("Entered by hand"),
}
