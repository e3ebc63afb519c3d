"""The snapshot copies a column whose first rows are all empty: SQLite's Arrow driver guesses
a column's type from the first batch it reads (1,024 rows), so a block starting with 1,100
customers without an industry must not turn ``industry`` into a number column."""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlalchemy import insert

from guanxi.analytics.runner import snapshot_for
from guanxi.customers.models import Customer
from tests.integration.analytics.conftest import fresh_analytics_db, local


def test_leading_empty_text_column_keeps_its_type(tmp_path: Path) -> None:
    for db in fresh_analytics_db("sqlite", tmp_path):
        created = local(2025, 3, 1, 9)
        rows = [
            {
                "id": i,
                "kind": "individual",
                "name": f"客户{i}",
                "source": "other",
                "status": "active",
                "lifecycle_stage": "customer",
                "created_at": created,
                "updated_at": created,
                "version": 1,
                # The first 1,100 have no industry, the last three do.
                "industry": None if i <= 1100 else "物流",
                "credit_rating": None if i <= 1100 else "A",
            }
            for i in range(1, 1104)
        ]
        with db.engine.begin() as conn:
            conn.execute(insert(Customer), rows)
        snapshot = snapshot_for(db.settings)
        report = snapshot.refresh(["customer"])
        assert report.rows["customer"] == 1103
        files = sorted(str(p) for p in (snapshot.directory / "customer").glob("*.parquet"))
        con = duckdb.connect()
        counted = con.execute(
            "SELECT COUNT(*), COUNT(industry), MIN(id), MAX(id), "
            "string_agg(DISTINCT industry, ','), typeof(ANY_VALUE(industry)) "
            "FROM read_parquet($files)",
            {"files": files},
        ).fetchone()
        assert counted == (1103, 3, 1, 1103, "物流", "VARCHAR")
