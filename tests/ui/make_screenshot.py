"""Write docs/screenshot.svg: the app showing a real conversation.

The conversation is recorded between real nodes over loopback (``scenes``), then the
app opens it with the network off and saves a screenshot. Run from the repository root:

    .venv/bin/python -m tests.ui.make_screenshot [--size 100x34]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


async def _shoot(size: tuple[int, int], target: Path) -> None:
    from p2pchat.ui.widgets.composer import Composer
    from p2pchat.ui.widgets.message_list import MessageList
    from tests.ui.helpers import until
    from tests.ui.scenes import scene_app

    app = scene_app("alice")
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.chat.node_ready and app.chat.entries())
        entry = next(e for e in app.chat.entries() if e.name == "Bob")
        await app.chat.open_entry(entry)
        await until(pilot, lambda: app.chat.query_one(MessageList).loaded)
        composer = app.chat.query_one(Composer)
        composer.cursor_blink = False
        composer.insert("Can't wait :moun")
        await pilot.pause(0.2)
        app.save_screenshot(filename=target.name, path=str(target.parent))


def main() -> None:
    """Record the scene in a throwaway home and save the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x34")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.svg"))
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as home:
        os.environ["P2PCHAT_HOME"] = home
        from tests.ui.scenes import record_conversation, utc

        patch = pytest.MonkeyPatch()
        with utc():
            try:
                record_conversation(patch)
            finally:
                patch.undo()
            asyncio.run(_shoot((width, height), Path(args.out)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
