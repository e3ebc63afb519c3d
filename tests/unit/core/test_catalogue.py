"""Every message in the code and templates has a zh_CN translation with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "src/guanxi/locale/zh_CN/LC_MESSAGES/messages.po"


def test_every_message_is_translated() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/i18n.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_placeholders_survive_translation() -> None:
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    for message in catalog:
        if not message.id:
            continue
        assert message.string, message.id
        assert set(re.findall(r"{\w+}", str(message.id))) == set(
            re.findall(r"{\w+}", str(message.string))
        ), message.id
