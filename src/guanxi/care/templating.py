"""Care message templates: Jinja2 text in a sandbox with a declared set of variables.

Administrators write the zh / en messages of a rule with placeholders such as
``{{ name }}`` and ``{% if coupon_code %}…{% endif %}``. A template is checked when the
rule is saved — syntax, only the variables its rule kind declares, a trial render with
sample values, the rendered length — and a refusal names the field and the problem.

The sandbox (``ImmutableSandboxedEnvironment``) keeps templates away from Python
internals; on top of it, loops, macros and blocks are refused (a greeting needs none, and
nested loops could make one render run for hours) and so are string products that would
build huge texts.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

import guanxi.care.messages  # noqa: F401 - registers the error texts
from guanxi.care.enums import RuleKind
from guanxi.core.errors import FieldError
from guanxi.core.i18n import N_

# Every kind knows the customer, the company and the customer's loyalty tier.
COMMON = ("name", "company", "tier")
VARIABLES: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.birthday: (*COMMON, "coupon_code", "coupon_name"),
    RuleKind.festival: (*COMMON, "festival"),
    RuleKind.anniversary: (*COMMON, "years", "coupon_code", "coupon_name"),
    RuleKind.winback: (*COMMON, "coupon_code", "coupon_name"),
    RuleKind.complaint_thanks: COMMON,
}
# What each variable holds (the editor's help).
DESCRIPTIONS: dict[str, str] = {
    "name": N_("The customer's name"),
    "company": N_("Our company's name (care policy)"),
    "tier": N_("The customer's membership tier, empty for non-members"),
    "festival": N_("The festival's name in the customer's language"),
    "years": N_("Years of membership"),
    "coupon_code": N_("The code of the coupon issued with the message"),
    "coupon_name": N_("The coupon's name"),
}
SAMPLES: dict[str, dict[str, str]] = {
    "zh_CN": {
        "name": "张三",
        "company": "关系速递",
        "tier": "金卡会员",
        "festival": "中秋节",
        "years": "3",
        "coupon_code": "GX8K2M7Q",
        "coupon_name": "生日5元寄件券",
    },
    "en": {
        "name": "Zhang San",
        "company": "Guanxi Express",
        "tier": "Gold",
        "festival": "Mid-Autumn Festival",
        "years": "3",
        "coupon_code": "GX8K2M7Q",
        "coupon_name": "5-yuan birthday coupon",
    },
}
SOURCE_MAX = 4000
# Rendered length limits: an SMS of up to seven segments; a plain-text e-mail.
SMS_MAX = 480
EMAIL_MAX = 10_000
SUBJECT_MAX = 200

_REFUSED_NODES = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.Block)
_PRODUCT_MAX = 1000


# The largest value a template may build: a text of 100,000 characters (ten times the
# longest message) or a number of 4,096 bits. Each repeat count alone was bounded, not the
# result: "{{ 'ab' * 1000 * 1000 * 1000 }}" built 2 GB and "{{ (((10**60)**60)**60)**60 }}"
# computed for minutes, both while a manager saved a rule.
_VALUE_MAX = 100_000
_BITS_MAX = 4096
# Padding a text to a width builds it as wide as asked: the filters and str methods that
# do so are not needed for a greeting and are refused ("{{ name|center(10**9) }}").
_REFUSED_FILTERS = ("center", "indent", "wordwrap", "format")
_REFUSED_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"}
)


def _too_big(value: Any) -> bool:
    if isinstance(value, str | list | tuple):
        return len(value) > _VALUE_MAX
    if isinstance(value, int):
        return value.bit_length() > _BITS_MAX
    return False


class CareSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with ``*`` and ``**`` checked: no text repeated a million times, no
    number of a million digits."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        """Refuse products and powers whose result would be large, before computing it."""
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if n > _PRODUCT_MAX or len(seq) * n > _VALUE_MAX:
                        raise SecurityError("repetition too large")
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > _BITS_MAX:
                    raise SecurityError("product too large")
            return operator.mul(left, right)
        if isinstance(right, int) and right > 64:
            raise SecurityError("power too large")
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() * max(right, 0) > _BITS_MAX:
                raise SecurityError("power too large")
        return operator.pow(left, right)

    def wrap_str_format(self, value: Any) -> None:
        """No sandboxed ``str.format``: the sandbox wraps it before asking
        :meth:`is_safe_attribute`, and "{:>1000000000}" pads as wide as asked."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """The sandbox's rule, and no padding methods on texts."""
        if isinstance(obj, str) and attr in _REFUSED_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


@lru_cache(maxsize=1)
def environment() -> CareSandbox:
    """The one sandbox of care templates (plain text: no HTML escaping)."""
    env = CareSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    for name in _REFUSED_FILTERS:
        # An unknown filter is a syntax error the check reports with the field.
        del env.filters[name]
    return env


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return environment().from_string(source)


@lru_cache(maxsize=512)
def plain_parts(source: str) -> tuple[tuple[bool, str], ...] | None:
    """A template that is only text and ``{{ variable }}`` as (is variable, text) parts;
    None for anything else (conditions, filters). Rendering it is a join — the daily run
    renders a million of them — and gives exactly what Jinja gives."""
    tree = environment().parse(source)
    parts: list[tuple[bool, str]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for item in node.nodes:
            if isinstance(item, nodes.TemplateData):
                parts.append((False, item.data))
            elif isinstance(item, nodes.Name) and item.ctx == "load":
                parts.append((True, item.name))
            else:
                return None
    return tuple(parts)


def render(source: str, values: Mapping[str, Any]) -> str:
    """Render a template that passed :func:`check` with its variables' values."""
    parts = plain_parts(source)
    if parts is not None:
        return "".join(str(values[text]) if var else text for var, text in parts).strip()
    return str(_compiled(source).render(values)).strip()


@dataclass(frozen=True)
class TemplateField:
    """One template of a rule to check: the field that holds it and its limit."""

    field: str
    source: str
    limit: int
    lang: str


def check(kind: RuleKind, fields: list[TemplateField]) -> list[FieldError]:
    """The problems of a rule's templates, one per field at most (empty when all pass)."""
    errors: list[FieldError] = []
    for f in fields:
        error = _check_one(kind, f)
        if error is not None:
            errors.append(error)
    return errors


def _check_one(kind: RuleKind, f: TemplateField) -> FieldError | None:
    loc = (f.field,)
    if len(f.source) > SOURCE_MAX:
        return FieldError(
            loc,
            "string_too_long",
            f"Too long (at most {SOURCE_MAX} characters)",
            {"max_length": SOURCE_MAX},
        )
    env = environment()
    try:
        tree = env.parse(f.source)
        _compiled(f.source)  # unknown filters and tests are found when compiling
    except TemplateSyntaxError as exc:
        return FieldError(
            loc,
            "care_template_syntax",
            f"The template cannot be read (line {exc.lineno}): {exc.message}",
            {"line": exc.lineno, "detail": exc.message or ""},
        )
    allowed = VARIABLES[kind]
    unknown = sorted(meta.find_undeclared_variables(tree) - set(allowed))
    if unknown:
        return FieldError(
            loc,
            "care_template_variable",
            f"Unknown variable {unknown[0]}; you can use: {', '.join(allowed)}",
            {"variable": unknown[0], "available": ", ".join(allowed)},
        )
    refused = next(iter(tree.find_all(_REFUSED_NODES)), None)
    if refused is not None:
        detail = "only variables, filters and if-blocks are allowed"
        return FieldError(
            loc,
            "care_template_syntax",
            f"The template cannot be read (line {refused.lineno}): {detail}",
            {"line": refused.lineno, "detail": detail},
        )
    try:
        text = render(f.source, SAMPLES.get(f.lang, SAMPLES["zh_CN"]))
    # Jinja's own filters assert their arguments ("{{ name|truncate(0) }}" raised an
    # AssertionError through the API as a 500): those are template errors too.
    except (
        TemplateError,
        SecurityError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        AssertionError,
    ) as exc:
        detail = str(exc)[:200]
        return FieldError(
            loc,
            "care_template_render",
            f"The template fails with sample values: {detail}",
            {"detail": detail},
        )
    if len(text) > f.limit:
        return FieldError(
            loc,
            "care_template_too_long",
            f"The message is longer than {f.limit} characters",
            {"limit": f.limit},
        )
    return None


def sample(source: str, lang: str) -> str:
    """A template rendered with the sample values (the editor's example line)."""
    return render(source, SAMPLES.get(lang, SAMPLES["zh_CN"]))
