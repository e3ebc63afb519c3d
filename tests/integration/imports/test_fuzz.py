"""Hypothesis-made files: random encodings, header orders, junk and empty rows, enormous and
formula-like cells, binary garbage. The importer reports; it never crashes and never leaves
part of a batch behind."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.customers.models import Customer
from guanxi.imports.enums import ImportKind
from guanxi.imports.models import ImportJob
from guanxi.imports.readers import UnreadableFile
from guanxi.imports.service import run_import

HEADERS = ["客户名称", "手机", "地址", "生日", "客户类型", "标签", "备注", "邮箱", "无关列"]
CELLS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["张三", "13912345678", "+86 139-1234-5678", "=cmd|' /C calc'!A0", "@SUM(1)",
                     "2024年5月1日", "45413", "企业", "\u200b", "", "  ", "，；、", "\x00"]),
    st.text(min_size=6000, max_size=6001, alphabet="长"),
)  # fmt: skip


@st.composite
def files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=400))
    headers = draw(st.permutations(HEADERS))[: draw(st.integers(1, len(HEADERS)))]
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(headers) + 2), max_size=12))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=draw(st.sampled_from([",", "\t", ";"])))
    writer.writerow(headers)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
    return buf.getvalue().encode(encoding, errors="replace")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=files())
def test_any_file_is_reported_never_half_written(db: Session, content: bytes) -> None:
    before = db.scalar(select(func.count()).select_from(Customer)) or 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(content)
        try:
            report = run_import(
                db, kind=ImportKind.customers, path=path, actor=Actor.system("fuzz"), batch_rows=4
            )
            refused = None
        except UnreadableFile as exc:
            refused = exc.code
    if refused is not None:
        # Refused as a whole: a named reason, and nothing written.
        assert refused.startswith(("file_", "mapping_"))
        assert (db.scalar(select(func.count()).select_from(Customer)) or 0) == before
        return
    after = db.scalar(select(func.count()).select_from(Customer)) or 0
    # Every data row is accounted for exactly once, and only imported rows became records.
    assert report.imported + report.updated + report.unchanged + report.rejected <= report.rows
    assert after - before <= report.imported
    assert report.errors_total >= report.rejected
    job = db.get(ImportJob, report.job_id)
    assert job is not None
    assert job.status == "finished"
