"""Parsing free-text Chinese addresses against current divisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guanxi.customers.addresses import ParsedAddress, parse_address, provinces


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "浙江省杭州市临平区南苑街道人民大道100号",
            ("浙江省", "杭州市", "临平区", "南苑街道人民大道100号", "330113"),
        ),
        ("杭州市临平区星光街1号", ("浙江省", "杭州市", "临平区", "星光街1号", "330113")),
        ("浙江杭州钱塘区下沙街道", ("浙江省", "杭州市", "钱塘区", "下沙街道", "330114")),
        ("临平区乔司街道1号", ("浙江省", "杭州市", "临平区", "乔司街道1号", "330113")),
        ("北京市朝阳区建国路88号", ("北京市", "北京市", "朝阳区", "建国路88号", "110105")),
        (
            "北京市北京市海淀区中关村大街1号",
            ("北京市", "北京市", "海淀区", "中关村大街1号", "110108"),
        ),
        ("上海浦东新区世纪大道100号", ("上海市", "上海市", "浦东新区", "世纪大道100号", "310115")),
        ("重庆市渝中区解放碑", ("重庆市", "重庆市", "渝中区", "解放碑", "500103")),
        (
            "中国 310000 浙江省杭州市西湖区文三路",
            ("浙江省", "杭州市", "西湖区", "文三路", "330106"),
        ),
        ("广东深圳南山区科技园", ("广东省", "深圳市", "南山区", "科技园", "440305")),
        ("湖北省仙桃市干河街道", ("湖北省", "仙桃市", None, "干河街道", "429004")),
        ("内蒙古呼和浩特市新城区", ("内蒙古自治区", "呼和浩特市", "新城区", "", "150102")),
        ("辽宁省朝阳市双塔区", ("辽宁省", "朝阳市", "双塔区", "", "211302")),
        ("吉林省吉林市船营区", ("吉林省", "吉林市", "船营区", "", "220204")),
        # Ambiguous district with no context (北京 / 长春 both have 朝阳区): left unparsed.
        ("朝阳区建国路", (None, None, None, "朝阳区建国路", None)),
        ("  ＡＢＣ大厦  ", (None, None, None, "ＡＢＣ大厦", None)),
        ("", (None, None, None, "", None)),
    ],
)
def test_parse(line: str, expected: tuple[object, ...]) -> None:
    parsed = parse_address(line)
    assert (
        parsed.province,
        parsed.city,
        parsed.district,
        parsed.detail,
        parsed.division_code,
    ) == expected


def test_provinces_lists_each_once() -> None:
    names = provinces()
    assert len(names) == len(set(names)) == 31
    assert "浙江省" in names


@given(st.text(max_size=60))
def test_never_raises_and_keeps_the_rest(line: str) -> None:
    parsed = parse_address(line)
    assert isinstance(parsed, ParsedAddress)
    if parsed.province is None:
        assert parsed.detail == line.strip()
    else:
        assert parsed.detail in line or parsed.detail in __import__("unicodedata").normalize(
            "NFKC", line
        )


def _longest_key_first(text: str, pos: int, table: dict[str, object], longest: int) -> object:
    """The matching rule as first written: every length, from the longest name down."""
    for length in range(min(longest, len(text) - pos), 1, -1):
        if text[pos : pos + length] in table:
            return text[pos : pos + length], pos + length
    return None


def _division_names() -> list[str]:
    from guanxi.customers.addresses import _tables

    t = _tables()
    return sorted({*t.provinces, *t.cities, *t.districts})


@given(
    st.lists(
        st.one_of(
            st.sampled_from(_division_names()),
            st.sampled_from(_division_names()).map(lambda n: n[: len(n) // 2 + 1]),
            st.sampled_from(["省", "市", "区", "县", "自治", "路1号", " ", "，"]),
        ),
        max_size=5,
    ).map("".join)
)
def test_match_grows_to_the_same_longest_name(text: str) -> None:
    from guanxi.customers.addresses import _match, _tables

    t = _tables()
    for table in (t.provinces, t.cities, t.districts):
        for pos in range(len(text)):
            expected = _longest_key_first(text, pos, table, t.max_alias)  # type: ignore[arg-type]
            assert _match(text, pos, table, t.max_alias) == expected  # type: ignore[arg-type]
