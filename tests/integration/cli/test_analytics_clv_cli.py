"""``guanxi analytics clv`` on CSV files: the CDNOW sample gives the published estimates;
bad input gives a message naming the option or column and exit code 2."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from guanxi.analytics import clv
from guanxi.cli import app

SAMPLE = Path(__import__("lifetimes").__file__).parent / "datasets" / "CDNOW_sample.txt"


def _cdnow_rows() -> list[tuple[str, str, str]]:
    """(sample customer id, YYYYMMDD, dollars) from the whitespace-separated sample."""
    rows = []
    for line in SAMPLE.read_text().splitlines():
        _master, customer, day, _cds, dollars = line.split()
        rows.append((customer, day, dollars))
    return rows


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clv") / "cdnow.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "date", "amount"])
        writer.writerows(_cdnow_rows())
    return path


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["analytics", "clv", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cdnow_sample_gives_the_published_estimates(cdnow_csv: Path) -> None:
    code, out, err = _run(
        "--transactions", str(cdnow_csv), "--until", "1997-09-30", "--period", "week", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"customers", "bgnbd", "gamma_gamma"}
    assert result["customers"] == 2357
    bg, gg = result["bgnbd"], result["gamma_gamma"]
    assert set(bg) == {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(gg) == {"p", "q", "gamma"}
    # Fader, Hardie & Lee (2005): the 39-week calibration of the 2,357-customer sample.
    assert (round(bg["r"], 3), round(bg["alpha"], 3), round(bg["a"], 3), round(bg["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(bg["log_likelihood"], 1) == -9582.4
    assert (round(gg["p"], 2), round(gg["q"], 2), round(gg["gamma"], 2)) == (6.25, 3.74, 15.44)


def test_other_column_names_iso_dates_and_a_table(tmp_path: Path) -> None:
    rows = [
        [customer, f"{day[:4]}-{day[4:6]}-{day[6:]} 10:00:00", dollars, "x"]
        for customer, day, dollars in _cdnow_rows()
    ]
    path = _write(tmp_path / "orders.csv", ["ID", "DATE", "PRICE", "note"], rows)
    args = ["--transactions", str(path), "--until", "1997-09-30"]
    code, out, err = _run(*args, "--columns", "customer_id=ID,date=DATE,amount=PRICE", "--json")
    assert code == 0, err
    assert round(json.loads(out)["bgnbd"]["alpha"], 3) == 4.414

    code, out, err = _run(
        *args, "--columns", "customer_id=id,date=date,amount=price", "--lang", "en"
    )
    assert code == 0, err
    assert "2,357 customers" in out
    assert "alpha" in out
    assert "4.414" in out
    assert "15.44" in out
    assert "-9582.4" in out
    code, out, err = _run(
        *args, "--columns", "customer_id=ID,date=DATE,amount=PRICE", "--lang", "zh_CN"
    )
    assert code == 0, err
    assert "客户终身价值" in out
    assert "4.414" in out


def _rounded(value: Any) -> Any:
    """``value`` with every float rounded to 9 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_until_defaults_to_the_last_day(cdnow_csv: Path) -> None:
    code, out, err = _run("--transactions", str(cdnow_csv), "--json")
    assert code == 0, err
    code, explicit, err = _run("--transactions", str(cdnow_csv), "--until", "1998-06-30", "--json")
    assert code == 0, err
    # The same fit: equal to the last few ulps (the optimiser's sums are summed in
    # thread order, so two runs may differ in the 12th digit).
    assert _rounded(json.loads(out)) == _rounded(json.loads(explicit))
    # Eighteen months instead of 39 weeks: a different fit than the published one.
    assert round(json.loads(out)["bgnbd"]["alpha"], 3) != 4.414


def test_date_formats_and_the_until_day(tmp_path: Path) -> None:
    rows = [
        ["a", "2024/01/01", "10"],
        ["a", "2024/01/08", "20"],
        ["a", "2024/01/15", "30"],
        ["b", "20240103", "5"],
        ["b", "2024-01-10", "15"],
        ["c", "2024年01月05日", "8"],
        ["c", "2024.01.20", "12"],
        ["c", "2024-01-21T00:00:01", "99"],  # after --until
    ]
    path = _write(tmp_path / "t.csv", ["customer_id", "date", "amount"], rows)
    con = duckdb.connect()
    clv.load_transactions_csv(con, path)
    summary = clv.transaction_summary(
        con, "clv_transactions", until=date(2024, 1, 20), period="day"
    )
    got = {
        str(c): (f, r, t, m)
        for c, f, r, t, m in zip(
            summary.customer_id,
            summary.frequency,
            summary.recency,
            summary.T,
            summary.monetary,
            strict=True,
        )
    }
    assert got == {
        "a": (2.0, 14.0, 19.0, 25.0),
        "b": (1.0, 7.0, 17.0, 15.0),
        "c": (1.0, 15.0, 15.0, 12.0),
    }
    # Three customers are too few to estimate four parameters: a message, not a traceback.
    code, _, err = _run(
        "--transactions", str(path), "--period", "day", "--until", "2024-01-20", "--lang", "en"
    )
    assert code == 2
    assert "The BG/NBD model did not converge" in " ".join(err.split())


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["--transactions", "{dir}/missing.csv"],
            ["--transactions", "missing.csv", "no such file"],
        ),
        (["--columns", "amount=PRICE"], ["'PRICE'", "amount", "--columns amount=NAME"]),
        (["--columns", "price:PRICE"], ["--columns price:PRICE", "customer_id, date, amount"]),
        (["--until", "30/09/1997"], ["--until 30/09/1997", "YYYY-MM-DD"]),
        (["--period", "fortnight"], ["--period fortnight", "day, week, month"]),
        (["--until", "1900-01-01"], ["--until 1900-01-01", "no transactions"]),
    ],
)
def test_bad_options_exit_2_with_a_message(
    cdnow_csv: Path, tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    base = {"--transactions": str(cdnow_csv), "--until": "1997-09-30"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1].format(dir=tmp_path)
    flat = [part for pair in base.items() for part in pair]
    code, out, err = _run(*flat, "--lang", "en")
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    message = " ".join(err.split())  # rich wraps long lines
    for needle in needles:
        assert needle in message, (needle, message)


def test_bad_values_name_the_column_and_line(tmp_path: Path) -> None:
    header = ["customer_id", "date", "amount"]
    bad_date = _write(
        tmp_path / "d.csv", header, [["a", "2024-01-01", "1"], ["a", "01/02/2024x", "2"]]
    )
    code, _, err = _run("--transactions", str(bad_date), "--lang", "en")
    message = " ".join(err.split())
    assert code == 2
    assert "Column 'date': 1 values are not dates (first: '01/02/2024x' on line 3)" in message

    bad_amount = _write(
        tmp_path / "a.csv", header, [["a", "2024-01-01", "¥1"], ["a", "2024-01-02", ""]]
    )
    code, _, err = _run("--transactions", str(bad_amount), "--lang", "en")
    message = " ".join(err.split())
    assert code == 2
    assert "Column 'amount': 2 values are not numbers (first: '¥1' on line 2)" in message

    no_customer = _write(
        tmp_path / "c.csv", header, [["a", "2024-01-01", "1"], ["", "2024-01-02", "1"]]
    )
    code, _, err = _run("--transactions", str(no_customer), "--lang", "en")
    assert code == 2
    assert "Column 'customer_id': 1 rows have no customer (first on line 3)" in " ".join(
        err.split()
    )

    single_day = _write(
        tmp_path / "s.csv", header, [["a", "2024-01-01", "1"], ["b", "2024-01-01", "2"]]
    )
    code, _, err = _run("--transactions", str(single_day), "--lang", "en")
    assert code == 2
    assert "no history to fit" in " ".join(err.split())

    for content in (b"", b"customer_id,date,amount\n"):
        empty = tmp_path / "empty.csv"
        empty.write_bytes(content)
        code, _, err = _run("--transactions", str(empty), "--lang", "en")
        assert code == 2
        assert "the file has no transactions" in " ".join(err.split())

    binary = tmp_path / "x.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    code, _, err = _run("--transactions", str(binary), "--lang", "en")
    assert code == 2, err
    assert "--transactions" in err
    assert "Traceback" not in err


def test_messages_in_chinese(cdnow_csv: Path) -> None:
    code, _, err = _run(
        "--transactions", str(cdnow_csv), "--columns", "amount=PRICE", "--lang", "zh_CN"
    )
    assert code == 2
    message = " ".join(err.split())
    assert "PRICE" in message
    assert "--columns amount=NAME" in message
    assert "文件中没有" in message


def test_summary_sql_runs_on_postgresql(pg_engine: Engine) -> None:
    """The summary SQL, transpiled by sqlglot, gives the same rows on PostgreSQL as on
    DuckDB (the analytics run it in place on PostgreSQL deployments)."""
    rows = [
        ("a", "2024-01-01 08:00:00", 10),
        ("a", "2024-01-01 20:00:00", 5),
        ("a", "2024-01-08 09:00:00", 20),
        ("a", "2024-01-22 09:00:00", 30),
        ("a", "2024-02-05 09:00:00", 99),
        ("b", "2024-01-15 12:00:00", 1250),
    ]
    sql = clv.summary_sql("clv_tx", until=date(2024, 1, 31), period="week", amount="fee_fen")
    duck = duckdb.connect()
    duck.execute("CREATE TABLE clv_tx (customer_id VARCHAR, date TIMESTAMP, fee_fen BIGINT)")
    duck.executemany("INSERT INTO clv_tx VALUES (?, ?, ?)", rows)
    expected = duck.execute(sql).fetchall()
    assert expected == [("a", 2.0, 3.0, 30 / 7, 25.0), ("b", 0.0, 0.0, 16 / 7, 0.0)]
    pg_sql = sqlglot.transpile(sql, read="duckdb", write="postgres")[0]
    with pg_engine.connect() as conn, conn.begin() as trans:
        conn.execute(
            text(
                "CREATE TEMP TABLE clv_tx (customer_id TEXT, date TIMESTAMP, fee_fen BIGINT)"
                " ON COMMIT DROP"
            )
        )
        conn.execute(
            text("INSERT INTO clv_tx VALUES (:c, CAST(:d AS TIMESTAMP), :f)"),
            [{"c": c, "d": d, "f": f} for c, d, f in rows],
        )
        got = [tuple(r) for r in conn.execute(text(pg_sql)).all()]
        trans.rollback()
    assert [r[0] for r in got] == ["a", "b"]
    for pg_row, duck_row in zip(got, expected, strict=True):
        assert pg_row[1:] == pytest.approx(duck_row[1:], rel=1e-12)
