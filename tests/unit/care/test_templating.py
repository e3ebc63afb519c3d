"""Care templates: the sandbox, the declared variables and the checks made on save."""

from __future__ import annotations

import pytest

from guanxi.care.enums import RuleKind
from guanxi.care.templating import SMS_MAX, TemplateField, check, render, sample
from guanxi.core.errors import FieldError
from guanxi.core.web import translate_field_error


def one(kind: RuleKind, source: str, field: str = "body_zh", limit: int = SMS_MAX) -> FieldError:
    errors = check(kind, [TemplateField(field, source, limit, "zh_CN")])
    assert len(errors) == 1, errors
    return errors[0]


def test_a_sound_template_passes_and_renders() -> None:
    source = "{{ name }}，{{ company }}祝您{{ festival }}快乐！"
    assert check(RuleKind.festival, [TemplateField("body_zh", source, SMS_MAX, "zh_CN")]) == []
    assert sample(source, "zh_CN") == "张三，关系速递祝您中秋节快乐！"
    values = {"name": "李四", "company": "顺达", "festival": "春节", "tier": ""}
    assert render(source, values) == "李四，顺达祝您春节快乐！"


def test_conditions_on_declared_variables() -> None:
    source = "生日快乐{% if coupon_code %}，券码{{ coupon_code }}{% endif %}"
    assert check(RuleKind.birthday, [TemplateField("body_zh", source, SMS_MAX, "zh_CN")]) == []
    base = {"name": "", "company": "", "tier": "", "coupon_name": ""}
    assert render(source, {**base, "coupon_code": ""}) == "生日快乐"
    assert render(source, {**base, "coupon_code": "AB12"}) == "生日快乐，券码AB12"


def test_an_unknown_variable_is_named_with_the_ones_available() -> None:
    error = one(RuleKind.birthday, "{{ name }} {{ festival }}")
    assert error.loc == ("body_zh",)
    assert error.code == "care_template_variable"
    assert error.params == {
        "variable": "festival",
        "available": "name, company, tier, coupon_code, coupon_name",
    }
    assert translate_field_error(error, "en") == (
        "Unknown variable festival; you can use: name, company, tier, coupon_code, coupon_name"
    )
    assert translate_field_error(error, "zh_CN") == (
        "未知变量 festival；可用变量：name, company, tier, coupon_code, coupon_name"
    )


def test_a_syntax_error_names_the_field_and_line() -> None:
    error = one(RuleKind.festival, "第一行\n{{ name ", field="subject_en")
    assert error.loc == ("subject_en",)
    assert error.code == "care_template_syntax"
    assert error.params["line"] == 2
    assert translate_field_error(error, "zh_CN").startswith("模板无法解析（第 2 行）：")


def test_an_unknown_filter_is_a_syntax_error() -> None:
    assert one(RuleKind.festival, "{{ name|shout }}").code == "care_template_syntax"


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "{% macro m() %}x{% endmacro %}{{ m() }}",
        "{% filter upper %}{{ name }}{% endfilter %}",
    ],
)
def test_loops_macros_and_blocks_are_refused(source: str) -> None:
    error = one(RuleKind.festival, source)
    assert error.code == "care_template_syntax"
    assert "only variables, filters and if-blocks" in error.params["detail"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ name * 100000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ name.__class__.__mro__ }}",
        "{{ 1 / 0 }}",
        "{{ name.no_such_attribute }}",
    ],
)
def test_what_fails_with_sample_values_is_refused(source: str) -> None:
    assert one(RuleKind.festival, source).code == "care_template_render"


def test_a_rendered_message_over_the_limit_is_refused() -> None:
    error = one(RuleKind.festival, "{{ name * 300 }}")
    assert error.code == "care_template_too_long"
    assert error.params == {"limit": SMS_MAX}


def test_per_kind_variables() -> None:
    assert check(RuleKind.anniversary, [TemplateField("b", "{{ years }}", 10, "en")]) == []
    assert one(RuleKind.complaint_thanks, "{{ coupon_code }}", field="b").code == (
        "care_template_variable"
    )
