"""Shared plumbing: database, column types, errors, clock, i18n, pagination, web layout."""
