"""One loop for the periodic work done with every connected peer (anti-entropy rounds).

Group rooms and direct rooms both re-send their heads to every connected peer every
``sync_interval``: a message lost on the way (or a node that stored it and crashed)
is found within one round even when no connection comes up to prompt it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from p2pchat.identity import short_id

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

log = logging.getLogger(__name__)


async def every_connected_peer(
    node: NodeFacade, action: Callable[[bytes], Awaitable[None]], what: str
) -> None:
    """Forever: wait ``sync_interval`` seconds, then run ``action`` for each connected peer.

    One peer's failure is logged and never stops the round for the others.
    """
    while True:
        await asyncio.sleep(node.config.sync_interval)
        for peer in list(node.links.links):
            try:
                await action(peer)
            except Exception:
                log.exception("%s with %s failed", what, short_id(peer))
