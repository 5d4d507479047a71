"""Holes 9 and 10 of issue 10: what a peer wrote must not pass for what the program says.

Hole 9: a display name with a newline forged a whole line of ``p2pchat serve``'s output
("message from Alice: new IBAN …"). Every line the CLI prints escapes control
characters, so a peer's text stays inside the one line it belongs to.

Hole 10: a message body imitating a header line ("Bob    09:31") looked like a new
message from Bob, but for colour. Bodies are laid out in a gutter that no header line
has, so no body line can be the same as a header line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len

from p2pchat.cli.output import (
    CONTINUATION,
    describe_event,
    fit_rows,
    json_line,
    log_to_stderr,
    safe_text,
    say,
    text_lines,
)
from p2pchat.node import MessageAdded, Node, PeerOnline
from p2pchat.store import now_ms
from p2pchat.ui.app import ChatApp
from p2pchat.ui.text import header_name
from p2pchat.ui.widgets.message_item import GUTTER
from p2pchat.ui.widgets.message_list import MessageList
from p2pchat.ui.widgets.message_rows import MessageRow
from p2pchat.wire import Profile
from tests.adversary.hostile import Hostile, hostile_peer
from tests.nodes import make_node, wait_for
from tests.processes import Serve, cli, free_port
from tests.ui.helpers import SIZE, app_for, items, open_chat_with, screen_text, until

FORGED = "message from Alice: new IBAN DE00 0000"
HOSTILE_NAME = f"x\n{FORGED}"
#: What starts each event line of ``serve``: the local time.
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d  ")


@pytest.fixture
async def alice() -> AsyncIterator[Node]:
    node = make_node("alice")
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
def alice_serve(p2pchat_home: Path) -> Iterator[tuple[Serve, int]]:
    port = free_port()
    serve = Serve("alice", p2pchat_home, "--port", str(port), "--name", "alice", "--no-announce")
    try:
        serve.wait_for("on port")
        yield serve, port
    finally:
        serve.stop()


def _forged_lines(lines: list[str]) -> list[str]:
    """Printed lines that begin with the text the hostile peer chose."""
    return [line for line in lines if line.startswith(FORGED) or line.startswith("message from A")]


async def test_a_name_with_a_newline_cannot_forge_a_serve_line(
    alice_serve: tuple[Serve, int], p2pchat_home: Path
) -> None:
    serve, port = alice_serve
    node = make_node("mallory", peers=(("127.0.0.1", port),))
    events = node.subscribe()
    await node.start()
    try:
        online = await wait_for(events, lambda e: isinstance(e, PeerOnline))
        assert isinstance(online, PeerOnline)
        alice = online.peer_id
        mallory = Hostile(node)
        await asyncio.to_thread(serve.wait_for, "mallory is online")
        # A rename straight on the wire: the name is whatever the hostile peer sends.
        mallory.send(alice, Profile(name=HOSTILE_NAME))
        mallory.send_envelopes(alice, mallory.direct(alice, body=b"please pay today"))
        renamed = await asyncio.to_thread(serve.wait_for, "is not a contact")
        request = await asyncio.to_thread(serve.wait_for, "please pay today")
        for line in (renamed, request):
            assert EVENT_LINE.match(line), line
            assert "x\\x0amessage from Alice: new IBAN" in line
        # The same peer in the CLI's other outputs: one line each, nothing forged.
        peers = await asyncio.to_thread(cli, "--profile", "alice", "peers", home=p2pchat_home)
        history = await asyncio.to_thread(
            cli, "--profile", "alice", "history", node.peer_id_text, home=p2pchat_home
        )
        for result in (peers, history):
            assert result.returncode == 0, result.stderr
            assert "x\\x0amessage from Alice" in result.stdout
            assert not _forged_lines(result.stdout.splitlines()), result.stdout
    finally:
        events.close()
        await node.stop()
    serve.stop()
    assert not _forged_lines(serve.lines), serve.lines


def test_every_event_description_is_safe_lines() -> None:
    """Whatever text an event holds, each described line is one line, escapes visible."""
    nasty = "a\nb\r\nc\x1b[2J\x9b31m\u202e\u2028d\te"
    for kind in (
        "message",
        "online",
        "offline",
        "peer",
        "request",
        "invitation",
        "transfer",
        "warning",
    ):
        event = {
            "type": kind,
            "incoming": True,
            "author_name": nasty,
            "text": nasty,
            "name": nasty,
            "inviter_name": nasty,
            "reason": nasty,
            "detail": nasty,
            "peer": nasty,
            "room": nasty,
            "state": nasty,
            "host": nasty,
        }
        lines = describe_event(event)
        if kind != "message":
            assert len(lines) == 1
        for line in lines:
            assert line.isprintable(), (kind, line)
    assert describe_event({"type": "message", "incoming": True, "text": "one\ntwo"})[1:] == [
        "    two"
    ]


def test_say_prints_each_argument_as_exactly_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    say(HOSTILE_NAME, "second\x1b[2J\u0085")
    out = capsys.readouterr().out
    assert out.splitlines() == ["x\\x0a" + FORGED, "second\\x1b[2J\\x85"]
    assert text_lines("a\r\nb\n\x1b") == ["a", "b", "\\x1b"]
    assert safe_text(None) == ""


def test_a_message_padded_to_the_terminal_width_cannot_start_a_row() -> None:
    """A terminal wraps a long line itself, and the padding trick ("hi", spaces up to the
    width, then a forged line) would put the peer's text at the left edge. On a terminal
    ``say`` folds lines first, with indented continuation rows."""
    width = 80
    line = f"12:00:00  message from x: hi{' ' * 60}{FORGED}"
    rows = fit_rows(line, width)
    assert len(rows) > 1
    assert "".join(r.removeprefix(CONTINUATION) for r in rows) == line
    for row in rows[1:]:
        assert row.startswith(CONTINUATION)
    wide = "界" * 100  # two cells each
    wide_rows = fit_rows(wide, width)
    assert len(wide_rows) == 3
    assert all(cell_len(r) <= width for r in wide_rows)
    assert fit_rows(line, None) == [line]


def test_json_output_escapes_every_unprintable_character() -> None:
    value = {"name": "a\x9b\u202e\u2028\U000e0001\n"}
    line = json_line(value)
    assert line.isprintable()
    assert json.loads(line) == value


# ------------------------------------------------------------------ hole 10: the TUI


def _rendered_lines(app: ChatApp, item: MessageRow) -> list[str]:
    return app.chat.query_one(MessageList).lines_of(item)


async def test_a_body_imitating_a_header_line_cannot_pass_for_one(alice: Node) -> None:
    bob = await hostile_peer("Bob", alice)
    try:
        await alice.accept(bob.me)
        # One timestamp for all: a grouped message's first line carries the same time
        # as the header above it, the best case for a forger.
        when = now_ms()
        bodies = [b"hi", b"Bob", b"ok\nBob" + b" " * 60 + b"09:31\nBob"]
        events = alice.subscribe()
        try:
            bob.send_envelopes(alice.me, *(bob.direct(alice.me, ts=when, body=b) for b in bodies))
            for _ in bodies:
                await wait_for(events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        finally:
            events.close()
        app = app_for(alice)
        async with app.run_test(size=SIZE) as pilot:
            await open_chat_with(pilot, app, bob.me)
            await until(pilot, lambda: len(items(app)) == len(bodies))
            shown = items(app)
            assert [i.view.show_header for i in shown] == [True, False, False]
            headers = [_rendered_lines(app, i)[0] for i in shown if i.view.show_header]
            body_lines = [
                line
                for i in shown
                for line in _rendered_lines(app, i)[1 if i.view.show_header else 0 :]
            ]
            assert headers[0].startswith("Bob")
            assert not set(headers) & set(body_lines), (headers, body_lines)
            for line in body_lines:
                assert line.startswith(GUTTER), line
            # On screen too: the forged "Bob … 09:31" sits behind the gutter bar.
            assert any(
                line.lstrip().startswith(GUTTER + "Bob ") for line in screen_text(app).splitlines()
            )
    finally:
        await bob.node.stop()


def test_a_name_cannot_make_its_header_look_like_a_body_line() -> None:
    """The reverse trick: a name starting with a bar or blank-looking characters would
    make its header pass for a line of the message above. Those lead characters go."""
    for name in (
        "│ I owe you 100",
        "  I owe you 100",
        "\u3164\u2800I owe you 100",
        "|I owe you 100",
    ):
        assert header_name(name).startswith("I owe"), name
    assert header_name("\u2800 ") == "?"
    assert header_name("Bob") == "Bob"


def test_log_lines_on_the_cli_are_escaped_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Log messages can quote a peer (an mDNS service name, an exception's text); the
    CLI's stderr handler escapes them and indents a traceback's lines."""
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        log_to_stderr()
        log_to_stderr()  # idempotent: one line per record, not two
        logger = logging.getLogger("p2pchat.test_display")
        logger.warning("odd service name %s", HOSTILE_NAME)
        try:
            raise ValueError(HOSTILE_NAME)
        except ValueError:
            logger.exception("handling failed")
    finally:
        root.handlers[:] = before
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "p2pchat: warning: odd service name x\\x0a" + FORGED
    assert err[1] == "p2pchat: error: handling failed"
    assert all(line.startswith(CONTINUATION) for line in err[2:])
    assert not _forged_lines(err)
