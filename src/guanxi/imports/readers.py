"""Reading tabular files as people really save them: CSV / TSV in UTF-8 (with or without a
byte-order mark) or GB18030 / GBK, and XLSX.

A reader yields ``(row_number, cells)`` where ``row_number`` is the 1-based line a person sees
in Excel (the header is row 1) and ``cells`` are strings, one per header. Rows are produced
one at a time so a file of any size is read in constant memory (XLSX excepted: calamine
loads one sheet, which Excel itself caps at 1,048,576 rows).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import charset_normalizer

# A cell may legitimately be long (notes), but the csv module's 128 KiB default turns one
# enormous cell into an error for the whole file; validation rejects over-long values.
csv.field_size_limit(16 * 1024 * 1024)

_SAMPLE = 1 << 20
XLSX_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}


class UnreadableFile(Exception):
    """The file cannot be read at all (exit status 2); ``code`` names the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class TableFile:
    """An opened file: its headers, detected format and encoding, and a row iterator."""

    path: Path
    format: str  # "csv", "tsv" or "xlsx"
    encoding: str | None
    headers: list[str]
    _rows: Iterator[tuple[int, list[str]]] = field(repr=False)
    _close: Any = field(default=None, repr=False)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Data rows after the header, blank rows skipped, short rows padded."""
        width = len(self.headers)
        for number, cells in self._rows:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            yield number, cells

    def close(self) -> None:
        """Release the file handle."""
        if self._close is not None:
            self._close()


def file_sha256(path: Path) -> str:
    """Content hash: the same file re-imported resumes the same job."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, GB18030 (covers GBK and GB2312), or a guess.

    Chinese spreadsheets are saved by Excel as GBK unless told otherwise, so GB18030 is tried
    before any statistical guess.
    """
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        try:
            sample.decode(encoding)
            return encoding
        except UnicodeDecodeError as exc:
            # A sample cut in the middle of a multi-byte character is still that encoding.
            if exc.start >= len(sample) - 4 and len(sample) >= _SAMPLE:
                return encoding
    guess = charset_normalizer.from_bytes(sample).best()
    if guess is None:
        raise UnreadableFile("file_encoding", "The file's text encoding cannot be recognised")
    return str(guess.encoding)


_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def _sniff_delimiter(first_line: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    # Delimiters inside quoted headers do not count: a comma file with the header
    # "备注;说明" quoted was read as semicolon-separated.
    outside = _QUOTED.sub("", first_line)
    counts = {d: outside.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _clean_header(text: str) -> str:
    return text.replace("\ufeff", "").strip()


def open_table(path: Path) -> TableFile:
    """Open ``path`` by its content and suffix; raises :class:`UnreadableFile`."""
    if not path.is_file():
        raise UnreadableFile("file_missing", f"No such file: {path.name}")
    suffix = path.suffix.lower()
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE)
    if suffix in XLSX_SUFFIXES or head.startswith(b"PK\x03\x04"):
        return _open_xlsx(path)
    if not head.strip():
        raise UnreadableFile("file_empty", "The file is empty")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("file_binary", "The file is not a text table (CSV / TSV / XLSX)")
    encoding = detect_encoding(head)
    fh_text: IO[str] = path.open("r", encoding=encoding, errors="replace", newline="")
    first = fh_text.readline()
    delimiter = _sniff_delimiter(first, suffix)
    fh_text.seek(0)
    reader = csv.reader(fh_text, delimiter=delimiter)
    try:
        headers = [_clean_header(h) for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        fh_text.close()
        raise UnreadableFile("file_header", "The file has no readable header row") from exc
    if not any(headers):
        fh_text.close()
        raise UnreadableFile("file_header", "The file has no readable header row")

    def rows() -> Iterator[tuple[int, list[str]]]:
        number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                # A broken quote swallows the rest of a line: report the row and go on.
                number += 1
                yield number, ["\x00csv_error"]
                continue
            number += 1
            yield number, cells

    return TableFile(
        path=path,
        format="tsv" if delimiter == "\t" else "csv",
        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
        headers=headers,
        _rows=rows(),
        _close=fh_text.close,
    )


def xlsx_cell(value: Any) -> str:
    """A spreadsheet value as the text a person typed: 13912345678.0 -> "13912345678"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    return str(value)


def _open_xlsx(path: Path) -> TableFile:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheet = book.get_sheet_by_index(0)
        rows_iter = iter(sheet.iter_rows())
        header_row = next(rows_iter, None)
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise UnreadableFile("file_xlsx", "The spreadsheet cannot be read") from exc
    if header_row is None or not any(v not in (None, "") for v in header_row):
        raise UnreadableFile("file_header", "The file has no readable header row")
    headers = [_clean_header(xlsx_cell(v)) for v in header_row]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, values in enumerate(rows_iter, start=2):
            yield number, [xlsx_cell(v) for v in values]

    return TableFile(
        path=path, format="xlsx", encoding=None, headers=headers, _rows=rows(), _close=book.close
    )
