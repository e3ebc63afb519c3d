"""Audience definitions without a database: the schema's shape rules, and the editor's
form read into a definition (yuan to fen, lists typed with commas) and shown back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.datastructures import ImmutableMultiDict

from guanxi.campaigns.audience_pages import _form_of, definition_data
from guanxi.campaigns.schemas import AudienceDefinition, AudienceIn


def test_an_empty_definition_is_everyone() -> None:
    empty = AudienceDefinition()
    assert empty.is_everyone()
    assert not AudienceDefinition(unowned=True).is_everyone()
    assert not AudienceDefinition(regions=["浙江省"]).is_everyone()
    assert AudienceIn(name=" 全部 ").name == "全部"


@pytest.mark.parametrize(
    ("data", "loc", "kind"),
    [
        ({"shipped_within_days": -3}, ("shipped_within_days",), "greater_than_equal"),
        ({"no_shipment_for_days": 0}, ("no_shipment_for_days",), "greater_than_equal"),
        ({"shipped_within_days": 3651}, ("shipped_within_days",), "less_than_equal"),
        ({"clv_min_fen": -1}, ("clv_min_fen",), "greater_than_equal"),
        ({"points_max": -5}, ("points_max",), "greater_than_equal"),
        ({"value_tiers": ["top"]}, ("value_tiers", 0), "literal_error"),
        ({"kinds": ["robot"]}, ("kinds", 0), "enum"),
        ({"consents": ["spam"]}, ("consents", 0), "enum"),
        ({"owner_ids": [0]}, ("owner_ids", 0), "greater_than_equal"),
        ({"colour": "red"}, ("colour",), "extra_forbidden"),
    ],
)
def test_shape_errors_name_their_field(
    data: dict[str, object], loc: tuple[object, ...], kind: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceDefinition.model_validate(data)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(loc, kind)]


def test_the_editor_form_becomes_a_definition() -> None:
    form = ImmutableMultiDict(
        [
            ("kinds", "individual"),
            ("kinds", "enterprise"),
            ("regions", "浙江省，江苏省、上海市"),
            ("tags_any", "VIP, 月结客户"),
            ("tags_none", ""),
            ("clv_min_yuan", "¥1,234.5"),
            ("clv_max_yuan", ""),
            ("shipped_within_days", "30"),
            ("owner_ids", "7"),
            ("unowned", "1"),
            ("name", "ignored here"),
        ]
    )
    data, errors = definition_data(form)
    assert errors == []
    definition = AudienceDefinition.model_validate(data)
    assert definition == AudienceDefinition(
        kinds=["individual", "enterprise"],
        regions=["浙江省", "江苏省", "上海市"],
        tags_any=["VIP", "月结客户"],
        clv_min_fen=123_450,
        shipped_within_days=30,
        owner_ids=[7],
        unowned=True,
    )
    shown = _form_of(definition)
    assert (shown["clv_min_yuan"], shown["clv_max_yuan"]) == ("1234.5", "")
    assert _form_of(AudienceDefinition(clv_max_fen=100_000))["clv_max_yuan"] == "1000"
    assert _form_of(AudienceDefinition(clv_max_fen=7))["clv_max_yuan"] == "0.07"


def test_an_amount_that_is_not_yuan_is_named() -> None:
    data, errors = definition_data(ImmutableMultiDict([("clv_max_yuan", "十元")]))
    assert [(e.loc, e.code) for e in errors] == [(("clv_max_yuan",), "amount_invalid")]
    assert "clv_max_fen" not in data
