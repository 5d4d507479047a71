"""``p2pchat search``, ``export``, ``mute``/``archive`` and ``delete-chat`` on real nodes'
stores (issue 14, items 1 and 5): two nodes chat over loopback, then the CLI runs
in-process against bob's profile (a short-lived node, as when no app is open)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from p2pchat.cli import main
from p2pchat.node import MessageAdded
from tests.node.groups_helpers import befriend, form_room, start_nodes, wait_texts
from tests.nodes import wait_for

HOSTILE = "[bold]x[/] [@click=quit]y[/] \x1b[31mred <script>alert(1)</script> ](javascript:z)"


async def _chat() -> None:
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        await befriend(alice, bob)
        events = bob.subscribe()
        for text in ("lunch at noon?", "東京に行きます", HOSTILE, "the MEETING moved"):
            await alice.send_text(bob.me, text)
            await wait_for(
                events,
                lambda e, t=text: isinstance(e, MessageAdded) and e.message.body == t.encode(),
            )
        events.close()
        room = await form_room(alice, [bob], "team")
        await alice.send_message(room, "meeting notes for the team")
        await wait_texts(bob, room, 1)
    finally:
        await alice.stop()
        await bob.stop()


@pytest.fixture
def chatted() -> None:
    asyncio.run(_chat())


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--profile", "bob", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_search_everywhere_in_a_chat_and_in_a_room(
    chatted: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "search", "meeting")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert "in team · alice: meeting notes for the team" in lines[0]  # newest first
    assert "with alice · alice: the MEETING moved" in lines[1]

    code, out, _ = run_cli(capsys, "search", "meeting", "--room", "team", "--json")
    data = json.loads(out)
    assert [r["text"] for r in data["results"]] == ["meeting notes for the team"]
    assert data["results"][0]["room_kind"] == "group"
    assert data["complete"] is True

    code, out, _ = run_cli(capsys, "search", "MEETING", "--peer", "alice", "--json")
    assert [r["text"] for r in json.loads(out)["results"]] == ["the MEETING moved"]

    code, out, _ = run_cli(capsys, "search", "に行き")
    assert "東京に行きます" in out


def test_search_input_is_text_and_errors_are_clear(
    chatted: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "search", '"NEAR( AND *')
    assert code == 0
    assert "nothing found" in out
    code, out, err = run_cli(capsys, "search", " ")
    assert code != 0
    assert "search text is empty" in err
    # A peer's text prints as plain, safe text: no escape sequence reaches the terminal.
    code, out, _ = run_cli(capsys, "search", "[bold]x")
    assert "[bold]x[/]" in out
    assert "\x1b" not in out


def test_export_in_every_format_escapes_peer_text(
    chatted: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for fmt in ("md", "json", "html"):
        dest = tmp_path / f"chat.{fmt}"
        code, out, err = run_cli(capsys, "export", "alice", "--format", fmt, "-o", str(dest))
        assert code == 0, err
        assert "wrote 4 message(s)" in out
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600
        text = dest.read_text()
        if fmt == "json":
            data = json.loads(text)
            assert [m["text"] for m in data["messages"]][2] == HOSTILE
        if fmt == "html":
            assert "<script>" not in text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
            assert "\x1b" not in text
            assert "default-src 'none'" in text
        if fmt == "md":
            assert "](javascript:" not in text
            assert "\\]\\(javascript:z\\)" in text
    code, _, err = run_cli(capsys, "export", "alice", "-o", str(tmp_path / "chat.md"))
    assert code != 0
    assert "exists" in err
    code, _, err = run_cli(
        capsys, "export", "--room", "team", "-o", str(tmp_path / "chat.md"), "--force"
    )
    assert code == 0, err
    assert "meeting notes for the team" in (tmp_path / "chat.md").read_text()


def test_mute_archive_and_delete_a_chat(chatted: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "mute", "alice")[0] == 0
    assert run_cli(capsys, "archive", "--room", "team")[0] == 0
    code, out, _ = run_cli(capsys, "rooms", "--json")
    rooms = {r["name"]: r for r in json.loads(out)}
    assert rooms["alice"]["muted"] is True
    assert rooms["team"]["archived"] is True
    assert run_cli(capsys, "unarchive", "--room", "team")[0] == 0

    code, out, _ = run_cli(capsys, "delete-chat", "alice", "--yes")
    assert code == 0
    assert "deleted 4 message(s)" in out
    code, out, _ = run_cli(capsys, "history", "alice", "--json")
    assert json.loads(out)["messages"] == []
    code, out, _ = run_cli(capsys, "search", "meeting", "--json")
    assert [r["text"] for r in json.loads(out)["results"]] == ["meeting notes for the team"]

    code, out, _ = run_cli(capsys, "delete-chat", "--room", "team", "--yes")
    assert code == 0
    code, out, _ = run_cli(capsys, "search", "meeting", "--json")
    assert json.loads(out)["results"] == []


async def _restart_and_talk() -> tuple[list[str], list[str]]:
    """After bob deleted the chat, both write again: bob sees only the new messages, and
    alice gets bob's (a reused seq would be refused there as a copy of an old one), in
    order after everything she holds."""
    alice, bob = await start_nodes(["alice", "bob"])
    try:
        to_bob, to_alice = bob.subscribe(), alice.subscribe()
        await befriend(alice, bob)
        await alice.send_text(bob.me, "after the delete")
        await wait_for(to_bob, lambda e: isinstance(e, MessageAdded) and e.incoming)
        await bob.send_text(alice.me, "bob again")
        await wait_for(to_alice, lambda e: isinstance(e, MessageAdded) and e.incoming)
        room = bob.direct_room(alice.me)
        bobs = [m.body.decode() for m in await bob.history(room, 100)]
        alices = [m.body.decode() for m in await alice.history(room, 100)]
        return bobs, alices
    finally:
        await alice.stop()
        await bob.stop()


def test_a_deleted_chat_stays_deleted_and_new_messages_follow(
    chatted: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "delete-chat", "alice", "--yes")[0] == 0
    bobs, alices = asyncio.run(_restart_and_talk())
    assert bobs == ["after the delete", "bob again"]
    assert alices[-2:] == ["after the delete", "bob again"]
    assert alices[0] == "lunch at noon?"  # alice keeps her copy
