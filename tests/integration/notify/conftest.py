"""Fixtures: real SMTP servers (aiosmtpd) on 127.0.0.1 and mailers pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guanxi.notify.mail import SmtpMailer
from tests.integration.notify.smtp import SmtpServer, free_port, mailer_for


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Links in mails read the process settings (``GUANXI_BASE_URL``); reading them in
    development writes a key file under the data directory: keep it in the test's tmp."""
    from guanxi.config import get_settings

    monkeypatch.setenv("GUANXI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def smtp_servers() -> Iterator[Callable[[int], SmtpServer]]:
    """Make servers on chosen ports (for 'the server is back' tests); all stopped after."""
    started: list[SmtpServer] = []

    def make(port: int) -> SmtpServer:
        server = SmtpServer(port)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(smtp_servers: Callable[[int], SmtpServer]) -> SmtpServer:
    """A running server on a free port."""
    return smtp_servers(free_port())


@pytest.fixture
def mailer(smtp_server: SmtpServer) -> SmtpMailer:
    """A mailer pointed at ``smtp_server``."""
    return mailer_for(smtp_server.port)
