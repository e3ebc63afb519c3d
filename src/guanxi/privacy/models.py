"""Tables of the privacy domain."""

from __future__ import annotations
