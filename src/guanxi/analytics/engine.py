"""Where the analytics' SQL runs: DuckDB over a Parquet snapshot (the default), or the
PostgreSQL system of record in place — the same statements either way.

Steps write their SQL once, in DuckDB's dialect, against tables named as in the product
(``shipment``, ``ticket``, ``customer`` ...). :class:`DuckWorkspace` answers them from a
Parquet snapshot of those tables; :class:`PostgresWorkspace` transpiles them with sqlglot
and runs them on the live PostgreSQL tables. Either way every timestamp is the business's
local time (``settings.timezone``): a day is a day in China, not a UTC day.

The snapshot is taken with Arrow ADBC drivers (C, columnar: no Python object per value),
one Parquet file per block of ids. Each block has a fingerprint (row count and sums over
the columns that change), so a refresh re-reads only the blocks that changed. Personal
identifiers (encrypted columns) are never copied; the snapshot lives under
``data_dir/analytics`` with owner-only permissions because ticket texts are in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import sqlglot
from sqlalchemy.engine import make_url
from sqlglot import exp

# (column, kind): kind is how the value is typed in the snapshot.
#   id/int/bigint/float/text: as is; ts: a timestamp shown in local time; bool; date.
Column = tuple[str, str]


@dataclass(frozen=True)
class SourceTable:
    """A domain table the analytics read: which columns, in blocks of how many ids, and
    which columns' changes the block fingerprint must notice."""

    name: str
    columns: tuple[Column, ...]
    block: int = 1_000_000
    # Aggregates (portable SQL over the source) that change when a row in the block does.
    fingerprint: tuple[str, ...] = ()


SOURCES: dict[str, SourceTable] = {
    t.name: t
    for t in (
        SourceTable(
            "customer",
            (
                ("id", "bigint"),
                ("kind", "text"),
                ("source", "text"),
                ("industry", "text"),
                ("region", "text"),
                ("owner_id", "bigint"),
                ("lifecycle_stage", "text"),
                ("credit_rating", "text"),
                ("status", "text"),
                ("created_at", "ts"),
                ("updated_at", "ts"),
            ),
            block=500_000,
            fingerprint=("MAX(updated_at)", "SUM(version)"),
        ),
        SourceTable(
            "shipment",
            (
                ("id", "bigint"),
                ("customer_id", "bigint"),
                # Tickets name their shipment by waybill (the forecast's tickets per
                # shipment by region and service type).
                ("waybill_no", "text"),
                ("service_type", "text"),
                ("status", "text"),
                ("origin_province", "text"),
                ("origin_city", "text"),
                ("dest_province", "text"),
                ("dest_city", "text"),
                ("weight_g", "bigint"),
                ("fee_fen", "bigint"),
                ("insured_value_fen", "bigint"),
                ("cod_amount_fen", "bigint"),
                ("created_at", "ts"),
                ("promised_at", "ts"),
                ("delivered_at", "ts"),
                ("is_damaged", "bool"),
                ("is_lost", "bool"),
            ),
            block=2_000_000,
            # Shipments have no updated_at: a merge moves them (customer_id), delivery
            # sets delivered_at and the status, a claim marks damage or loss.
            fingerprint=(
                "SUM(customer_id)",
                "COUNT(delivered_at)",
                "MAX(delivered_at)",
                "SUM(fee_fen)",
                "SUM(LENGTH(status))",
                "SUM(CASE WHEN is_damaged THEN 1 ELSE 0 END)",
                "SUM(CASE WHEN is_lost THEN 1 ELSE 0 END)",
            ),
        ),
        SourceTable(
            "ticket",
            (
                ("id", "bigint"),
                ("type", "text"),
                ("channel", "text"),
                ("customer_id", "bigint"),
                ("waybill_no", "text"),
                ("category", "text"),
                ("region", "text"),
                ("team_id", "bigint"),
                ("severity", "text"),
                ("priority", "text"),
                ("subject", "text"),
                ("description", "text"),
                ("status", "text"),
                ("owner_id", "bigint"),
                ("first_owner_id", "bigint"),
                ("created_at", "ts"),
                ("first_response_at", "ts"),
                ("resolved_at", "ts"),
                ("closed_at", "ts"),
                ("reopened", "int"),
                ("is_repeat", "bool"),
                ("is_major", "bool"),
                ("resolution_code", "text"),
                ("satisfaction", "int"),
            ),
            block=500_000,
            fingerprint=("MAX(updated_at)", "SUM(version)"),
        ),
        SourceTable(
            "sla_event",
            (
                ("id", "bigint"),
                ("ticket_id", "bigint"),
                ("target", "text"),
                ("kind", "text"),
                ("due_at", "ts"),
                ("recorded_at", "ts"),
            ),
            block=1_000_000,
        ),
        SourceTable(
            "claim",
            (
                ("id", "bigint"),
                ("ticket_id", "bigint"),
                ("shipment_id", "bigint"),
                ("customer_id", "bigint"),
                ("reason", "text"),
                ("insured", "bool"),
                ("requested_fen", "bigint"),
                ("standard_fen", "bigint"),
                ("approved_fen", "bigint"),
                ("status", "text"),
                ("created_at", "ts"),
                ("decided_at", "ts"),
                ("paid_at", "ts"),
            ),
            block=500_000,
            fingerprint=("SUM(version)", "MAX(decided_at)", "MAX(paid_at)"),
        ),
        SourceTable(
            "interaction",
            (
                ("id", "bigint"),
                ("customer_id", "bigint"),
                ("kind", "text"),
                ("occurred_at", "ts"),
                ("user_id", "bigint"),
            ),
            block=1_000_000,
        ),
        # The tickets' timelines (append-only): where a ticket stood at a past moment,
        # reopenings and satisfaction answers with their time (churn features).
        SourceTable(
            "ticket_event",
            (
                ("id", "bigint"),
                ("ticket_id", "bigint"),
                ("action", "text"),
                ("to_status", "text"),
                ("occurred_at", "ts"),
            ),
            block=2_000_000,
        ),
    )
}

_DUCK_TYPES = {
    "bigint": "BIGINT",
    "int": "INTEGER",
    "float": "DOUBLE",
    "text": "VARCHAR",
    "bool": "BOOLEAN",
    "date": "DATE",
    "ts": "TIMESTAMP",
}

# A value of each kind as SQLite hands it over (moments and dates are text there).
_SQLITE_TYPED = {
    "bigint": "-1",
    "int": "0",
    "float": "0.0",
    "text": "''",
    "bool": "0",
    "date": "''",
    "ts": "''",
}


class Workspace(Protocol):
    """Where a step's SQL runs. ``query`` takes DuckDB-dialect SQL with ``$name``
    parameters and returns an Arrow table."""

    dialect: str

    def query(self, sql: str, **params: Any) -> pa.Table:
        """Run one statement and return its rows."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def bind(sql: str, params: Mapping[str, Any], dialect: str) -> str:
    """``sql`` (DuckDB dialect, ``$name`` parameters) rendered for ``dialect`` with the
    parameters inlined as typed literals.

    Parameters are dates, moments and numbers chosen by the steps themselves, never user
    text; inlining them keeps one statement text per run that sqlglot can transpile.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")

    def substitute(node: Any) -> Any:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in params:
                raise KeyError(f"SQL parameter ${node.name} not given")
            return _literal(params[node.name])
        return node

    rendered: str = tree.transform(substitute).sql(dialect=dialect)
    return rendered


def _literal(value: Any) -> Any:  # an sqlglot node (its base class moved in v27)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("pass local naive moments to analytics SQL")
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    if isinstance(value, bool | int | float | str) or value is None:
        return exp.convert(value)
    raise TypeError(f"unsupported SQL parameter {value!r}")


@dataclass
class DuckWorkspace:
    """DuckDB over the Parquet snapshot: one view per source table."""

    snapshot_dir: Path
    memory_limit: str = "2GB"
    threads: int | None = None
    dialect: str = "duckdb"
    con: duckdb.DuckDBPyConnection = field(init=False)

    def __post_init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET memory_limit = '{self.memory_limit}'")
        spill = self.snapshot_dir.parent / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        self.con.execute(f"SET temp_directory = {_path_literal(spill)}")
        self.con.execute("SET preserve_insertion_order = false")
        if self.threads:
            self.con.execute(f"SET threads = {int(self.threads)}")
        for table in SOURCES.values():
            folder = self.snapshot_dir / table.name
            files = sorted(folder.glob("*.parquet")) if folder.exists() else []
            if files:
                self.con.execute(
                    f"CREATE VIEW {table.name} AS SELECT * FROM "  # noqa: S608 - our names
                    f"read_parquet({_path_literal(folder / '*.parquet')})"
                )
            else:
                # An empty table keeps every statement valid on a database without rows.
                cols = ", ".join(f"{c} {_DUCK_TYPES[k]}" for c, k in table.columns)
                self.con.execute(f"CREATE TABLE {table.name} ({cols})")

    def query(self, sql: str, **params: Any) -> pa.Table:
        """Run one statement and return its rows."""
        text = bind(sql, params, "duckdb") if params else sql
        relation = self.con.sql(text)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def register(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable by ``name`` (step-local inputs)."""
        self.con.register(name, table)

    def close(self) -> None:
        """Release the connection."""
        self.con.close()


@dataclass
class PostgresWorkspace:
    """The live PostgreSQL tables, read in place through the same statements."""

    url: str
    timezone: str
    dialect: str = "postgres"
    _con: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self._con = pg.connect(_pg_uri(self.url))
        self._begin()

    def _begin(self) -> None:
        with self._con.cursor() as cur:
            # Timestamps compare and truncate in the business's local time, as the DuckDB
            # views present them.
            cur.execute(f"SET TIME ZONE '{_safe_tz(self.timezone)}'")
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def fresh(self) -> None:
        """Start a new read transaction: the next statement sees what was committed since
        (a step reading an earlier step's results, e.g. ``kpi`` joining ``rfm``'s)."""
        self._con.rollback()
        self._begin()

    def query(self, sql: str, **params: Any) -> pa.Table:
        """Run one statement and return its rows."""
        text = bind(sql, params, "postgres")
        with self._con.cursor() as cur:
            cur.execute(text)
            table: pa.Table = cur.fetch_arrow_table()
        return _localise(table, self.timezone)

    def close(self) -> None:
        """Release the connection."""
        self._con.rollback()
        self._con.close()


@dataclass
class SparkWorkspace:
    """Spark SQL over the same Parquet snapshot (or a lake holding the same tables): the
    statements rendered by sqlglot for Spark. The session is local by default
    (``GUANXI_SPARK_MASTER``); a cluster master makes the same steps run distributed."""

    snapshot_dir: Path
    master: str = "local[2]"
    dialect: str = "spark"
    spark: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        from pyspark.sql import SparkSession

        self.spark = (
            SparkSession.builder.master(self.master)
            .appName("guanxi-analytics")
            .config("spark.ui.enabled", "false")
            # The snapshot's moments are local wall-clock times without a zone: Spark must
            # not shift them.
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
        for table in SOURCES.values():
            folder = self.snapshot_dir / table.name
            if folder.exists() and any(folder.glob("*.parquet")):
                frame = self.spark.read.parquet(str(folder))
            else:
                schema = ", ".join(f"{c} {_SPARK_TYPES[k]}" for c, k in table.columns)
                frame = self.spark.createDataFrame([], schema)
            frame.createOrReplaceTempView(table.name)

    def query(self, sql: str, **params: Any) -> pa.Table:
        """Run one statement and return its rows."""
        table: pa.Table = self.spark.sql(bind(sql, params, "spark")).toArrow()
        columns = []
        for name, column in zip(table.column_names, table.columns, strict=True):
            if pa.types.is_timestamp(column.type) and column.type.tz is not None:
                # Session zone UTC: the instant's UTC wall time is the stored local time.
                column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
            columns.append((name, column))
        return pa.table(dict(columns))

    def close(self) -> None:
        """Drop the views; the session stays for the next run (starting one takes seconds)."""
        for table in SOURCES:
            self.spark.catalog.dropTempView(table)


_SPARK_TYPES = {
    "bigint": "BIGINT",
    "int": "INT",
    "float": "DOUBLE",
    "text": "STRING",
    "bool": "BOOLEAN",
    "date": "DATE",
    "ts": "TIMESTAMP_NTZ",
}


def _localise(table: pa.Table, tz: str) -> pa.Table:
    """timestamptz columns as naive local wall-clock moments, like the DuckDB views'."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            con = duckdb.connect()
            con.register("t", pa.table({"v": column}))
            column = con.sql(
                f"SELECT timezone('{_safe_tz(tz)}', v) AS v FROM t"  # noqa: S608
            ).to_arrow_table()["v"]
            con.close()
        columns.append((name, column))
    return pa.table(dict(columns))


def _path_literal(path: Path) -> str:
    """A file path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _safe_tz(name: str) -> str:
    if not all(ch.isalnum() or ch in "/_+-" for ch in name):
        raise ValueError(f"timezone {name!r}")
    return name


def _pg_uri(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


# --------------------------------------------------------------------------------------
# The snapshot


@dataclass
class RefreshReport:
    """What a snapshot refresh did per table: blocks re-read and kept, rows read."""

    read_blocks: dict[str, int] = field(default_factory=dict)
    kept_blocks: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)


Progress = Callable[[str, int, int], None]


class Snapshot:
    """Parquet copies of the source tables under ``directory``, refreshed block by block."""

    def __init__(self, directory: Path, database_url: str, timezone: str) -> None:
        self.directory = directory
        self.database_url = database_url
        self.timezone = _safe_tz(timezone)
        self.backend = make_url(database_url).get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise ValueError(f"analytics cannot read a {self.backend} database")

    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        """Per table, per block: the fingerprint of the block as last copied."""
        path = self.manifest_path()
        if not path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return loaded

    def refresh(
        self, tables: Iterable[str] | None = None, progress: Progress | None = None
    ) -> RefreshReport:
        """Bring the snapshot of ``tables`` (all by default) up to the database's state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # Ticket texts are in the snapshot: owner-only, like the database file beside it.
        os.chmod(self.directory, 0o700)
        manifest = self.manifest()
        report = RefreshReport()
        names = list(tables) if tables is not None else list(SOURCES)
        with _source_connection(self.database_url) as source:
            for name in names:
                table = SOURCES[name]
                known: dict[str, str] = manifest.get(name, {})
                current = _block_fingerprints(source, table)
                folder = self.directory / name
                folder.mkdir(exist_ok=True)
                # Blocks that vanished (rows deleted) go first.
                for block in set(known) - set(current):
                    (folder / f"{int(block):06d}.parquet").unlink(missing_ok=True)
                changed = [b for b, fp in current.items() if known.get(b) != fp]
                done = 0
                for block in sorted(changed, key=int):
                    rows = _copy_block(
                        source, table, int(block), folder, self.backend, self.timezone
                    )
                    report.rows[name] = report.rows.get(name, 0) + rows
                    known[block] = current[block]
                    done += 1
                    # The manifest is saved after every block: an interrupted refresh
                    # resumes where it stopped.
                    manifest[name] = {b: known[b] for b in current if b in known}
                    self._save(manifest)
                    if progress:
                        progress(name, done, len(changed))
                manifest[name] = current
                self._save(manifest)
                report.read_blocks[name] = len(changed)
                report.kept_blocks[name] = len(current) - len(changed)
                report.fingerprints[name] = _digest(current)
        return report

    def fingerprint(self, tables: Iterable[str]) -> str:
        """One digest of the named tables' current blocks (after a refresh)."""
        manifest = self.manifest()
        return _digest({name: manifest.get(name, {}) for name in sorted(tables)})

    def _save(self, manifest: dict[str, Any]) -> None:
        path = self.manifest_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, sort_keys=True), "utf-8")
        tmp.replace(path)

    def clear(self) -> None:
        """Forget the snapshot (the next refresh copies everything)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class _Source:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            import adbc_driver_sqlite.dbapi as lite

            path = parsed.database or ""
            self.con = lite.connect(f"file:{Path(path).resolve()}?mode=ro")
        else:
            import adbc_driver_postgresql.dbapi as pg

            self.con = pg.connect(_pg_uri(url))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def reader(self, sql: str) -> tuple[Any, pa.RecordBatchReader]:
        """The cursor (keep it open while reading) and its stream of record batches."""
        cur = self.con.cursor()
        cur.execute(sql)
        return cur, cur.fetch_record_batch()

    def close(self) -> None:
        self.con.close()


class _source_connection:  # noqa: N801 - a context manager used like a function
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> _Source:
        self.source = _Source(self.url)
        return self.source

    def __exit__(self, *exc: object) -> None:
        self.source.close()


def _block_fingerprints(source: _Source, table: SourceTable) -> dict[str, str]:
    aggregates = ["COUNT(*)", "SUM(id)", *table.fingerprint]
    rendered = []
    for agg in aggregates:
        # Booleans are 0/1 on SQLite and true/false on PostgreSQL.
        if source.backend == "sqlite":
            agg = agg.replace("WHEN is_damaged THEN", "WHEN is_damaged = 1 THEN").replace(
                "WHEN is_lost THEN", "WHEN is_lost = 1 THEN"
            )
        rendered.append(f"CAST({agg} AS TEXT)" if source.backend == "postgresql" else agg)
    # Table and column names come from SOURCES, never from input.
    sql = (
        f"SELECT id / {table.block} AS block, {', '.join(rendered)} "  # noqa: S608
        f"FROM {table.name} GROUP BY id / {table.block}"
    )
    # The column list is part of every block's digest: a snapshot taken before a column
    # was added to SOURCES is re-read rather than missing it.
    columns = [c for c, _k in table.columns]
    return {
        str(int(row[0])): _digest([columns, [str(v) for v in row[1:]]]) for row in source.rows(sql)
    }


def _copy_block(
    source: _Source, table: SourceTable, block: int, folder: Path, backend: str, tz: str
) -> int:
    lo, hi = block * table.block, (block + 1) * table.block
    names = ", ".join(c for c, _k in table.columns)
    sql = f"SELECT {names} FROM {table.name} WHERE id >= {lo} AND id < {hi} ORDER BY id"  # noqa: S608
    keep = ""
    if backend == "sqlite":
        # SQLite's Arrow driver takes each column's type from the first batch it reads
        # (1,024 rows): a block whose first rows are all NULL in a text column made it a
        # number column, and the first text value failed the copy. A leading row with a
        # value of every column's type (id -1, never a real id) fixes the types; it is
        # dropped again below. SQLite runs UNION ALL's arms in order.
        typed = ", ".join(f"{_SQLITE_TYPED[k]} AS {c}" for c, k in table.columns)
        sql = f"SELECT {typed} UNION ALL SELECT * FROM ({sql})"  # noqa: S608
        keep = " WHERE id <> -1"
    cursor, reader = source.reader(sql)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("src", reader)
        select = ", ".join(_snapshot_expr(c, k, backend, tz) for c, k in table.columns)
        target = folder / f"{block:06d}.parquet"
        tmp = folder / f"{block:06d}.parquet.tmp"
        con.execute(
            f"COPY (SELECT {select} FROM src{keep}) TO {_path_literal(tmp)} "  # noqa: S608
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        rows = con.execute(
            f"SELECT COUNT(*) FROM read_parquet({_path_literal(tmp)})"  # noqa: S608
        ).fetchone()
        tmp.replace(target)
        return int(rows[0]) if rows else 0
    finally:
        con.close()
        cursor.close()


def _snapshot_expr(column: str, kind: str, backend: str, tz: str) -> str:
    if kind == "ts":
        # SQLite holds UTC as text; PostgreSQL hands over timestamptz. Both become the
        # business's local wall-clock time.
        utc = (
            f"timezone('UTC', TRY_CAST({column} AS TIMESTAMP))"
            if backend == "sqlite"
            else f"{column}::TIMESTAMPTZ"
        )
        return f"timezone('{tz}', {utc}) AS {column}"
    if kind == "bool":
        return f"CAST({column} AS BOOLEAN) AS {column}"
    if kind == "date":
        return f"TRY_CAST({column} AS DATE) AS {column}"
    return f"CAST({column} AS {_DUCK_TYPES[kind]}) AS {column}"
