"""Hypothesis over the file readers with real files in real encodings: what a spreadsheet
program writes reads back cell for cell, and any bytes at all either open as a table or
raise ``UnreadableFile`` (never another exception, also while iterating the rows)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from tempfile import TemporaryDirectory

import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from guanxi.imports.readers import UnreadableFile, open_table

FUZZ = settings(max_examples=150, deadline=None)
UNREADABLE_CODES = {
    "file_missing",
    "file_empty",
    "file_binary",
    "file_encoding",
    "file_header",
    "file_xlsx",
}
# Real Chinese headers: what makes a GB18030 file recognisable (a file of a few Latin
# letters is valid in every encoding).
HEADERS = ["客户名称", "手机", "地址", "备注"]
# Cells as people type them: CJK, Latin, digits, the delimiters and quotes the writer must
# escape, embedded line breaks; no NUL (a NUL marks a binary file) and no carriage return
# alone (the csv module turns a lone CR inside a quoted field into a line end).
CELL_CHARS = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from([",", ";", "|", "\t", '"', "\n", "，", "·", "é", "😀", "\u3000"]),
)
CELL = st.text(alphabet=CELL_CHARS, max_size=20)
ROWS = st.lists(st.lists(CELL, min_size=4, max_size=4), min_size=1, max_size=8)


def _expected(rows: list[list[str]]) -> list[list[str]]:
    """The rows a reader yields: blank rows (only spaces) skipped."""
    return [r for r in rows if any(c.strip() for c in r)]


def _read(path: Path) -> tuple[list[str], list[list[str]], str | None]:
    table = open_table(path)
    try:
        return table.headers, [cells for _number, cells in table.rows()], table.encoding
    finally:
        table.close()


def _csv_text(rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return out.getvalue()


@FUZZ
@given(
    ROWS,
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]),
    st.sampled_from([",", ";", "\t", "|"]),
)
def test_written_csv_reads_back_cell_for_cell(
    rows: list[list[str]], encoding: str, delimiter: str
) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        path.write_bytes(_csv_text(rows, delimiter).encode(encoding))
        headers, read, detected = _read(path)
    assert headers == HEADERS
    assert read == _expected(rows)
    assert detected == {"utf-8-sig": "utf-8"}.get(encoding, encoding)


@FUZZ
@given(ROWS)
def test_written_xlsx_reads_back_cell_for_cell(rows: list[list[str]]) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.xlsx"
        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, HEADERS)
        for index, row in enumerate(rows, start=1):
            for column, value in enumerate(row):
                sheet.write_string(index, column, value)
        book.close()
        headers, read, _ = _read(path)
    assert headers == HEADERS
    assert read == _expected(rows)


@FUZZ
@given(
    st.lists(st.lists(CELL, min_size=0, max_size=7), min_size=1, max_size=6),
    st.sampled_from(["utf-8", "gb18030"]),
)
def test_ragged_rows_are_padded_to_the_header(rows: list[list[str]], encoding: str) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "ragged.csv"
        path.write_bytes(_csv_text(rows, ",").encode(encoding))
        _headers, read, _ = _read(path)
    padded = [r + [""] * (len(HEADERS) - len(r)) for r in rows]
    assert read == _expected(padded)


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=200_000, max_value=2_000_000), CELL)
def test_huge_fields_are_read_whole(size: int, tail: str) -> None:
    note = "长" * size + tail
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.csv"
        path.write_text(_csv_text([["张三", "13912345678", "杭州", note]], ","), "utf-8")
        _headers, read, _ = _read(path)
    assert read == [["张三", "13912345678", "杭州", note]]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        # Text-like bytes: a header line, then broken quotes, NULs, stray high bytes.
        st.lists(
            st.sampled_from(
                [b"a,b\r\n", b'"x', b'"', b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xa3\xa4",
                 b"\n", b",", b"\xe4\xb8", b"PK\x03\x04", "客户".encode("gb18030")]
            ),
            max_size=30,
        ).map(b"".join),
    ),
    st.sampled_from([".csv", ".tsv", ".txt", ".xlsx"]),
)  # fmt: skip
def test_any_bytes_open_or_raise_unreadable(data: bytes, suffix: str) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            headers, read, _ = _read(path)
        except UnreadableFile as exc:
            code: str | None = exc.code
        else:
            code = None
    if code is not None:
        assert code in UNREADABLE_CODES
        return
    assert any(headers)
    assert all(len(cells) >= len(headers) or cells == ["\x00csv_error"] for cells in read)


@FUZZ
@given(
    st.lists(
        st.text(alphabet=CELL_CHARS, min_size=1, max_size=12).filter(
            lambda h: h.strip() and "\n" not in h
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([",", ";", "\t", "|"]),
)
def test_headers_with_delimiters_inside_quotes(headers: list[str], delimiter: str) -> None:
    # "备注;说明" quoted in a comma file: the delimiter is the one outside the quotes.
    headers = [f"{h}客户" for h in headers]
    out = io.StringIO()
    # Every field quoted (as many programs write): a delimiter in an unquoted header is
    # ambiguous for any reader, a quoted one is not.
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(headers)
    writer.writerow(["1"] * len(headers))
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "headers.csv"
        path.write_bytes(out.getvalue().encode("utf-8"))
        read_headers, read, _ = _read(path)
    assert read_headers == [h.replace("\ufeff", "").strip() for h in headers]
    assert read == [["1"] * len(headers)]
