"""Files as people save them: UTF-8 with and without BOM, GBK, TSV, XLSX, and junk."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlsxwriter

from guanxi.imports.readers import UnreadableFile, open_table

ROWS = [
    ["客户名称", "手机", "地址"],
    ["张三丰", "13912345678", "浙江省杭州市临平区南苑街道"],
    ["", "", ""],
    ["李四", "", "北京市"],
]


def _csv(rows: list[list[str]], sep: str = ",") -> str:
    return "\r\n".join(sep.join(r) for r in rows) + "\r\n"


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], str | None, str]:
    table = open_table(path)
    try:
        return table.headers, list(table.rows()), table.encoding, table.format
    finally:
        table.close()


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings(tmp_path: Path, encoding: str, expected: str) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(_csv(ROWS).encode(encoding))
    headers, rows, detected, fmt = _read(path)
    assert headers == ["客户名称", "手机", "地址"]
    # The blank row 3 is skipped; row numbers are what Excel shows.
    assert rows == [(2, ROWS[1]), (4, ROWS[3])]
    assert (detected, fmt) == (expected, "csv")


def test_tsv_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text(_csv(ROWS, "\t"), encoding="utf-8")
    assert _read(path)[1][0] == (2, ROWS[1])
    assert _read(path)[3] == "tsv"
    path = tmp_path / "semi.csv"
    path.write_text(_csv(ROWS, ";"), encoding="utf-8")
    assert _read(path)[1][1] == (4, ROWS[3])


def test_xlsx_numbers_and_dates_read_as_typed(tmp_path: Path) -> None:
    import datetime

    path = tmp_path / "c.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["客户名称", "手机", "生日", "运费"])
    sheet.write_row(1, 0, ["张三丰", 13912345678, None, 12.5])
    sheet.write_datetime(
        1, 2, datetime.date(1990, 5, 1), book.add_format({"num_format": "yyyy-mm-dd"})
    )
    book.close()
    headers, rows, encoding, fmt = _read(path)
    assert headers == ["客户名称", "手机", "生日", "运费"]
    assert rows == [(2, ["张三丰", "13912345678", "1990-05-01", "12.5"])]
    assert (encoding, fmt) == (None, "xlsx")


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "file_empty"),
        (b"\x00\x01\x02binary\x00" * 50, "file_binary"),
        (b"PK\x03\x04garbage", "file_xlsx"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as info:
        open_table(path)
    assert info.value.code == code
    with pytest.raises(UnreadableFile) as missing:
        open_table(tmp_path / "nope.csv")
    assert missing.value.code == "file_missing"


def test_enormous_cell_is_read_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("客户名称,备注\n张三," + "长" * 300_000 + "\n李四,短\n", encoding="utf-8")
    rows = _read(path)[1]
    assert [r[0] for r in rows] == [2, 3]
    assert len(rows[0][1][1]) == 300_000
