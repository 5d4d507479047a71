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


#: What the node needs and the first frame must not wait for (issue 12).
NODE_MODULES = (
    "nacl",
    "cryptography",
    "zeroconf",
    "msgpack",
    "sqlite3",
    "apsw",
    "p2pchat.identity",
    "p2pchat.profile",
    "p2pchat.node",
    "p2pchat.store",
    "p2pchat.wire",
    "p2pchat.transport",
    "p2pchat.crypto",
    "p2pchat.discovery",
    "p2pchat.control",
)

#: ``p2pchat --profile probe`` through the command line's main, its app run headless;
#: at the first paint it reports what is imported and what is on screen.
FIRST_PAINT = f"""
import json, sys
import p2pchat.cli, p2pchat.ui.run
from p2pchat.ui.app import ChatApp

class Probe(ChatApp):
    def on_mount(self):
        self.call_after_refresh(self.painted)

    def painted(self):
        text = "\\n".join(strip.text for strip in self.screen._compositor.render_strips())
        loaded = [m for m in {list(NODE_MODULES)!r} if m in sys.modules]
        sys.__stdout__.write(json.dumps({{"loaded": loaded, "text": text}}) + "\\n")
        sys.__stdout__.flush()
        self.exit(0)

def headless(launch):
    Probe(launch).run(headless=True)
    return 0

p2pchat.ui.run.run_app = headless
sys.exit(p2pchat.cli.main(["--profile", "probe", "--no-mdns"]))
"""


def test_the_first_frame_is_painted_before_the_node_modules_load() -> None:
    out = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT], capture_output=True, text=True, timeout=60, check=True
    )
    painted = json.loads(out.stdout.strip().splitlines()[-1])
    assert painted["loaded"] == []
    assert "p2pchat" in painted["text"]  # the app's own frame, not a blank screen
    assert "Opening your chats" in painted["text"]
