"""Loads every domain's tables and wires the hooks between domains, once per process."""

from __future__ import annotations

from functools import cache


@cache
def load_models() -> None:
    """Import every table definition so the metadata is complete (migrations, tests)."""
    import guanxi.analytics.models
    import guanxi.audit.models
    import guanxi.campaigns.models
    import guanxi.care.models
    import guanxi.contracts.models
    import guanxi.customers.models
    import guanxi.dedupe.models
    import guanxi.imports.models
    import guanxi.interactions.models
    import guanxi.loyalty.models
    import guanxi.notify.models
    import guanxi.pool.models
    import guanxi.privacy.models
    import guanxi.privacy.retention_models
    import guanxi.sales.models
    import guanxi.security.models
    import guanxi.shipments.models
    import guanxi.surveys.models
    import guanxi.tickets.models
    import guanxi.training.models  # noqa: F401


@cache
def load() -> None:
    """Load the models and register the hooks one domain offers another."""
    load_models()
    from guanxi.customers.bulk import register_survivor_resolver
    from guanxi.customers.queries import register_exact_resolver
    from guanxi.dedupe.service import register_mover, survivors_of
    from guanxi.shipments.service import customers_by_waybill, move_to_customer, return_to_customer

    register_exact_resolver(customers_by_waybill)
    # A merge of duplicate customers takes their shipments along (and back on undo).
    register_mover("shipment", move_to_customer, return_to_customer)
    # A file naming a merged customer (by its customer number) updates the survivor.
    register_survivor_resolver(survivors_of)
    # A resolved ticket invites its customer to the satisfaction survey (SMS, or the link
    # in the resolution mail) and mails them the reply and the private link.
    from guanxi.selfservice.service import mail_resolution, register_survey
    from guanxi.surveys.triggers import invite_after_ticket, ticket_survey_open
    from guanxi.tickets.service import register_resolved_hook

    register_survey(invite=invite_after_ticket, is_open=ticket_survey_open)
    register_resolved_hook(mail_resolution)
    # Customers at high churn risk come forward on their account manager's due list.
    from guanxi.analytics.churn import high_risk_of_owner
    from guanxi.interactions.service import register_risk_source

    register_risk_source(high_risk_of_owner)
    # A withdrawn consent is announced to the webhook endpoints that subscribe to it.
    from guanxi.customers.consent import register_consent_listener
    from guanxi.notify.webhooks import consent_changed

    register_consent_listener(consent_changed)
    # A closed complaint is followed by the care rules' thanks (care/thanks.py).
    from guanxi.care.thanks import thank_after_complaint
    from guanxi.tickets.service import register_closed_hook

    register_closed_hook(thank_after_complaint)
    # A ticket of a member whose tier grants priority service is at least high ("会员优先").
    from guanxi.loyalty.service import ticket_priority_mark
    from guanxi.tickets.service import register_priority_hook

    register_priority_hook(ticket_priority_mark)
    # Care rules' audiences are the campaigns' audience filters.
    from guanxi.campaigns.audiences import care_rule_conditions
    from guanxi.care.audience import register_audience_conditions

    register_audience_conditions(care_rule_conditions)
    # A new enterprise customer and a campaign recipient's first click become sales leads.
    from guanxi.campaigns.tracking import register_response_listener
    from guanxi.customers.service import register_created_hook
    from guanxi.sales.leads import lead_from_campaign_response, lead_from_new_customer

    register_created_hook(lead_from_new_customer)
    register_response_listener(lead_from_campaign_response)
    # A merge of duplicate customers takes their contracts along (and back on undo).
    from guanxi.contracts.service import move_to_customer as move_contracts
    from guanxi.contracts.service import return_to_customer as return_contracts

    register_mover("contract", move_contracts, return_contracts)
