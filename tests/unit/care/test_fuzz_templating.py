"""Hypothesis over care message templates: any source a manager can save is checked
without an exception and without building a huge value (products, powers, padding
filters and methods), and what the check accepts renders within the rule's limit."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from guanxi.care.enums import RuleKind
from guanxi.care.templating import SMS_MAX, TemplateField, check, sample

ATOMS = st.sampled_from(["name", "company", "'ab'", "0", "2", "64", "1000", "10**60", "1.5"])
NUMBERS = st.sampled_from(["0", "3", "64", "1000", "100000", "1000000000"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from("*+-"), inner),
        st.builds(lambda a, b: f"({a}) ** {b}", inner, st.sampled_from(["2", "60", "64"])),
        st.builds(
            lambda a, f, n: f"({a})|{f}({n})",
            inner,
            st.sampled_from(["center", "indent", "truncate", "wordwrap", "round"]),
            NUMBERS,
        ),
        st.builds(lambda a, n: f"'%*s'|format({n}, {a})", inner, NUMBERS),
        st.builds(
            lambda a, m, n: f"({a}|string).{m}({n})",
            inner,
            st.sampled_from(["center", "ljust", "rjust", "zfill", "expandtabs"]),
            NUMBERS,
        ),
        st.builds(lambda a, n: f"'{{:>{n}}}'.format({a})", inner, NUMBERS),
    )


EXPRESSIONS = st.recursive(ATOMS, _extend, max_leaves=6)
SOURCES = st.one_of(
    st.builds(lambda e: f"{{{{ {e} }}}}", EXPRESSIONS),
    st.builds(lambda e: f"您好 {{{{ name }}}}，{{% if {e} %}}礼{{% endif %}}", EXPRESSIONS),
    st.text(alphabet="{}%#|()*' namecopy12", max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(SOURCES)
def test_any_template_is_checked_without_a_huge_value(source: str) -> None:
    tracemalloc.start()
    try:
        errors = check(RuleKind.birthday, [TemplateField("body_zh", source, SMS_MAX, "zh_CN")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"{source}: {peak} bytes"
    assert len(errors) <= 1
    if not errors:
        assert len(sample(source, "zh_CN")) <= SMS_MAX
