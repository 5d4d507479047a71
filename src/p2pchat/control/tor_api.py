"""Control-socket methods for Tor: status, our invite code, adding someone's code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from p2pchat.control.params import ApiContext, text_param
from p2pchat.identity import encode_peer_id, short_id

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def tor_methods(api: ApiContext) -> dict[str, Handler]:
    """The Tor methods to add to ``api``."""

    node = api.node
    onions = node.onions

    async def tor_status(params: dict[str, Any]) -> dict[str, Any]:
        """Tor's state (bootstrap %), our onion address, and how each contact is linked."""
        status = onions.status
        links = []
        for peer in await node.list_peers():
            if peer.state != "contact":
                continue
            links.append(
                {
                    "id": encode_peer_id(peer.peer_id),
                    "short_id": short_id(peer.peer_id),
                    "name": peer.name,
                    "link": node.links.via(peer.peer_id),
                }
            )
        return {
            "enabled": onions.enabled or await onions.remembered(),
            "running": onions.enabled,
            "state": status.state,
            "percent": status.percent,
            "detail": status.detail,
            "onion": onions.onion,
            "contacts": links,
        }

    async def invite(params: dict[str, Any]) -> dict[str, Any]:
        """Our invite code (peer id + onion address + check)."""
        enabled = onions.enabled or await onions.remembered()
        return {"code": onions.invite_code(), "tor": enabled, "state": onions.status.state}

    async def add_invite(params: dict[str, Any]) -> dict[str, Any]:
        """Make the owner of an invite code a contact and dial them through tor."""
        peer = await onions.add_invite(text_param(params, "code", max_len=300))
        return {
            "peer": node.peer_name(peer),
            "id": encode_peer_id(peer),
            "tor": onions.enabled or await onions.remembered(),
        }

    async def tor_round_trip(params: dict[str, Any]) -> dict[str, Any]:
        """Reach our own onion service through tor (``doctor``'s end-to-end check)."""
        return {"seconds": round(await onions.round_trip(), 3)}

    return {
        "tor_status": tor_status,
        "invite": invite,
        "add_invite": add_invite,
        "tor_round_trip": tor_round_trip,
    }
