"""The wire package stays pure: importing it pulls in no I/O, crypto or UI modules."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("socket", "asyncio", "sqlite3", "select", "nacl", "textual", "zeroconf")


def test_importing_wire_loads_no_io_modules() -> None:
    # A fresh interpreter, so modules other tests imported do not hide a violation.
    code = (
        f"import sys, p2pchat.wire\nprint(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
