"""Fixed lists of the import domain."""

from __future__ import annotations

from enum import StrEnum


class ImportKind(StrEnum):
    """What a file holds."""

    customers = "customers"
    contacts = "contacts"
    shipments = "shipments"


class JobStatus(StrEnum):
    """An import job's state; ``running`` after a crash means it can be resumed."""

    running = "running"
    finished = "finished"
    failed = "failed"
