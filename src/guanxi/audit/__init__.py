"""Append-only, hash-chained audit log written inside the services' transactions."""
