"""De-duplication on Spark: the same splink model on a local Spark session scores the same
pairs with the same probabilities as on DuckDB, a full run chooses Spark from the settings,
and Spark's scratch files stay encrypted under data_dir and are removed afterwards.

One Spark session serves the module (starting one takes 10-20 s): ``linkage.spark_session``
reuses a session it opened itself, so the runs below score on the module's session.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import Engine, select

from guanxi.audit.service import Actor
from guanxi.core.db import make_engine, make_sessionmaker
from guanxi.core.migrate import upgrade
from guanxi.dedupe import features, linkage, service
from guanxi.dedupe.models import DuplicatePair
from guanxi.demo.generator import generate
from tests.conftest import settings_for

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
BOT = Actor.system("test")
MASTER = "local[2]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-data")


@pytest.fixture(scope="module")
def spark(data_dir: Path) -> Iterator[Any]:
    """The module's Spark session; on teardown its scratch folder must be gone."""
    root = data_dir / "spark-tmp"
    with linkage.spark_session(MASTER, root) as session:
        yield session
    assert list(root.iterdir()) == []


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, set[tuple[int, int]]]:
    """The features of 3,000 generated customers with 90 planted duplicates."""
    path = tmp_path_factory.mktemp("spark-base") / "base.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    summary = generate(engine, customers=3000, seed=3, now=NOW, duplicate_rate=0.03)
    with make_sessionmaker(engine)() as session:
        table = features.load_features(session)
    engine.dispose()
    return table, set(summary.duplicates)


def test_spark_scores_the_same_pairs_with_the_same_probabilities(
    spark: Any, data_dir: Path, base: tuple[pa.Table, set[tuple[int, int]]]
) -> None:
    table, truth = base
    on_duck = {(p.left, p.right): p for p in linkage.score_all(table)}
    engine = linkage.SparkEngine(MASTER, data_dir / "spark-tmp")
    on_spark = {(p.left, p.right): p for p in linkage.score_all(table, spark=engine)}
    assert set(on_spark) == set(on_duck)
    # The same SQL arithmetic in double precision on both engines: equal to the last bits
    # here; 1e-9 leaves room for a different summation order on a cluster.
    assert [
        k for k in on_duck if abs(on_spark[k].probability - on_duck[k].probability) > 1e-9
    ] == []
    assert [k for k in on_duck if abs(on_spark[k].weight - on_duck[k].weight) > 1e-9] == []
    assert [k for k in on_duck if on_spark[k].agreed != on_duck[k].agreed] == []
    sure = {k for k, p in on_spark.items() if p.probability >= service.AUTO_THRESHOLD}
    assert sure == truth


def test_the_scratch_files_are_encrypted_under_data_dir(
    spark: Any, data_dir: Path, base: tuple[pa.Table, set[tuple[int, int]]]
) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.io.encryption.enabled") == "true"
    scratch = Path(conf.get("spark.local.dir"))
    assert scratch.parent == data_dir / "spark-tmp"
    assert oct(scratch.stat().st_mode & 0o777) == "0o700"
    linkage.score_all(base[0], spark=linkage.SparkEngine(MASTER, data_dir / "spark-tmp"))
    written = [p for p in scratch.rglob("*") if p.is_file()]
    # Shuffle files exist (the check below is not vacuous) and no intermediate table was
    # checkpointed as Parquet (splink's default on Spark writes each one in clear).
    assert any(p.name.startswith("shuffle_") for p in written)
    assert [p for p in written if p.suffix == ".parquet"] == []
    assert not (Path.cwd() / "spark-warehouse").exists()


def test_a_full_run_scores_on_spark_when_the_settings_say_so(
    spark: Any, data_dir: Path, committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[Any] = []
    predict = linkage._predict_on_spark

    def counted(session: Any, table: pa.Table, keep_from: float) -> list[linkage.ScoredPair]:
        sessions.append(session)
        return predict(session, table, keep_from)

    monkeypatch.setattr(linkage, "_predict_on_spark", counted)
    summary = generate(committed_engine, customers=600, seed=5, now=NOW, duplicate_rate=0.05)
    truth = set(summary.duplicates)
    assert len(truth) == 30
    url = committed_engine.url.render_as_string(hide_password=False)
    settings = settings_for(url, data_dir).model_copy(
        update={"dedupe_engine": "spark", "spark_master": MASTER}
    )
    session = make_sessionmaker(committed_engine)()
    try:
        run = service.run(session, actor=BOT, auto_merge=False, settings=settings)
        stored = {
            (left, right): probability
            for left, right, probability in session.execute(
                select(DuplicatePair.left_id, DuplicatePair.right_id, DuplicatePair.probability)
            )
        }
    finally:
        session.close()
    # The run scored once, on the module's Spark session.
    assert sessions == [spark]
    assert {k for k, p in stored.items() if p >= service.AUTO_THRESHOLD} == truth
    assert run.candidates == len(stored)


def test_the_typo_level_keeps_numbered_names_apart_on_spark(spark: Any, data_dir: Path) -> None:
    # Two pairs sharing a phone: a one-character typo in a name (the typo level speaks for a
    # match) and shop names one digit apart (the level's DuckDB regex, translated to Spark,
    # must exclude them: the name then speaks against).
    rows = [
        (1, "华联超市3号店", "p-one"),
        (2, "华联超市5号店", "p-one"),
        (3, "张伟明", "p-two"),
        (4, "张伟民", "p-two"),
    ]
    table = pa.Table.from_pylist(
        [
            {"unique_id": uid, "kind": "individual", "name_n": name, "name_core": name}
            | {"phones": [phone], "city": "杭州市"}
            for uid, name, phone in rows
        ],
        schema=features.SCHEMA,
    )
    engine = linkage.SparkEngine(MASTER, data_dir / "spark-tmp")
    on_duck = {(p.left, p.right): p for p in linkage.score_all(table, keep_from=0.0)}
    on_spark = {(p.left, p.right): p for p in linkage.score_all(table, keep_from=0.0, spark=engine)}
    assert set(on_duck) == set(on_spark) == {(1, 2), (3, 4)}
    assert {k: p.agreed for k, p in on_spark.items()} == {
        (1, 2): ("phones",),
        (3, 4): ("name", "phones"),
    }
    assert [
        k for k in on_duck if abs(on_spark[k].probability - on_duck[k].probability) > 1e-9
    ] == []
    assert on_spark[(3, 4)].probability > on_spark[(1, 2)].probability
