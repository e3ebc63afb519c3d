"""kill -9 in the middle of an import, then run it again: whole batches, exact counts."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from guanxi.audit.service import verify
from guanxi.customers.models import Customer, CustomerPhone, SearchToken
from guanxi.imports.models import ImportJob

ROWS = 20_000
BATCH = 500


def _file(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["客户编号", "客户名称", "手机", "地址"])
        for i in range(ROWS):
            out.writerow([f"K{i:06d}", f"客户{i:06d}", f"139{i:08d}", "浙江省杭州市临平区南苑街道"])
    return path


def _run(engine: Engine, path: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GUANXI_ENV": "development",
        "GUANXI_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "GUANXI_DATA_DIR": str(data_dir),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "guanxi.cli", "import", "customers", str(path), "--json",
         "--batch-rows", str(BATCH)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def test_kill_mid_import_then_rerun(committed_engine: Engine, tmp_path: Path) -> None:
    path = _file(tmp_path / "big.csv")
    data_dir = tmp_path / "data"
    proc = _run(committed_engine, path, data_dir)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline:
        with committed_engine.connect() as conn:
            done = conn.execute(select(func.max(ImportJob.rows_done))).scalar() or 0
        if done >= 3 * BATCH:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Session(committed_engine) as session:
        job = session.scalar(select(ImportJob))
        assert job is not None
        assert job.status == "running"
        assert 3 * BATCH < job.rows_done < ROWS + 1
        # Whole batches or nothing: the checkpoint and the rows agree exactly.
        committed = session.scalar(select(func.count()).select_from(Customer))
        assert committed == job.rows_done - 1 == job.imported
        assert committed % BATCH == 0
    rerun = _run(committed_engine, path, data_dir)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == ROWS
        assert session.scalar(select(func.count(func.distinct(Customer.external_id)))) == ROWS
        assert session.scalar(select(func.count()).select_from(CustomerPhone)) == ROWS
        assert session.scalar(select(func.count(func.distinct(SearchToken.customer_id)))) == ROWS
        job = session.scalar(select(ImportJob))
        assert job is not None
        assert (job.status, job.rows_done, job.imported, job.rejected) == (
            "finished", ROWS + 1, ROWS, 0,
        )  # fmt: skip
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 1
        assert verify(session)[1] == []
        if committed_engine.dialect.name == "sqlite":
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
