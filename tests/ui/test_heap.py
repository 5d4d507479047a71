"""Once the app is up, what lives is out of the garbage collector's sight (ui/heap.py),
so a full collection during a burst walks only what was made since."""

from __future__ import annotations

import gc

from p2pchat.ui import heap
from tests.nodes import make_node
from tests.ui.helpers import SIZE, app_for, until


async def test_the_app_freezes_what_lives_once_it_is_up() -> None:
    node = make_node("alice")
    await node.start()
    try:
        app = app_for(node)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.node_ready)
            assert gc.get_freeze_count() > 0  # on main: 0, a full collection walks all
            assert not heap.freeze_long_lived()  # once per process, never again
    finally:
        await node.stop()
