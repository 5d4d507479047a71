"""``p2pchat serve``: a headless node that prints one line per event.

For servers, bots and the README's two-terminal walkthrough. It also opens the control
socket, so ``p2pchat send`` and scripts in other terminals use this node. Stops cleanly
on SIGINT and SIGTERM: pending writes reach the disk and peers are told goodbye. The
node's log lines (what it refused from which peer, and why) go to stderr, rate-limited
(``cli/logs.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from p2pchat.cli.common import CliError, add_node_options, load_profile, node_config_from_args
from p2pchat.cli.logs import show_node_logs
from p2pchat.cli.output import describe_event, print_json, say
from p2pchat.control.api import NodeApi
from p2pchat.control.serialize import event_json
from p2pchat.control.server import ControlServer, ControlServerError
from p2pchat.node import Node, NodeError
from p2pchat.store import StoreError, now_ms
from p2pchat.timefmt import local_stamp

log = logging.getLogger(__name__)


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``serve`` to the parser."""
    p = subs.add_parser(
        "serve",
        parents=[common],
        help="run a headless node (prints events; stop with Ctrl+C)",
        description="Run a node without the app: it announces itself, connects to peers, "
        "delivers queued messages and prints one line per event. Other p2pchat commands "
        "for this profile use it while it runs.",
    )
    add_node_options(p)
    p.add_argument("--name", help="set your display name before starting")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run until interrupted."""
    profile = load_profile(args)
    if args.name:
        try:
            profile.set_display_name(args.name)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    node = Node(profile, node_config_from_args(args))
    show_node_logs()  # why it refused what a peer sent, once per peer and reason a minute
    return asyncio.run(_serve(node, as_json=args.json))


async def _serve(node: Node, *, as_json: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    events = node.subscribe()
    try:
        await node.start()
    except (StoreError, NodeError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        port = node.config.port
        detail = f"port {port} is already in use" if exc.errno == 98 else str(exc)
        raise CliError(f"cannot start: {detail}") from None
    control = ControlServer(NodeApi(node), node.profile.control_path)
    try:
        await control.start()
    except ControlServerError as exc:
        await node.stop()
        raise CliError(str(exc)) from None
    say(
        f"p2pchat {node.profile.display_name} ({node.peer_id_text[:8]}) on port {node.port}; "
        "Ctrl+C to stop",
        flush=True,
    )
    printer = asyncio.ensure_future(_print_events(node, events, as_json, node.profile.name))
    try:
        await stop.wait()
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
        await control.stop()
        await node.stop()
        say("stopped", flush=True)
    return 0


async def _print_events(node: Node, events: Any, as_json: bool, profile: str) -> None:
    """One line per event (a message of several lines: indented continuation lines).

    Each line goes through ``say``, so nothing a peer chose can start a line of its own
    (issue 10, hole 9). One event that cannot be shown is reported, and printing goes on.
    """
    async for event in events:
        try:
            data = event_json(node, event)
        except Exception:
            log.exception("cannot show a %s event", type(event).__name__)
            say(f"{local_stamp(now_ms(), with_date=False)}  (an event that cannot be shown)")
            continue
        if as_json:
            print_json(data)
        else:
            first, *rest = describe_event(data, profile)
            say(f"{local_stamp(now_ms(), with_date=False)}  {first}", *rest)
        sys.stdout.flush()
