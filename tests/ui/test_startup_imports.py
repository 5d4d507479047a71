"""Start-up pays only for what the first frame needs (issue 12: launch to first frame).

Heavy modules that only some screens use are imported when that screen opens: the emoji
tables (first ``:name:`` or the picker), the QR encoder (verification), Pillow (a
picture preview), the settings and emoji picker screens. Checked in a fresh interpreter,
since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = (
    "emoji",
    "segno",
    "PIL",
    "textual_image",
    "p2pchat.ui.screens.settings",
    "p2pchat.ui.screens.emoji_picker",
    "p2pchat.ui.screens.verify",
    "p2pchat.ui.screens.file_picker",
)


def test_the_app_module_imports_no_screen_only_modules() -> None:
    probe = (
        "import json, sys\n"
        "import p2pchat.ui.app\n"
        f"print(json.dumps([m for m in {list(LAZY)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
