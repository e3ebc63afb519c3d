"""Backups of one installation: the database and the record files, with a manifest to check
them against; verification by a real restore into a scratch database; restore.

- **SQLite**: the online backup API (``sqlite3.Connection.backup``) copies every page in one
  step, i.e. one read transaction: in WAL mode the app keeps writing meanwhile, and the copy
  is the database as it was when the step began.
- **PostgreSQL**: ``pg_dump --format=custom`` with a snapshot exported by our own
  ``REPEATABLE READ`` transaction, so the row counts written to the manifest are counted in
  exactly the snapshot that was dumped while the app keeps writing.
- **Files**: the records kept under the data directory (ticket and claim attachments,
  contracts' documents: ``data_dir/attachments``), copied after the database snapshot.
  A file is written before its row is committed, so every row in the snapshot finds its
  file; files added after the snapshot are copied too and are harmless orphans.

Not in a backup: the field-encryption keys (``dev-keys.json`` or the environment; keep them
apart, so a stolen backup reveals no personal value), import uploads waiting to be
processed, the analytics snapshot (recomputed from the tables) and the SMS file gateway's
test outbox. The manifest records the key ids with a fingerprint so a restore can tell
whether the configured keys will decrypt what it restores.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from guanxi import __version__, domains
from guanxi.audit.service import Actor, record
from guanxi.backup.manifest import (
    DATABASE_FILES,
    FILES,
    FORMAT,
    MANIFEST,
    AuditHead,
    FileEntry,
    Manifest,
    ManifestError,
    read_manifest,
    sha256_of,
    write_manifest,
)
from guanxi.config import Settings
from guanxi.core import clock
from guanxi.core.db import make_engine, make_sessionmaker, write_transaction

# Folders under the data directory that hold records (rows point at their files). Keys,
# uploads in progress, analytics files and the SMS test outbox are deliberately left out.
RECORD_FOLDERS = ("attachments",)
# Tables whose rows mean "this database is in use": migrations seed reference rows
# (categories, templates) but never users, customers or audit entries.
_DATA_TABLES = ("app_user", "customer", "audit_log")
_AUDIT_TABLE = "audit_log"
_PREFIX = "guanxi-"
_PARTIAL = ".partial"
# libpq settings that may arrive in the URL's query string, passed to pg_dump / pg_restore
# through their environment variables (never on the command line).
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}

# (stage, done, total): what the command line turns into progress bars.
ProgressFn = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


class BackupError(Exception):
    """A backup, verification or restore refused or failed; the message says why."""


@dataclass(frozen=True)
class Facts:
    """What a database holds, counted in one snapshot."""

    tables: dict[str, int]
    audit_head: AuditHead | None
    alembic_revision: str | None


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: where it is, its manifest, how long it took, what was pruned."""

    path: Path
    manifest: Manifest
    seconds: float
    pruned: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class CheckReport:
    """The outcome of checking a backup (``verify``) or a restored database (``restore``):
    empty ``problems`` means everything matched the manifest."""

    manifest: Manifest | None
    problems: list[str]
    tables_checked: int = 0
    audit_entries: int = 0
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is off."""
        return not self.problems


# --------------------------------------------------------------------------- helpers


def key_fingerprints(settings: Settings) -> dict[str, str]:
    """Key id -> the first 16 hex digits of the SHA-256 of the key: enough to tell keys
    apart, useless for decrypting anything."""
    return {
        kid: hashlib.sha256(base64.b64decode(value)).hexdigest()[:16]
        for kid, value in settings.field_keys.items()
    }


def dialect_of(url: str) -> str:
    """``sqlite`` or ``postgresql`` for a database URL; BackupError for anything else."""
    name = make_url(url).get_backend_name()
    if name not in DATABASE_FILES:
        raise BackupError(f"unsupported database {name!r}: only SQLite and PostgreSQL")
    return name


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(database)


def _plain_engine(url: str) -> Engine:
    # No pool and none of make_engine's tuning: a backup copy must not be switched to WAL
    # or otherwise changed by being looked at.
    return create_engine(url, poolclass=NullPool)


def _facts(conn: Connection) -> Facts:
    """Row counts of every table, the audit chain's head and the schema revision, read
    through ``conn`` (inside its current transaction: one snapshot)."""
    names = sorted(inspect(conn).get_table_names())
    counts = {
        name: int(conn.scalar(select(func.count()).select_from(table(name))) or 0) for name in names
    }
    head = None
    if _AUDIT_TABLE in counts:
        row = conn.execute(
            text(f"SELECT id, hash FROM {_AUDIT_TABLE} ORDER BY id DESC LIMIT 1")  # noqa: S608
        ).first()
        head = None if row is None else AuditHead(id=int(row[0]), hash=str(row[1]))
    revision = None
    if "alembic_version" in counts:
        revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return Facts(counts, head, revision)


def _pg_tool(name: str) -> str:
    """The newest installed PostgreSQL client program ``name`` (pg_dump must be at least
    the server's version): Debian's versioned folders first, then the PATH."""

    def version(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/bin/", path)
        return int(match.group(1)) if match else 0

    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found: install the PostgreSQL client programs")


def _pg_connection(url: str) -> tuple[list[str], dict[str, str]]:
    """Command-line options and environment for pg_dump / pg_restore: the password goes
    in PGPASSWORD, never on the command line (where ``ps`` shows it)."""
    parsed = make_url(url)
    args = ["--no-password"]
    if parsed.host:
        args += ["--host", parsed.host]
    if parsed.port:
        args += ["--port", str(parsed.port)]
    if parsed.username:
        args += ["--username", parsed.username]
    args += ["--dbname", parsed.database or "postgres"]
    # The rest of the environment is inherited: a PGPASSWORD or ~/.pgpass that lets the
    # app's own connections in (libpq reads both) lets these programs in too.
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    for key, value in parsed.query.items():
        if key in _LIBPQ_ENV:
            env[_LIBPQ_ENV[key]] = value if isinstance(value, str) else value[-1]
    return args, env


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackupError(f"{what} failed: " + " / ".join(detail))


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` in a stable order; symbolic links are never followed."""
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _copy_file(source: Path, target: Path) -> tuple[int, str]:
    """Copy one file owner-only, returning the copy's size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    # The source first: when it has gone, no empty copy is left behind.
    with source.open("rb") as src:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            while chunk := src.read(1 << 20):
                size += len(chunk)
                digest.update(chunk)
                out.write(chunk)
    return size, digest.hexdigest()


def _safe_relative(rel: str) -> PurePosixPath:
    """A manifest path, refused when it could point outside the backup (``..``, absolute)."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ManifestError(f"{rel}: not a path inside the backup")
    return path


def _audit(url: str, actor: Actor, action: str, target: str, after: dict[str, object]) -> None:
    """One audit entry in the database at ``url``: a backup copies every customer's data,
    a restore replaces it; both belong in the log."""
    engine = make_engine(url, sqlite_mmap_bytes=0)
    try:
        with make_sessionmaker(engine)() as session, write_transaction(session):
            record(
                session, actor=actor, action=action, target_type="backup", target_id=target,
                after=after,
            )  # fmt: skip
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- create


def _new_directory(to: Path) -> tuple[Path, Path]:
    """(the working directory, its final name): a backup is written under a ``.partial``
    name and renamed when complete, so an interrupted one is never taken for a backup."""
    to.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    final = to / f"{_PREFIX}{stamp}"
    n = 1
    while final.exists() or final.with_name(final.name + _PARTIAL).exists():
        n += 1
        final = to / f"{_PREFIX}{stamp}-{n}"
    work = final.with_name(final.name + _PARTIAL)
    work.mkdir(mode=0o700)
    return work, final


def _backup_sqlite(url: str, out: Path) -> Facts:
    source = _sqlite_file(url)
    if not source.is_file():
        raise BackupError(f"database file {source} not found")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(out)
    try:
        # pages=-1: every page in one step, one read transaction, one consistent copy
        # (stepping page by page would restart the copy at every concurrent write).
        src.backup(dst, pages=-1)
        # A self-contained file: no -wal / -shm companions appear next to the copy.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    os.chmod(out, 0o600)
    engine = _plain_engine(f"sqlite:///{out}")
    try:
        with engine.connect() as conn:
            return _facts(conn)
    finally:
        engine.dispose()


def _backup_postgresql(url: str, out: Path) -> Facts:
    args, env = _pg_connection(url)
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # Our snapshot, handed to pg_dump: the counts below and the dump see the
                # same rows however many transactions commit meanwhile.
                snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
                facts = _facts(conn)
                _run(
                    [
                        _pg_tool("pg_dump"),
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        f"--file={out}",
                        *args,
                    ],
                    env,
                    "pg_dump",
                )
    finally:
        engine.dispose()
    os.chmod(out, 0o600)
    return facts


def create_backup(
    settings: Settings,
    *,
    to: Path | None = None,
    keep: int | None = None,
    progress: ProgressFn = _no_progress,
    actor: Actor | None = None,
) -> BackupResult:
    """Back up the database and the record files into a new directory under ``to``
    (default ``data_dir/backups``) while the app keeps running; write the manifest last,
    then the audit entry ``backup.created`` (by ``actor``, default the system).

    ``keep``: afterwards remove all but the newest ``keep`` complete backups in ``to``.
    """
    started = time.monotonic()
    domains.load()
    dialect = dialect_of(settings.database_url)
    to = Path(to) if to is not None else Path(settings.data_dir) / "backups"
    work, final = _new_directory(to)
    try:
        database_file = DATABASE_FILES[dialect]
        taken = clock.now()  # the snapshot's moment, give or take the copy's start
        progress("database", 0, 1)
        if dialect == "sqlite":
            facts = _backup_sqlite(settings.database_url, work / database_file)
        else:
            facts = _backup_postgresql(settings.database_url, work / database_file)
        progress("database", 1, 1)
        size, digest = sha256_of(work / database_file)
        files = {database_file: FileEntry(size=size, sha256=digest)}
        data_dir = Path(settings.data_dir)
        sources = [p for folder in RECORD_FOLDERS for p in _walk(data_dir / folder)]
        for n, source in enumerate(sources, 1):
            rel = PurePosixPath(FILES, *source.relative_to(data_dir).parts)
            try:
                size, digest = _copy_file(source, work / rel)
            except FileNotFoundError:
                # Removed since the walk (a failed upload cleaning up): nothing to keep.
                continue
            files[str(rel)] = FileEntry(size=size, sha256=digest)
            progress("files", n, len(sources))
        manifest = Manifest(
            format=FORMAT,
            created_at=taken,
            guanxi_version=__version__,
            alembic_revision=facts.alembic_revision,
            dialect=dialect,
            database_file=database_file,
            tables=facts.tables,
            audit_head=facts.audit_head,
            active_field_key=settings.active_field_key,
            field_key_fingerprints=key_fingerprints(settings),
            files=files,
        )
        write_manifest(work, manifest)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _audit(
        settings.database_url,
        actor or Actor.system("backup"),
        "backup.created",
        final.name,
        {
            "rows": sum(manifest.tables.values()),
            "files": len(manifest.files) - 1,
            "audit_head": None if manifest.audit_head is None else manifest.audit_head.id,
        },
    )
    pruned = prune(to, keep) if keep is not None else []
    return BackupResult(final, manifest, time.monotonic() - started, pruned)


def list_backups(to: Path) -> list[Path]:
    """Complete backups (with a manifest) in ``to``, oldest first."""
    if not to.is_dir():
        return []
    return sorted(
        p
        for p in to.iterdir()
        if p.is_dir()
        and p.name.startswith(_PREFIX)
        and not p.name.endswith(_PARTIAL)
        and (p / MANIFEST).is_file()
    )


def prune(to: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups in ``to``; the removed paths."""
    if keep < 1:
        raise BackupError("keep at least one backup")
    old = list_backups(to)[:-keep]
    for path in old:
        shutil.rmtree(path)
    return old


# --------------------------------------------------------------------------- checks


def check_files(directory: Path, manifest: Manifest) -> tuple[int, list[str]]:
    """Every file of the manifest present with its size and SHA-256, and nothing else in
    the backup: (files checked, problems)."""
    problems: list[str] = []
    if manifest.database_file not in manifest.files:
        problems.append(f"{manifest.database_file}: not listed in the manifest")
    for rel, entry in sorted(manifest.files.items()):
        path = directory / _safe_relative(rel)
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size, digest = sha256_of(path)
        if size != entry.size or digest != entry.sha256:
            problems.append(f"{rel}: checksum mismatch (changed or corrupted)")
    present = {p.relative_to(directory).as_posix() for p in _walk(directory)}
    for rel in sorted(present - set(manifest.files) - {MANIFEST}):
        problems.append(f"{rel}: not in the manifest")
    return len(manifest.files), problems


def compare(manifest: Manifest, facts: Facts) -> list[str]:
    """Differences between a restored database and the manifest's figures."""
    problems = []
    for name, expected in sorted(manifest.tables.items()):
        got = facts.tables.get(name)
        if got is None:
            problems.append(f"table {name}: missing")
        elif got != expected:
            problems.append(f"table {name}: {got} rows, the manifest says {expected}")
    for name in sorted(set(facts.tables) - set(manifest.tables)):
        problems.append(f"table {name}: not in the manifest")
    if facts.alembic_revision != manifest.alembic_revision:
        problems.append(
            f"schema revision {facts.alembic_revision}, the manifest says "
            f"{manifest.alembic_revision}"
        )
    if facts.audit_head != manifest.audit_head:
        problems.append("audit chain: its last entry differs from the manifest's")
    return problems


def _check_database(engine: Engine, manifest: Manifest) -> tuple[int, int, list[str]]:
    """Counts, revision and audit chain of a restored database against the manifest:
    (tables checked, audit entries walked, problems)."""
    from guanxi.audit.service import verify

    with engine.connect() as conn:
        facts = _facts(conn)
    problems = compare(manifest, facts)
    with Session(engine) as session:
        count, breaks = verify(session)
    for brk in breaks[:5]:
        problems.append(f"audit chain broken at entry {brk.entry_id}: {brk.problem}")
    if len(breaks) > 5:
        problems.append(f"audit chain: {len(breaks) - 5} more problems")
    return len(facts.tables), count, problems


@contextmanager
def _scratch_postgres(server_url: str) -> Iterator[str]:
    """A temporary database on the server of ``server_url`` (dropped afterwards)."""
    name = f"guanxi_verify_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _pg_restore(dump: Path, url: str) -> None:
    args, env = _pg_connection(url)
    _run(
        [
            _pg_tool("pg_restore"),
            # Objects belong to whoever restores (the app's role on the target server).
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            *args,
            str(dump),
        ],
        env,
        "pg_restore",
    )


def verify_backup(
    directory: Path, settings: Settings, *, scratch_url: str | None = None
) -> CheckReport:
    """Check a backup: checksums of every file, then a real restore into a scratch database
    (SQLite: a temporary file, ``PRAGMA integrity_check``; PostgreSQL: a temporary database
    on ``scratch_url``'s server, default the configured one) whose row counts, schema
    revision and audit chain must match the manifest. Nothing of the installation changes.
    """
    domains.load()
    try:
        manifest = read_manifest(directory)
        files_checked, problems = check_files(directory, manifest)
    except ManifestError as exc:
        return CheckReport(None, [str(exc)])
    if problems:
        # A changed byte is reason enough; restoring it would only add noise.
        return CheckReport(manifest, problems, files_checked=files_checked)
    dump = directory / manifest.database_file
    if manifest.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="guanxi-verify-") as tmp:
            scratch = Path(tmp) / "scratch.sqlite3"
            shutil.copyfile(dump, scratch)
            try:
                with sqlite3.connect(scratch) as raw:
                    integrity = [row[0] for row in raw.execute("PRAGMA integrity_check")]
                raw.close()
            except sqlite3.DatabaseError as exc:
                return CheckReport(manifest, [f"{manifest.database_file}: {exc}"])
            if integrity != ["ok"]:
                return CheckReport(manifest, [f"integrity check: {line}" for line in integrity[:5]])
            engine = _plain_engine(f"sqlite:///{scratch}")
            try:
                tables, audited, problems = _check_database(engine, manifest)
            finally:
                engine.dispose()
    else:
        server = scratch_url or settings.database_url
        if dialect_of(server) != "postgresql":
            return CheckReport(
                manifest,
                ["a PostgreSQL backup is verified on a PostgreSQL server: give --scratch-url"],
            )
        with _scratch_postgres(server) as url:
            try:
                _pg_restore(dump, url)
            except BackupError as exc:
                return CheckReport(manifest, [str(exc)], files_checked=files_checked)
            engine = _plain_engine(url)
            try:
                tables, audited, problems = _check_database(engine, manifest)
            finally:
                engine.dispose()
    return CheckReport(manifest, problems, tables, audited, files_checked)


# --------------------------------------------------------------------------- restore


def _key_problems(manifest: Manifest, settings: Settings) -> list[str]:
    configured = key_fingerprints(settings)
    problems = []
    if manifest.active_field_key not in configured:
        problems.append(
            f"field key {manifest.active_field_key!r} (active when the backup was made) is not "
            "configured: set GUANXI_FIELD_KEYS to the keys kept with this installation"
        )
    for kid, fingerprint in sorted(manifest.field_key_fingerprints.items()):
        if kid in configured and configured[kid] != fingerprint:
            problems.append(f"field key {kid!r} is not the key the backup was made with")
    return problems


def _known_revision(revision: str) -> bool:
    """Whether this version's migrations know ``revision`` (a newer version's backup
    would leave a schema this code cannot run on)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from guanxi.core.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _holds_data(engine: Engine) -> tuple[bool, list[str]]:
    """(whether the database holds users, customers or audit entries, its tables)."""
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            used = any(
                conn.scalar(select(func.count()).select_from(table(name)))
                for name in _DATA_TABLES
                if name in names
            )
    except OperationalError as exc:
        raise BackupError(
            f"cannot open the target database (create it first): {exc.orig}"
        ) from None
    return used, names


def _files_present(data_dir: Path) -> bool:
    return any(next(_walk(data_dir / folder), None) is not None for folder in RECORD_FOLDERS)


def _clear_postgresql(engine: Engine) -> None:
    """Drop every table, view and sequence of the target's schema (the restore recreates
    the whole schema as it was in the backup)."""
    with engine.begin() as conn:
        views = conn.scalars(
            text("SELECT viewname FROM pg_views WHERE schemaname = current_schema()")
        ).all()
        for name in views:
            conn.execute(text(f'DROP VIEW IF EXISTS "{name}" CASCADE'))
        tables = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).all()
        for name in tables:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        sequences = conn.scalars(
            text(
                "SELECT sequence_name FROM information_schema.sequences "
                "WHERE sequence_schema = current_schema()"
            )
        ).all()
        for name in sequences:
            conn.execute(text(f'DROP SEQUENCE IF EXISTS "{name}" CASCADE'))


def _restore_sqlite(dump: Path, url: str) -> None:
    target = _sqlite_file(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(dump)
    dst = sqlite3.connect(target, timeout=30)
    try:
        # The backup API again, the other way: it replaces the target's pages under the
        # target's own locks, so a stale -wal file cannot mix old pages into the result.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


def restore_backup(
    directory: Path,
    settings: Settings,
    *,
    target_url: str | None = None,
    data_dir: Path | None = None,
    force: bool = False,
    progress: ProgressFn = _no_progress,
    actor: Actor | None = None,
) -> CheckReport:
    """Restore a backup into ``target_url`` (default: the configured database) and
    ``data_dir`` (default: the configured one), then check the result against the manifest.

    Refused (BackupError, nothing changed) when the backup's files do not match their
    checksums, the database kinds differ, the configured field keys are not the backup's,
    or the target already holds users, customers, audit entries or record files and
    ``force`` is not given. Stop the app servers and workers first. A restore that matches
    its manifest continues the restored audit chain with ``backup.restored``.
    """
    domains.load()
    url = target_url or settings.database_url
    data_dir = Path(data_dir) if data_dir is not None else Path(settings.data_dir)
    try:
        manifest = read_manifest(directory)
        _, problems = check_files(directory, manifest)
    except ManifestError as exc:
        raise BackupError(str(exc)) from None
    if problems:
        raise BackupError("the backup does not match its manifest: " + "; ".join(problems[:5]))
    if dialect_of(url) != manifest.dialect:
        raise BackupError(
            f"a {manifest.dialect} backup cannot be restored into a {dialect_of(url)} database"
        )
    problems = _key_problems(manifest, settings)
    if problems:
        raise BackupError("; ".join(problems))
    if manifest.alembic_revision is not None and not _known_revision(manifest.alembic_revision):
        raise BackupError(
            f"the backup's schema revision {manifest.alembic_revision} is unknown to Guanxi "
            f"{__version__}: restore it with the version that made it "
            f"({manifest.guanxi_version}) or a newer one"
        )

    engine = _plain_engine(url)
    tables: list[str] = []
    try:
        if manifest.dialect == "sqlite" and not _sqlite_file(url).exists():
            used = False
        else:
            used, tables = _holds_data(engine)
        if (used or _files_present(data_dir)) and not force:
            raise BackupError(
                "the target is not empty (users, customers, audit entries or record files): "
                "give --force to replace it"
            )
        dump = directory / manifest.database_file
        progress("database", 0, 1)
        if manifest.dialect == "sqlite":
            engine.dispose()
            _restore_sqlite(dump, url)
        else:
            if tables:
                _clear_postgresql(engine)
            _pg_restore(dump, url)
        progress("database", 1, 1)

        for folder in RECORD_FOLDERS:
            shutil.rmtree(data_dir / folder, ignore_errors=True)
        entries = sorted(
            (rel, entry) for rel, entry in manifest.files.items() if rel.startswith(FILES + "/")
        )
        problems = []
        for n, (rel, entry) in enumerate(entries, 1):
            parts = _safe_relative(rel).parts[1:]
            size, digest = _copy_file(directory / rel, data_dir.joinpath(*parts))
            if (size, digest) != (entry.size, entry.sha256):
                problems.append(f"{rel}: restored copy differs from the manifest")
            progress("files", n, len(entries))
        tables_checked, audited, db_problems = _check_database(engine, manifest)
    finally:
        engine.dispose()
    if not problems and not db_problems:
        _audit(
            url,
            actor or Actor.system("backup"),
            "backup.restored",
            directory.name,
            {"made_at": manifest.created_at.isoformat(), "rows": sum(manifest.tables.values())},
        )
    return CheckReport(
        manifest, problems + db_problems, tables_checked, audited, files_checked=len(entries)
    )
