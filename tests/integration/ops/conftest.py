"""Log capture for the operations tests: the process's logging set up as ``guanxi serve``
sets it up (core/logs.py), writing to a buffer, and put back as it was afterwards."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from guanxi.config import Settings
from guanxi.core import logs
from tests.conftest import settings_for


def _snapshot() -> dict[str, tuple[int, list[logging.Handler], bool, bool]]:
    names = ["", *logging.root.manager.loggerDict]
    out = {}
    for name in names:
        logger = logging.getLogger(name)
        out[name] = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    return out


def _restore(saved: dict[str, tuple[int, list[logging.Handler], bool, bool]]) -> None:
    for name, (level, handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture
def log_settings(tmp_path: Path) -> Settings:
    """Test settings with JSON lines at INFO."""
    settings = settings_for("sqlite://", tmp_path)
    settings.log_format = "json"
    return settings


@pytest.fixture
def captured_logs(log_settings: Settings) -> Iterator[io.StringIO]:
    """Every log line of the process (JSON lines) while the test runs."""
    saved = _snapshot()
    buffer = io.StringIO()
    logs.configure(log_settings, stream=buffer)
    try:
        yield buffer
    finally:
        _restore(saved)
