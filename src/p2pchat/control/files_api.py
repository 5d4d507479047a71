"""Control-socket methods for file transfers: send_file, files, get, cancel, decline.

Same JSON shapes for the control socket, the CLI and scripts. Transfer ids are the file
message's id in hex; any unambiguous prefix of at least 4 hex digits is accepted. Paths
given here are the caller's and must be absolute (the node's working directory is not
the caller's). This module never reads or writes files itself: the node does.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from p2pchat.control.params import ApiContext, ApiError, number_param, text_param
from p2pchat.control.serialize import iso_time
from p2pchat.identity import encode_peer_id
from p2pchat.node.model import TransferInfo
from p2pchat.node.settings import SETTING_DOWNLOAD_DIR

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

FINAL_STATES = ("done", "failed", "cancelled")
MAX_WAIT = 24 * 3600.0
POLL = 0.2


def transfer_json(api: ApiContext, info: TransferInfo) -> dict[str, Any]:
    """A transfer for people and scripts (peer-chosen names are plain JSON strings)."""
    return {
        "id": info.id_text,
        "short_id": info.id_text[:8],
        "room": info.room.hex(),
        "peer": encode_peer_id(info.peer),
        "peer_name": api.node.peer_name(info.peer),
        "incoming": info.incoming,
        "name": info.name,
        "size": info.size,
        "mime": info.mime,
        "sha256": info.sha256.hex(),
        "state": info.state,
        "done": info.done,
        "progress": 1.0 if info.size == 0 else round(info.done / info.size, 4),
        "rate": round(info.rate, 1),
        "eta": None if info.eta is None else round(info.eta, 1),
        "path": info.path,
        "detail": info.detail,
        "created_at": iso_time(info.created_at),
        "width": info.width,
        "height": info.height,
    }


async def _file_settings(api: ApiContext, params: dict[str, Any]) -> dict[str, Any]:
    """Read or change ``auto_accept_max`` (bytes) and ``download_dir`` ('' = default)."""

    transfers = api.node.transfers
    if "auto_accept_max" in params:
        value = params["auto_accept_max"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError("'auto_accept_max' must be a number of bytes (0 or more)")
        await transfers.set_auto_accept_max(value)
    if "download_dir" in params:
        folder = params["download_dir"]
        if not isinstance(folder, str) or (folder and not Path(folder).is_absolute()):
            raise ApiError("'download_dir' must be an absolute path, or '' for the default")
        await api.node.set_text_setting(SETTING_DOWNLOAD_DIR, folder)
    return {
        "auto_accept_max": transfers.auto_accept_max,
        "download_dir": str(transfers.download_dir()),
    }


def file_methods(api: ApiContext) -> dict[str, Handler]:
    """The file-transfer methods to add to ``api``."""

    transfers = api.node.transfers

    async def find(params: dict[str, Any]) -> TransferInfo:
        return await transfers.find(text_param(params, "id", max_len=64))

    async def wait_final(info: TransferInfo, wait: float) -> TransferInfo:
        end = time.monotonic() + wait
        while info.state not in FINAL_STATES and time.monotonic() < end:
            await asyncio.sleep(POLL)
            info = await transfers.get(info.message_id) or info
        return info

    async def send_file(params: dict[str, Any]) -> dict[str, Any]:
        """Offer a file (``path``, absolute) to a ``peer`` or in a group ``room``."""
        path = Path(text_param(params, "path", max_len=4096))
        if not path.is_absolute():
            raise ApiError("'path' must be absolute (the node runs in another directory)")
        if params.get("room") is not None:
            room = await api.node.resolve_room(text_param(params, "room", max_len=200))
            message = await transfers.send_file_to_room(room, path)
            online = None
        else:
            peer = await api.node.resolve_peer(text_param(params, "peer", max_len=200))
            message = await transfers.send_file(peer, path)
            online = api.node.links.is_online(peer)
        info = await transfers.get(message.id)
        if info is None:
            raise ApiError("the offer was sent but its transfer was not recorded")
        return {"peer_online": online, **transfer_json(api, info)}

    async def files(params: dict[str, Any]) -> Any:
        """Transfers, newest first (``limit``), or one (``id``)."""
        if "id" in params:
            return transfer_json(api, await find(params))
        limit = int(number_param(params, "limit", 100, 1, 10_000))
        return [transfer_json(api, i) for i in await transfers.list_transfers(limit)]

    async def get(params: dict[str, Any]) -> dict[str, Any]:
        """Accept (download) an offered file; ``wait`` seconds for it to finish (0: return)."""
        info = await find(params)
        info = await transfers.accept(info.message_id)
        wait = number_param(params, "wait", 0.0, 0.0, MAX_WAIT)
        if wait > 0:
            info = await wait_final(info, wait)
        return transfer_json(api, info)

    async def cancel(params: dict[str, Any]) -> dict[str, Any]:
        """Stop a download (its part is deleted) or revoke one of our offers."""
        info = await find(params)
        await transfers.cancel(info.message_id)
        return transfer_json(api, await transfers.get(info.message_id) or info)

    async def decline(params: dict[str, Any]) -> dict[str, Any]:
        """Refuse an incoming offer."""
        info = await find(params)
        await transfers.decline(info.message_id)
        return transfer_json(api, await transfers.get(info.message_id) or info)

    return {
        "send_file": send_file,
        "files": files,
        "get": get,
        "cancel": cancel,
        "decline": decline,
        "file_settings": functools.partial(_file_settings, api),
    }
