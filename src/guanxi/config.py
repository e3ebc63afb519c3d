"""Settings: one pydantic-settings class read from ``GUANXI_*`` environment variables.

Outside development the secrets must be set explicitly; in development a key file is
generated once under the data directory and reused, so a laptop install works with no setup
and restarts keep decrypting what they wrote.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"  # noqa: S105 - a sentinel that is refused outside development


class Environment(StrEnum):
    """Where Guanxi runs; decides whether default secrets are tolerated."""

    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """All runtime configuration of a Guanxi process."""

    model_config = SettingsConfigDict(env_prefix="GUANXI_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Path(".guanxi")
    # Where `guanxi audit anchor` appends the audit chain's head (outside the database;
    # default data_dir/audit-anchors). Point it at storage the database's users cannot write.
    audit_anchor_dir: Path | None = None
    # Nightly backups by the worker (backup/jobs.py): the local hour they start (unset: no
    # scheduled backups), the folder (default data_dir/backups) and how many are kept there.
    backup_hour: int | None = Field(default=None, ge=0, le=23)
    backup_dir: Path | None = None
    backup_keep: int = Field(default=14, ge=1, le=1000)
    database_url: str = "sqlite:///./guanxi.db"
    secret_key: str = DEFAULT_SECRET
    # Field-encryption keys as JSON: {"key id": "base64 of 32 bytes", ...}. The active id
    # encrypts new values; the others still decrypt old ones (key rotation).
    field_keys: dict[str, str] = Field(default_factory=dict)
    active_field_key: str = ""
    # Separate key for the blind index (keyed hash used for exact lookup of encrypted values).
    blind_index_key: str = ""
    timezone: str = "Asia/Shanghai"
    default_language: str = "zh_CN"
    session_hours: int = 12
    token_hours: int = 24
    # Account security (security/lockout.py, passwords.py, sessions.py). After
    # login_max_failures wrong passwords in a row an account is locked for
    # login_lockout_minutes, doubled for each further lockout (at most a day); a client
    # address may fail login_address_failures times in that many minutes, whatever names.
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_address_failures: int = Field(default=30, ge=1, le=10_000)
    password_min_length: int = Field(default=10, ge=8, le=128)
    # A browser session unused this long ends (the absolute limit is session_hours).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Administrators must enrol a TOTP second factor before doing anything; refused off
    # in production (the test suite turns it off for the fixtures' administrators).
    admin_second_factor: bool = True
    max_body_bytes: int = 2 * 1024 * 1024
    # Import uploads only (routes marked with core.web.body_limit): spreadsheets of a few
    # million rows run to gigabytes, streamed to disk, never held in memory.
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024
    # One ticket or claim attachment (photo, letter, call recording), stored under
    # data_dir/attachments; its upload routes are marked with core.web.body_limit.
    attachment_max_bytes: int = 10 * 1024 * 1024
    # Threads per process for synchronous routes (database calls). Unset: 2 on SQLite, where
    # work is CPU-bound under one GIL and more threads only contend; 8 on PostgreSQL, where
    # threads also wait on the network.
    threads: int | None = None
    # Run the per-request authentication lookup and hot reads (the 360 view) on the event
    # loop instead of a worker thread. Unset: on for SQLite, whose WAL readers never wait on
    # a lock and whose indexed reads take less time than the thread hop; off for PostgreSQL.
    inline_reads: bool | None = None
    cookie_secure: bool = False
    # Logs (core/logs.py): "json" lines, a readable "console", or "auto" (console in
    # development, JSON elsewhere); the root logger's level.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Reverse proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (addresses
    # or networks): HSTS is sent when one says the browser came over TLS.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # /metrics: only with this bearer token; when empty, only from the loopback address
    # (and never through a proxy).
    metrics_token: str = ""
    # Customer self-service page (selfservice/ratelimit.py), in the `limits` notation
    # "N/period": lookups per client address; failed lookups per waybill (stops guessing the
    # phone's last four digits); tickets filed and messages sent per client address.
    selfservice_lookup_limit: str = "20/minute"
    selfservice_failure_limit: str = "10/hour"
    selfservice_filing_limit: str = "5/hour"
    selfservice_message_limit: str = "20/hour"
    # Minutes a successful lookup stays valid for filing a complaint about that waybill.
    selfservice_proof_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Benchmark only: mount the framework-free twin of the 360 API (see core/bare.py).
    bench_bare: bool = False
    # Where the analytics' SQL runs: DuckDB over a Parquet snapshot of the tables (one
    # machine), PostgreSQL in place (the system of record is PostgreSQL and big), or Spark
    # over the snapshot (or a lake with the same tables) for the biggest.
    analytics_engine: Literal["duckdb", "postgres", "spark"] = "duckdb"
    # The Spark master when analytics_engine or dedupe_engine is spark (local threads by
    # default).
    spark_master: str = "local[2]"
    # Where a full de-duplication run scores pairs: splink on an in-memory DuckDB (one
    # machine, up to a few million customers) or on Spark (dedupe/linkage.py; same model).
    # Separate from analytics_engine: the analytics may run in place on PostgreSQL while
    # linkage, which PostgreSQL cannot run, stays on DuckDB.
    dedupe_engine: Literal["duckdb", "spark"] = "duckdb"
    # The worker's incremental de-duplication (dedupe/jobs.py): minutes from the end of the
    # last finished run until customers added or changed since are scored (unset: off).
    dedupe_interval_minutes: int | None = Field(default=60, ge=5, le=24 * 60)
    # DuckDB's memory ceiling; above it DuckDB spills to data_dir/analytics/spill.
    analytics_memory: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$")
    # Where users reach Guanxi: links in e-mails are made absolute with it.
    base_url: str = "http://127.0.0.1:8000"
    # Outgoing e-mail (notify/mail.py). An empty host turns e-mail off: mails wait in the
    # outbox until a host is set. smtp_ssl (implicit TLS, port 465) wins over smtp_starttls.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    mail_from: str = "Guanxi <noreply@localhost>"
    # Seconds per SMTP operation; keep well under the outbox lease (notify/outbox.py).
    smtp_timeout: float = 30.0
    # Outgoing SMS (notify/sms/): "file" (the embedded default: one JSON line per text in
    # data_dir/sms/outbox.jsonl), "console" (the log), or a gateway: "aliyun" (Dysmsapi,
    # key id + secret) or "tencent" (SMS API 3.0: SecretId + SecretKey, SDK app id).
    sms_provider: Literal["file", "console", "aliyun", "tencent"] = "file"
    sms_key_id: str = ""
    sms_key_secret: str = ""
    sms_app_id: str = ""
    # The approved signature (签名) of templates that name none.
    sms_sign_name: str = "关系客服"
    # Empty: the provider's public endpoint.
    sms_endpoint: str = ""
    sms_region: str = ""
    sms_timeout: float = 10.0
    # The secret path segment of the delivery-report and reply callbacks the provider
    # calls; empty turns the callbacks off.
    sms_callback_token: str = ""
    # The file gateway writes numbers in clear (a test bench); masked otherwise.
    sms_file_clear_numbers: bool = False

    @model_validator(mode="after")
    def _sms_gateway(self) -> Settings:
        # A gateway without credentials would fail every text: refuse to start instead.
        if self.sms_provider in ("aliyun", "tencent"):
            needed = ["sms_key_id", "sms_key_secret"]
            if self.sms_provider == "tencent":
                needed.append("sms_app_id")
            missing = [f"GUANXI_{n.upper()}" for n in needed if not getattr(self, n)]
            if missing:
                raise ValueError(
                    f"GUANXI_SMS_PROVIDER={self.sms_provider} needs " + ", ".join(missing)
                )
        return self

    @model_validator(mode="after")
    def _rate_limits(self) -> Settings:
        # A mistyped limit must stop the start, not fail the first customer's request.
        from limits import parse

        for name in (
            "selfservice_lookup_limit",
            "selfservice_failure_limit",
            "selfservice_filing_limit",
            "selfservice_message_limit",
        ):
            try:
                parse(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"GUANXI_{name.upper()}: not a rate limit like 20/minute") from exc
        return self

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.env is Environment.production:
            missing = [
                name
                for name, bad in (
                    ("GUANXI_SECRET_KEY", self.secret_key in ("", DEFAULT_SECRET)),
                    ("GUANXI_FIELD_KEYS", not self.field_keys),
                    ("GUANXI_ACTIVE_FIELD_KEY", self.active_field_key not in self.field_keys),
                    ("GUANXI_BLIND_INDEX_KEY", not self.blind_index_key),
                )
                if bad
            ]
            if self.bench_bare:
                missing.append("GUANXI_BENCH_BARE (benchmark only)")
            if not self.admin_second_factor:
                missing.append("GUANXI_ADMIN_SECOND_FACTOR (must stay on)")
            if missing:
                raise ValueError(
                    "refusing to start outside development with default or missing secrets: "
                    + ", ".join(missing)
                )
        else:
            self._fill_dev_keys()
        return self

    def _fill_dev_keys(self) -> None:
        """Generate (once) and load a local key file so development needs no configuration."""
        if self.secret_key != DEFAULT_SECRET and self.field_keys and self.blind_index_key:
            return
        path = self.data_dir / "dev-keys.json"
        if path.exists():
            keys: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        else:
            keys = {
                "secret_key": secrets.token_urlsafe(32),
                "field_keys": {"dev1": base64.b64encode(secrets.token_bytes(32)).decode()},
                "active_field_key": "dev1",
                "blind_index_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written with owner-only permissions: it decrypts every personal field.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(keys, fh)
        if self.secret_key == DEFAULT_SECRET:
            self.secret_key = keys["secret_key"]
        if not self.field_keys:
            self.field_keys = keys["field_keys"]
            self.active_field_key = keys["active_field_key"]
        if not self.active_field_key:
            self.active_field_key = next(iter(self.field_keys))
        if not self.blind_index_key:
            self.blind_index_key = keys["blind_index_key"]

    @property
    def route_threads(self) -> int:
        """How many threads serve synchronous routes in one process."""
        return self.threads or (2 if self.is_sqlite else 8)

    @property
    def reads_inline(self) -> bool:
        """Whether short read-only database calls run on the event loop (see inline_reads)."""
        return self.is_sqlite if self.inline_reads is None else self.inline_reads

    @property
    def is_sqlite(self) -> bool:
        """True when the system of record is the embedded SQLite database."""
        return self.database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
