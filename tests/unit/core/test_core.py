"""Settings, clock, i18n negotiation, pagination cursors and name tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from guanxi.config import Environment, Settings
from guanxi.core import clock, i18n
from guanxi.core.errors import ValidationFailed
from guanxi.core.pagination import decode_cursor, encode_cursor
from guanxi.customers.tokens import name_tokens, query_tokens


def test_production_refuses_default_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(env=Environment.production, data_dir=tmp_path)
    message = str(info.value)
    for name in ("GUANXI_SECRET_KEY", "GUANXI_FIELD_KEYS", "GUANXI_BLIND_INDEX_KEY"):
        assert name in message


def test_development_generates_and_keeps_a_key_file(tmp_path: Path) -> None:
    first = Settings(env=Environment.development, data_dir=tmp_path)
    second = Settings(env=Environment.development, data_dir=tmp_path)
    key_file = tmp_path / "dev-keys.json"
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first.field_keys == second.field_keys
    assert first.secret_key == second.secret_key != "change-me"
    assert first.active_field_key in first.field_keys


def test_frozen_clock() -> None:
    at = datetime(2026, 11, 11, 1, 2, 3, tzinfo=UTC)
    with clock.frozen(at):
        assert clock.now() == at
    assert clock.now() != at
    with pytest.raises(ValueError, match="timezone-aware"):
        with clock.frozen(datetime(2026, 1, 1)):  # noqa: DTZ001 - the point of the test
            pass


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.2,zh-TW;q=0.8", "zh_CN"),
        ("fr-FR", "zh_CN"),
        ("", "zh_CN"),
        ("garbage;q=x", "zh_CN"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert i18n.from_accept_language(header, "zh_CN") == expected


def test_gettext_translates_and_fills_placeholders() -> None:
    assert i18n.gettext("en", "Too long (at most {max_length} characters)", max_length=5) == (
        "Too long (at most 5 characters)"
    )
    assert i18n.gettext("zh_CN", "Not a valid phone number") == "电话号码无效"


def test_cursor_round_trip_and_tampering() -> None:
    assert decode_cursor(encode_cursor(["张三", 42])) == ["张三", 42]
    with pytest.raises(ValidationFailed):
        decode_cursor("not-base64!")
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor({"a": 1}))  # type: ignore[arg-type]


def test_name_tokens() -> None:
    assert name_tokens("张三丰") == {"张三", "三丰"}
    assert name_tokens("杭州顺达物流有限公司") >= {"物流", "顺达", "公司"}
    assert name_tokens("Shunda  Logistics") == {
        "sh",
        "hu",
        "un",
        "nd",
        "da",
        "lo",
        "og",
        "gi",
        "is",
        "st",
        "ti",
        "ic",
        "cs",
    }
    assert name_tokens("ＡＢＣ") == {"ab", "bc"}  # full-width letters normalised
    assert query_tokens("张三") == ["张三"]
    assert query_tokens("张") == []
    assert set(query_tokens("顺达物流")) <= name_tokens("杭州顺达物流有限公司")


def test_threads_and_inline_reads_follow_the_database(tmp_path: Path) -> None:
    lite = Settings(env=Environment.development, data_dir=tmp_path)
    assert lite.is_sqlite
    assert (lite.route_threads, lite.reads_inline) == (2, True)
    pg = Settings(
        env=Environment.development,
        data_dir=tmp_path,
        database_url="postgresql+psycopg://guanxi@127.0.0.1/guanxi",
    )
    assert (pg.route_threads, pg.reads_inline) == (8, False)
    forced = Settings(env=Environment.development, data_dir=tmp_path, inline_reads=False, threads=4)
    assert (forced.route_threads, forced.reads_inline) == (4, False)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2025-06-17 22:19:52.000000", datetime(2025, 6, 17, 22, 19, 52, tzinfo=UTC)),
        ("2025-06-17 22:19:52", datetime(2025, 6, 17, 22, 19, 52, tzinfo=UTC)),
        ("2025-06-17 22:19:52.123456", datetime(2025, 6, 17, 22, 19, 52, 123456, tzinfo=UTC)),
        ("2025-06-17T22:19:52+08:00", datetime(2025, 6, 17, 14, 19, 52, tzinfo=UTC)),
        ("2025-06-17 22:19:52.5-05:30", datetime(2025, 6, 18, 3, 49, 52, 500000, tzinfo=UTC)),
        ("2025-06-17T22:19:52Z", datetime(2025, 6, 17, 22, 19, 52, tzinfo=UTC)),
        (None, None),
    ],
)
def test_sqlite_timestamps_read_as_aware_utc(stored: str | None, expected: datetime | None) -> None:
    """SQLite's text (naive UTC as written, or with an offset from another writer) reads
    as the same instant in UTC, through the one-step reader the SQLite dialect gets."""
    from sqlalchemy.dialects import postgresql, sqlite

    from guanxi.core.types import UTCDateTime

    read = UTCDateTime().result_processor(sqlite.dialect(), None)
    assert read is not None
    value = read(stored)
    assert value == expected
    if value is not None:
        assert value.tzinfo is UTC
    # PostgreSQL keeps the generic path (psycopg returns aware datetimes).
    pg_read = UTCDateTime().result_processor(postgresql.psycopg.dialect(), None)
    assert pg_read is None or pg_read(None) is None
