"""Reach a node for a CLI command: the running one (control socket) or a short-lived one.

When the TUI or ``p2pchat serve`` runs for the profile, the CLI talks to it over the
control socket. Otherwise it starts a node itself for the length of the command: with
networking when the command needs peers (``send``), store-only otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from p2pchat.cli.common import CliError, load_profile, node_config_from_args
from p2pchat.cli.output import standing
from p2pchat.control.api import NodeApi
from p2pchat.control.client import NODE_STOPPED, ControlClient
from p2pchat.control.params import ApiError
from p2pchat.control.server import socket_is_live
from p2pchat.node import Node, NodeError
from p2pchat.store import StoreError


class Caller(Protocol):
    """Anything that runs API methods by name."""

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any: ...


@dataclass
class Session:
    """The API to use and whether it is a node that was already running."""

    api: Caller
    remote: bool
    node: Node | None = None


@contextlib.asynccontextmanager
async def open_session(args: argparse.Namespace, *, network: bool) -> AsyncIterator[Session]:
    """Yield a Session; turns node start-up failures into CliError."""
    profile = load_profile(args)
    if socket_is_live(profile.control_path):
        try:
            client = await ControlClient.connect(profile.control_path)
        except OSError:
            pass
        else:
            try:
                async with client:
                    session = Session(client, remote=True)
                    folder = getattr(args, "download_dir", None)
                    if folder is not None:  # the running node has its settings already
                        await call(session, "settings", {"key": "download_dir", "value": folder})
                    yield session
            except (ConnectionError, asyncio.IncompleteReadError):
                raise CliError(NODE_STOPPED) from None
            return
    config = node_config_from_args(args)
    config = replace(config, network=network, announce=False)
    node = Node(profile, config)
    try:
        await node.start()
    except (StoreError, NodeError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot start the node: {exc.strerror or exc}") from None
    try:
        yield Session(NodeApi(node), remote=False, node=node)
    finally:
        await node.stop()


async def call(session: Session, method: str, params: dict[str, Any] | None = None) -> Any:
    """Run an API method, turning its errors into CliError (candidates listed)."""
    try:
        return await session.api.call(method, params)
    except ApiError as exc:
        details = []
        for cand in exc.data.get("candidates", [])[:10]:
            what = standing(cand.get("state"), cand.get("verified"))
            details.append(f"  {cand.get('short_id')}  {cand.get('name') or '?'}  ({what})")
        raise CliError(str(exc), details=details) from None


def run(coro: Any) -> Any:
    """Run a command's coroutine (one event loop per CLI invocation)."""
    return asyncio.run(coro)
