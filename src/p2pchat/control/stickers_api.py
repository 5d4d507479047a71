"""Control-socket methods for sticker packs: stickers, sticker_add, sticker_install.

Sending one is ``send`` with ``sticker: "PACK/NAME"``. Pack and sticker names are plain
ASCII (checked by the node), so they are safe in JSON and on a terminal. Paths given
here are the caller's and must be absolute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from p2pchat.control.params import ApiContext, ApiError, text_param
from p2pchat.store.stickers import PackSticker

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
#: Files one ``sticker_add`` call takes.
MAX_PATHS = 200


def sticker_json(sticker: PackSticker) -> dict[str, Any]:
    """One of our stickers for people and scripts."""
    return {
        "pack": sticker.pack,
        "name": sticker.name,
        "label": f"{sticker.pack}/{sticker.name}",
        "sha256": sticker.sha256.hex(),
        "mime": sticker.mime,
        "size": sticker.size,
    }


def sticker_methods(api: ApiContext) -> dict[str, Handler]:
    """The sticker methods to add to ``api``."""

    stickers = api.node.stickers

    async def list_stickers(params: dict[str, Any]) -> list[dict[str, Any]]:
        """Our stickers, by pack and name (one pack with ``pack``)."""
        pack = text_param(params, "pack", max_len=64) if params.get("pack") else None
        return [sticker_json(s) for s in await stickers.packs(pack)]

    async def add(params: dict[str, Any]) -> list[dict[str, Any]]:
        """Add pictures (``paths``: absolute) to our pack ``pack``."""
        pack = text_param(params, "pack", max_len=64)
        paths = params.get("paths")
        if not isinstance(paths, list) or not 1 <= len(paths) <= MAX_PATHS:
            raise ApiError(f"'paths' must be a list of 1 to {MAX_PATHS} absolute paths")
        if not all(isinstance(p, str) and Path(p).is_absolute() for p in paths):
            raise ApiError("'paths' must be absolute (the node runs in another directory)")
        return [sticker_json(s) for s in await stickers.add(pack, [Path(p) for p in paths])]

    async def install(params: dict[str, Any]) -> list[dict[str, Any]]:
        """Install the pack ``pack`` someone sent us (from ``peer`` only, if given)."""
        pack = text_param(params, "pack", max_len=64)
        peer = None
        if params.get("peer"):
            peer = await api.node.resolve_peer(text_param(params, "peer", max_len=200))
        return [sticker_json(s) for s in await stickers.install(pack, peer)]

    return {"stickers": list_stickers, "sticker_add": add, "sticker_install": install}
