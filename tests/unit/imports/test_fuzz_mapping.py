"""Hypothesis over column mapping: header folding is idempotent, the synonyms an export
writes map back to their fields, any header row maps without an exception, and a mapping
file of any bytes loads or raises ``MappingError``."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guanxi.imports.enums import ImportKind
from guanxi.imports.mapping import FIELDS, MappingError, build_map, header_key, load_mapping

FUZZ = settings(max_examples=300, deadline=None)
HEADER = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from("（）()[]【】 _-*:：#.客户名称手机"),
    ),
    max_size=20,
)


@FUZZ
@given(HEADER)
def test_header_key_is_idempotent(text: str) -> None:
    assert header_key(header_key(text)) == header_key(text)


@FUZZ
@given(st.sampled_from(list(ImportKind)), st.lists(HEADER, max_size=12))
def test_any_header_row_maps(kind: ImportKind, headers: list[str]) -> None:
    mapped = build_map(kind, headers)
    assert set(mapped.fields) <= set(range(len(headers)))
    names = [spec.name for spec in mapped.fields.values() if not spec.many]
    assert len(names) == len(set(names))  # a single-valued field is fed by one column
    assert all(h in headers for h in mapped.unknown)


@pytest.mark.parametrize("kind", list(ImportKind))
def test_every_synonym_maps_to_its_field(kind: ImportKind) -> None:
    for spec in FIELDS[kind]:
        for synonym in spec.synonyms:
            for written in (synonym, f" {synonym.upper()} ", f"*{synonym}（必填）"):
                mapped = build_map(kind, [written])
                assert [s.name for s in mapped.fields.values()] == [spec.name], written


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_mapping_file_loads_or_raises_mapping_error(data: bytes) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapping.json"
        path.write_bytes(data)
        try:
            columns = load_mapping(path)
        except MappingError:
            return
    assert all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items())


@FUZZ
@given(
    st.sampled_from(list(ImportKind)),
    st.dictionaries(HEADER, st.one_of(st.none(), st.text(max_size=10)), max_size=5),
    st.lists(HEADER, max_size=6),
)
def test_overrides_map_or_raise_mapping_error(
    kind: ImportKind, overrides: dict[str, str | None], headers: list[str]
) -> None:
    known = {spec.name for spec in FIELDS[kind]}
    if all(target is None or target in known for target in overrides.values()):
        build_map(kind, headers, overrides)
        return
    with pytest.raises(MappingError, match="^unknown field in mapping file"):
        build_map(kind, headers, overrides)
