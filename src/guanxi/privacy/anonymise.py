"""Deletion as anonymisation (PIPL art. 47; GB/T 35273-2020 §3.14).

A deleted customer keeps what aggregates need — the record's id, kind, region, status
and owner; shipments with their counts, amounts, dates and origin/destination
province and city; tickets with their category, times, status and satisfaction; points,
coupons, campaign figures — and loses every piece of personal information:

- the name (replaced by ``***``), the encrypted identifiers and their blind indexes, the
  birthday, the customer number, the notes; phones and contact persons (rows removed),
  the address lines (the division — province, city, district — stays for regional
  statistics); the name-search index;
- free text written about the person: tickets' subjects and descriptions, their timeline
  notes, claims' evidence and notes, interactions and action items, survey answers' text,
  opportunities and contracts' texts, pool notes, points and coupon reasons;
- receivers' names and phones on shipments; e-mail addresses on tickets and the private
  self-service link (its hash);
- the outbox's recipients, parameters and message bodies (and the lines of the local SMS
  file those messages were written to);
- attachment and contract document files (rows and bytes on disk);
- duplicate candidate pairs and the stored values of merges (a merge with an anonymised
  customer can no longer be undone); records merged into the customer are anonymised
  with it (the same person);
- occurrences of the person's name and identifiers in other texts that cannot be tied
  to the customer by key: users' notifications, import row errors, privacy requests,
  complaint-term statistics;
- the analytics snapshot: the tickets' rows are changed (version bumped), so the next
  refresh re-copies their blocks; when a snapshot exists it is refreshed at once.

Each domain owns its tables: the statements for each domain's rows are functions of that
domain's ``purge`` module (``anonymise_<domain>_data`` for the rows keyed to the customer;
for texts found by the person's values: ``anonymise_notification_texts``,
``anonymise_analytics_data``, ``anonymise_imports_data``, on the shared helpers of
:mod:`guanxi.core.scrub`). This module only orchestrates them, in one transaction
per batch, and writes privacy's own tables (the requests' texts, the anonymisation
records).

The audit log is append-only and hash-chained: it is not rewritten. The personal texts it
holds about a customer were sealed under the customer's audit key
(:mod:`guanxi.audit.sealing`); the keys of the anonymised customers are deleted
(crypto-shredding), so those texts can no longer be read. Each anonymised customer gets
one audit entry and one :class:`~guanxi.privacy.models.Anonymisation` row.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from guanxi.audit.sealing import shred
from guanxi.audit.service import Actor, record_many
from guanxi.config import Settings, get_settings
from guanxi.core import clock
from guanxi.core.db import write_transaction
from guanxi.core.errors import FieldError, ValidationFailed
from guanxi.core.scrub import replace_in
from guanxi.customers.models import (
    ContactPerson,
    Customer,
    CustomerAddress,
    CustomerPhone,
)
from guanxi.security.crypto import cipher

log = logging.getLogger("guanxi.privacy.anonymise")

# What replaces a text that may not be empty (a name, a subject).
ANON = "***"
# Customers per transaction: each batch is a few dozen set-oriented statements.
BATCH = 200
# Needles shorter than this are not searched for in unrelated texts (too many false hits).
_MIN_NEEDLE = 2


@dataclass
class _Batch:
    """What one batch found and changed."""

    ids: list[int]
    # The person's values in clear (names, identifiers, address lines) and, among them,
    # the names: what staff texts (notifications, term statistics) can hold in clear.
    needles: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    outbox_keys: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


def _decrypt(kind: str, stored: str | None) -> str | None:
    return cipher().decrypt(kind, stored) if stored else None


def _phone_forms(e164: str | None) -> set[str]:
    """The ways a phone number is written in free text: E.164 and the national digits."""
    if not e164:
        return set()
    forms = {e164}
    if e164.startswith("+86"):
        forms.add(e164[3:])
    return forms


def _usable(values: Iterable[str | None]) -> set[str]:
    return {v for v in values if v and len(v) >= _MIN_NEEDLE and v != ANON}


def _needles(session: Session, ids: list[int]) -> tuple[set[str], set[str]]:
    """The customers' personal values in clear, to find them in texts not keyed to them:
    (every value, the names among them)."""
    out: set[str] = set()
    names: set[str] = set()
    for name, ext, email, idn, ucc in session.execute(
        select(
            Customer.name,
            Customer.external_id,
            Customer.email_enc,
            Customer.id_number_enc,
            Customer.credit_code_enc,
        ).where(Customer.id.in_(ids))
    ):
        names.add(name)
        out.update(
            v
            for v in (
                name,
                ext,
                _decrypt("email", email),
                _decrypt("id_number", idn),
                _decrypt("credit_code", ucc),
            )
            if v
        )
    for (enc,) in session.execute(
        select(CustomerPhone.phone_enc).where(CustomerPhone.customer_id.in_(ids))
    ):
        out |= _phone_forms(_decrypt("phone", enc))
    for cname, phone, email in session.execute(
        select(ContactPerson.name, ContactPerson.phone_enc, ContactPerson.email_enc).where(
            ContactPerson.customer_id.in_(ids)
        )
    ):
        out.add(cname)
        names.add(cname)
        out |= _phone_forms(_decrypt("phone", phone))
        if email:
            out.add(_decrypt("email", email) or "")
    for (detail,) in session.execute(
        select(CustomerAddress.detail).where(CustomerAddress.customer_id.in_(ids))
    ):
        out.add(detail)
    return _usable(out), _usable(names)


def _merged_into(session: Session, ids: list[int]) -> list[int]:
    """Records merged (and not unmerged) into these customers: the same person."""
    from guanxi.dedupe.models import CustomerMerge

    found = set(ids)
    frontier = list(ids)
    while frontier:
        rows = session.scalars(
            select(CustomerMerge.merged_id).where(
                CustomerMerge.survivor_id.in_(frontier), CustomerMerge.undone_at.is_(None)
            )
        ).all()
        frontier = [r for r in rows if r not in found]
        found.update(frontier)
    return sorted(found)


def _customer_rows(session: Session, batch: _Batch) -> None:
    from guanxi.customers.purge import anonymise_customers_data

    for table, n in anonymise_customers_data(session, batch.ids, placeholder=ANON).items():
        batch.count(table, n)


def _shipments(session: Session, batch: _Batch) -> None:
    from guanxi.shipments.purge import anonymise_shipments_data

    batch.count("shipment", anonymise_shipments_data(session, batch.ids))


def _tickets(session: Session, batch: _Batch) -> None:
    from guanxi.tickets.purge import anonymise_tickets_data

    done = anonymise_tickets_data(session, batch.ids, placeholder=ANON)
    for table, n in done.counts.items():
        batch.count(table, n)
    batch.files += done.storage_keys


def _interactions(session: Session, batch: _Batch) -> None:
    from guanxi.interactions.purge import anonymise_interactions_data

    batch.count("interaction", anonymise_interactions_data(session, batch.ids, placeholder=ANON))


def _surveys(session: Session, batch: _Batch) -> None:
    from guanxi.surveys.purge import anonymise_surveys_data

    batch.count("survey_response", anonymise_surveys_data(session, batch.ids))


def _outbox(session: Session, batch: _Batch) -> None:
    from guanxi.notify.purge import anonymise_notify_data

    changed, keys = anonymise_notify_data(session, batch.ids)
    batch.outbox_keys.update(keys)
    batch.count("outbox_message", changed)


def _sales(session: Session, batch: _Batch) -> None:
    from guanxi.contracts.purge import anonymise_contracts_data
    from guanxi.pool.purge import anonymise_pool_data
    from guanxi.sales.purge import anonymise_sales_data

    batch.count("opportunity", anonymise_sales_data(session, batch.ids, placeholder=ANON))
    counts, documents = anonymise_contracts_data(session, batch.ids, placeholder=ANON)
    for table, n in counts.items():
        batch.count(table, n)
    batch.files += documents
    # Not among the audit entry's counts (the events only lose their notes), as it has
    # always been: the entry's ``rows`` keep naming the same tables.
    anonymise_pool_data(session, batch.ids)


def _loyalty(session: Session, batch: _Batch) -> None:
    from guanxi.loyalty.purge import anonymise_loyalty_data

    # Not among the audit entry's counts either, like the pool's (see :func:`_sales`).
    anonymise_loyalty_data(session, batch.ids)


def _dedupe(session: Session, batch: _Batch) -> None:
    from guanxi.dedupe.purge import anonymise_dedupe_data

    batch.count("duplicate_pair", anonymise_dedupe_data(session, batch.ids))


def _texts_elsewhere(session: Session, batch: _Batch) -> None:
    """Occurrences of the person's values in texts not keyed to the customer."""
    from guanxi.analytics.purge import anonymise_analytics_data
    from guanxi.imports.purge import anonymise_imports_data
    from guanxi.notify.purge import anonymise_notification_texts
    from guanxi.privacy.models import PrivacyRequest

    # Longest first: a phone's national digits are replaced after its E.164 form.
    needles = sorted(batch.needles, key=len, reverse=True)
    names = sorted(batch.names, key=len, reverse=True)
    # Staff notifications and term statistics can only hold names (identifiers are masked
    # wherever staff texts are written): the big tables are searched for those alone.
    batch.count("notification", anonymise_notification_texts(session, names, placeholder=ANON))
    anonymise_analytics_data(session, names)
    anonymise_imports_data(session, needles)
    for column in (PrivacyRequest.details, PrivacyRequest.resolution):
        replace_in(session, PrivacyRequest, column, needles, placeholder=ANON)


def _anonymise_batch(session: Session, ids: list[int], actor: Actor, reason: str) -> _Batch:
    from guanxi.privacy.models import Anonymisation

    batch = _Batch(ids=ids)
    batch.needles, batch.names = _needles(session, ids)
    _outbox(session, batch)
    _customer_rows(session, batch)
    _shipments(session, batch)
    _tickets(session, batch)
    _interactions(session, batch)
    _surveys(session, batch)
    _sales(session, batch)
    _loyalty(session, batch)
    _dedupe(session, batch)
    _texts_elsewhere(session, batch)
    # The audit log keeps the personal texts it recorded about them sealed under their
    # audit keys: deleting the keys makes those texts unreadable for good (the chain and
    # its hashes stay as they are).
    batch.count("audit_subject_key", shred(session, "customer", ids))
    now = clock.now()
    session.execute(
        insert(Anonymisation),
        [
            {
                "customer_id": cid,
                "at": now,
                "actor_id": actor.id,
                "actor_name": actor.name[:100],
                "reason": reason[:300],
            }
            for cid in ids
        ],
    )
    record_many(
        session,
        actor=actor,
        action="customer.anonymised",
        target_type="customer",
        changes=[
            (cid, None, {"reason": reason[:300], "rows": dict(sorted(batch.counts.items()))})
            for cid in ids
        ],
    )
    return batch


def _remove_files(keys: Sequence[str], settings: Settings) -> int:
    from guanxi.tickets.attachments import stored_path

    removed = 0
    for key in keys:
        path = stored_path(key, settings)
        if path is not None:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _scrub_sms_file(settings: Settings, keys: set[str], needles: set[str]) -> int:
    """Drop the local SMS file's lines of the customers' messages (by outbox key, or
    naming one of their values). Returns how many lines were dropped."""
    path = Path(settings.data_dir) / "sms" / "outbox.jsonl"
    if not path.exists() or not (keys or needles):
        return 0
    kept: list[str] = []
    dropped = 0
    for line in path.read_text("utf-8").splitlines():
        try:
            out_id = json.loads(line).get("out_id")
        except (ValueError, AttributeError):
            out_id = None
        if out_id in keys or any(n in line for n in needles):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in kept))
        tmp.replace(path)
    return dropped


def _refresh_snapshot(settings: Settings) -> None:
    """Re-copy the analytics snapshot's changed ticket blocks now (when there is one), so
    the blanked texts replace the old ones at once rather than at the next run."""
    from guanxi.analytics.runner import snapshot_for

    snapshot = snapshot_for(settings)
    if snapshot.manifest_path().exists():
        snapshot.refresh(["ticket"])


def _secure_delete(session: Session) -> None:
    """SQLite: overwrite the freed space of deleted and rewritten rows with zeros, so the
    old texts do not linger in the database file's free pages."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")


def _checkpoint(session: Session) -> None:
    """SQLite: fold the write-ahead log into the database file and empty it (the log still
    holds the pages as they were before)."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine):
        return
    raw = bind.raw_connection()
    try:
        # The driver connection runs in autocommit mode (core.db): no transaction is open.
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()


def anonymise_customers(
    session: Session,
    *,
    customer_ids: Sequence[int],
    actor: Actor,
    reason: str,
    settings: Settings | None = None,
) -> int:
    """Anonymise these customers (deletion request, end of retention): personal
    information removed everywhere, aggregates kept (see the module's docstring).

    Opens its own write transactions, :data:`BATCH` customers each, audited per customer;
    files on disk are removed after each commit. Records merged into a customer go with
    it. Customers already anonymised and unknown ids are skipped. ``reason``: why (kept
    in the audit entry and the anonymisation record; not personal). ``settings``: where
    the data directory is (the process settings by default). Returns how many customers
    were anonymised."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed([FieldError(("reason",), "missing", "Field required")])
    from guanxi.privacy.models import Anonymisation

    settings = settings or get_settings()
    wanted = sorted({int(i) for i in customer_ids})
    done = 0
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        with write_transaction(session):
            _secure_delete(session)
            ids = _merged_into(session, chunk)
            present = set(session.scalars(select(Customer.id).where(Customer.id.in_(ids))))
            already = set(
                session.scalars(
                    select(Anonymisation.customer_id).where(Anonymisation.customer_id.in_(ids))
                )
            )
            todo = sorted(present - already)
            if not todo:
                continue
            batch = _anonymise_batch(session, todo, actor, reason)
        # The set-oriented statements bypass loaded objects: the caller reloads them.
        session.expire_all()
        done += len(todo)
        removed = _remove_files(batch.files, settings)
        dropped = _scrub_sms_file(settings, batch.outbox_keys, batch.needles)
        log.info(
            "anonymised %d customers (%d files removed, %d SMS file lines dropped)",
            len(todo),
            removed,
            dropped,
        )
    if done:
        _checkpoint(session)
        try:
            _refresh_snapshot(settings)
        except Exception:  # the database is done; the next analytics run refreshes anyway
            log.exception("analytics snapshot refresh after anonymisation failed")
    return done
