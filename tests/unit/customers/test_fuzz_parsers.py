"""Hypothesis over the other parsers of typed input: the search tokens (a search never
misses a name containing the typed text), the address splitter, and working-hours strings
of the service desk's teams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guanxi.core.errors import ValidationFailed
from guanxi.customers.addresses import parse_address
from guanxi.customers.tokens import name_tokens, normalise_name, query_tokens
from guanxi.tickets.teams import parse_hours

FUZZ = settings(max_examples=300, deadline=None)
NAME = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x4E20),
        st.sampled_from("abcABCＡＢ１2 　"),
    ),
    max_size=12,
)


@FUZZ
@given(NAME)
def test_normalise_name_is_idempotent(text: str) -> None:
    assert normalise_name(normalise_name(text)) == normalise_name(text)


@FUZZ
@given(NAME, st.data())
def test_a_search_never_misses_a_name_containing_the_term(name: str, data: st.DataObject) -> None:
    folded = normalise_name(name)
    start = data.draw(st.integers(min_value=0, max_value=len(folded)))
    end = data.draw(st.integers(min_value=start, max_value=len(folded)))
    term = folded[start:end]
    assert set(query_tokens(term)) <= name_tokens(name), (name, term)


ADDRESS = st.one_of(
    st.text(max_size=40),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                ["浙江省", "杭州市", "临平区", "北京", "朝阳区", "上海市", "浦东新区", "吉林省",
                 "长春市", "南苑街道", "1号", " ", "，", "收货地址:", "广东", "深圳市", "福田区"]
            ),
            max_size=8,
        ),
    ),
)  # fmt: skip


@FUZZ
@given(ADDRESS)
def test_addresses_split_without_losing_the_detail(line: str) -> None:
    parsed = parse_address(line)
    if parsed.province is None and parsed.city is None:
        assert parsed.detail == line.strip()
        return
    assert parsed.division_code is not None
    assert parsed.detail == parsed.detail.strip()
    # Splitting the joined parts again finds the same divisions (idempotent).
    joined = "".join(p for p in (parsed.province, parsed.city, parsed.district) if p)
    again = parse_address(joined + parsed.detail)
    assert (again.province, again.city, again.district) == (
        parsed.province,
        parsed.city,
        parsed.district,
    )


SPAN = st.builds(
    lambda h1, m1, h2, m2: f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}",
    st.integers(0, 25),
    st.sampled_from([0, 30, 59, 60]),
    st.integers(0, 25),
    st.sampled_from([0, 30, 59, 60]),
)


@FUZZ
@given(st.one_of(st.lists(SPAN, min_size=1, max_size=4).map(",".join), st.text(max_size=30)))
def test_working_hours_parse_or_name_the_field(text: str) -> None:
    try:
        spans = parse_hours(text)
    except ValidationFailed as exc:
        refused: ValidationFailed | None = exc
    else:
        refused = None
    if refused is not None:
        assert [e.loc for e in refused.errors] == [("work_hours",)]
        return
    assert spans
    assert all(start < end for start, end in spans)
    # What is stored reads back the same.
    written = ",".join(
        f"{s:%H:%M}-{'24:00' if (e.hour, e.minute, e.second) == (23, 59, 59) else f'{e:%H:%M}'}"
        for s, e in spans
    )
    assert parse_hours(written) == spans
