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
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.cli.output import describe_event, json_line, safe_text, say, text_lines
from p2pchat.node import PeerOnline
from p2pchat.wire import Profile
from tests.adversary.hostile import Hostile
from tests.nodes import make_node, wait_for
from tests.processes import Serve, cli, free_port

FORGED = "message from Alice: new IBAN DE00 0000"
HOSTILE_NAME = f"x\n{FORGED}"
#: What starts each event line of ``serve``: the local time.
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d  ")


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
        renamed = await asyncio.to_thread(serve.wait_for, "is now x")
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


def test_json_output_escapes_every_unprintable_character() -> None:
    import json

    value = {"name": "a\x9b\u202e\u2028\U000e0001\n"}
    line = json_line(value)
    assert line.isprintable()
    assert json.loads(line) == value
