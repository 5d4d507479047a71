"""Parameters of control-socket calls: checked, with errors meant for people.

Shared by ``api.py`` and the method families beside it (``chats_api.py``,
``files_api.py``, ...), which take an :class:`ApiContext` rather than the ``NodeApi``
itself, so no module of this package imports another that imports it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from p2pchat.control.serialize import JSONDict

if TYPE_CHECKING:
    from p2pchat.node import Node


class ApiError(Exception):
    """A request failed; ``data`` is the JSON error object sent to the client."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.data: JSONDict = {"message": message, **extra}


class ApiContext(Protocol):
    """What a method family needs of the API: the node and the peer/room lookups."""

    @property
    def node(self) -> Node: ...

    async def peer_param(self, params: JSONDict, *, trusted_first: bool = True) -> bytes: ...

    async def room_param(self, params: JSONDict) -> bytes: ...


def text_param(params: JSONDict, key: str, *, max_len: int = 100_000) -> str:
    """``params[key]``: non-empty text of at most ``max_len`` characters."""
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(f"missing or invalid parameter {key!r} (text expected)")
    if len(value) > max_len:
        raise ApiError(f"parameter {key!r} is too long")
    return value


def number_param(params: JSONDict, key: str, default: float, lo: float, hi: float) -> float:
    """``params[key]`` (or ``default``): a number between ``lo`` and ``hi``."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(f"parameter {key!r} must be a number")
    if not lo <= value <= hi:
        raise ApiError(f"parameter {key!r} must be between {lo:g} and {hi:g}")
    return float(value)
