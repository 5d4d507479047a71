"""Control-socket methods for file transfers (send_file, files, get, cancel...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pchat.control.api import NodeApi

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def file_methods(api: NodeApi) -> dict[str, Handler]:
    """The file-transfer methods to add to ``api`` (none until the engine lands)."""
    del api
    return {}
