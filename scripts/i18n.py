"""Keep the zh_CN catalogue complete: extract every message, merge it into messages.po.

    python scripts/i18n.py          # extract + update (new messages get empty translations)
    python scripts/i18n.py --check  # exit 1 if a message has no translation

Translations are edited in src/guanxi/locale/zh_CN/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "src/guanxi/locale/zh_CN/LC_MESSAGES/messages.po"


def extract() -> Path:
    """Run pybabel extract over the Python sources and the templates."""
    pot = Path(tempfile.mkdtemp()) / "messages.pot"
    args = ["extract", "-F", str(ROOT / "babel.cfg"), "-k", "_", "-k", "N_", "-k", "gettext:2"]
    args += ["--no-location", "--omit-header", "-o", str(pot), str(ROOT)]
    # pybabel from the same environment as this interpreter; arguments are fixed.
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), *args], check=True, capture_output=True)  # noqa: S603
    return pot


def main() -> int:
    """Update the catalogue, or with --check report untranslated messages."""
    with extract().open("rb") as fh:
        template = read_po(fh)
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    missing = [
        m.id for m in template if m.id and not (catalog.get(m.id) and catalog.get(m.id).string)
    ]
    if "--check" in sys.argv:
        for msgid in missing:
            print(f"untranslated: {msgid}")  # noqa: T201
        return 1 if missing else 0
    catalog.update(template, no_fuzzy_matching=True)
    with PO.open("wb") as fh:
        write_po(fh, catalog, omit_header=False, no_location=True, width=100)
    print(f"{len(missing)} untranslated")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
