"""A newcomer's first day on the command line (issue 13)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import nacl.pwhash
import pytest

from p2pchat.cli import build_parser
from p2pchat.cli import common as cli_common
from p2pchat.cli.common import CliError, load_profile
from p2pchat.cli.output import describe_event, json_line, safe_text
from p2pchat.identity import KdfParams, save_identity
from p2pchat.key_doc import KEY_FILE
from p2pchat.node import MessageAdded, MessageStatus, ReactionChanged, RoomInvitation
from p2pchat.profile import open_profile
from tests.nodes import make_node, wait_for
from tests.processes import cli, free_port
from tests.ui.helpers import befriend

# The cheapest Argon2id cost: the tests check the asking, not the key stretching.
CHEAP = KdfParams(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def sealed_profile(name: str, passphrase: str) -> bytes:
    """Create profile ``name`` with its key sealed by ``passphrase``; its peer id."""
    profile = open_profile(name)
    save_identity(profile.directory / KEY_FILE, profile.identity, passphrase, kdf=CHEAP)
    return profile.identity.peer_id


class Terminal:
    """The person at the terminal (outside our control): types the given answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> None:
        self.answers = answers
        self.asked = 0
        monkeypatch.setattr(cli_common.sys.stdin, "isatty", lambda: True)
        monkeypatch.setattr(cli_common.getpass, "getpass", self.getpass)

    def getpass(self, prompt: str = "") -> str:
        self.asked += 1
        return self.answers.pop(0)


def test_a_mistyped_passphrase_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    peer_id = sealed_profile("alice", "correct horse")
    terminal = Terminal(monkeypatch, ["correct hrose", "correct horse"])
    profile = load_profile(argparse.Namespace(profile="alice"))
    assert profile.identity.peer_id == peer_id
    assert terminal.asked == 2
    assert "try again" in capsys.readouterr().err


def test_three_wrong_passphrases_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed_profile("alice", "correct horse")
    terminal = Terminal(monkeypatch, ["a", "b", "c", "correct horse"])
    with pytest.raises(CliError, match="wrong passphrase"):
        load_profile(argparse.Namespace(profile="alice"))
    assert terminal.asked == 3


def test_a_wrong_env_passphrase_fails_at_once_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed_profile("alice", "correct horse")
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", "nope")
    terminal = Terminal(monkeypatch, ["correct horse"])
    with pytest.raises(CliError, match="P2PCHAT_PASSPHRASE"):
        load_profile(argparse.Namespace(profile="alice"))
    assert terminal.asked == 0


def test_help_documents_the_passphrase_variable() -> None:
    assert "P2PCHAT_PASSPHRASE" in build_parser().format_help()


def test_readme_documents_the_passphrase_variable() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert "P2PCHAT_PASSPHRASE" in readme.read_text(encoding="utf-8")


# ---------------------------------------------------------------- item 10: the CLI's words


def ok(*args: str, home: Path) -> str:
    result = cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_history_shows_read_marks_replies_reactions_and_room_events(
    p2pchat_home: Path,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        alice_events = alice.subscribe()
        room = alice.direct_room(bob.me)
        bob_events = bob.subscribe()
        question = await bob.send_text(alice.me, "shall we meet at the café?")
        await wait_for(alice_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        answer = await alice.send_message(room, "yes at 8 👨‍👩‍👧", question.id)
        await wait_for(bob_events, lambda e: isinstance(e, MessageAdded) and e.incoming)
        await bob.mark_read(room, [answer.id])
        assert await alice.wait_for_status(answer.id, MessageStatus.READ, 10)
        await bob.react(answer.id, "👍")
        await wait_for(alice_events, lambda e: isinstance(e, ReactionChanged))
        group = await alice.groups.create_room("Hikers")
    finally:
        await alice.stop()
        await bob.stop()

    shown = ok("--profile", "alice", "history", "bob", home=p2pchat_home)
    assert "you: yes at 8 👨‍👩‍👧  ✔✔ read" in shown  # the app's mark; the emoji whole
    assert "↩ in reply to bob: shall we meet at the café?" in shown
    assert "👍 1" in shown

    as_json = ok("--profile", "alice", "history", "bob", "--json", home=p2pchat_home)
    assert "👨‍👩‍👧" in as_json  # not \\u200d-escaped
    reactions = [m["reactions"] for m in json.loads(as_json)["messages"] if m["outgoing"]]
    assert reactions == [[{"emoji": "👍", "author_name": "bob"}]]

    room_history = ok("--profile", "alice", "history", "--room", group.hex()[:8], home=p2pchat_home)
    assert "you:" not in room_history  # nobody wrote "alice created the room"
    assert "· " in room_history
    assert "1 member" in ok("--profile", "alice", "rooms", home=p2pchat_home)
    assert "1 members" not in ok("--profile", "alice", "rooms", home=p2pchat_home)


def test_an_escaped_joiner_outside_emoji_stays_visible() -> None:
    assert safe_text("a\u200db") == "a\\u200db"  # could hide text: shown
    assert safe_text("👨\u200d👩") == "👨\u200d👩"
    assert json_line("x\u200dy") == '"x\\u200dy"'


async def test_room_actions_say_what_happened(p2pchat_home: Path) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        room = await alice.groups.create_room("Hikers")
        bob_events = bob.subscribe()
        await alice.groups.invite(room, bob.me)
        await wait_for(bob_events, lambda e: isinstance(e, RoomInvitation))
    finally:
        await alice.stop()
        await bob.stop()
    joined = ok("--profile", "bob", "--no-mdns", "room", "join", "hikers", home=p2pchat_home)
    assert "you joined Hikers" in joined  # its own name, not as typed
    assert "done" not in joined
    left = ok("--profile", "bob", "--no-mdns", "room", "leave", "Hikers", home=p2pchat_home)
    assert "you left Hikers" in left


async def test_sending_to_yourself_says_so(p2pchat_home: Path) -> None:
    alice = make_node("alice")
    await alice.start()
    await alice.stop()
    result = cli("--profile", "alice", "send", "alice", "hi", "--no-mdns", home=p2pchat_home)
    assert result.returncode != 0
    assert "'alice' is you" in result.stderr


def test_add_says_when_nothing_answers(p2pchat_home: Path) -> None:
    port = free_port()  # nothing listens there
    out = ok("--profile", "alice", "add", f"127.0.0.1:{port}", home=p2pchat_home)
    assert "nothing answers there now" in out


async def test_unblock(p2pchat_home: Path) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        await alice.block(bob.me)
    finally:
        await alice.stop()
        await bob.stop()
    out = ok("--profile", "alice", "unblock", "bob", home=p2pchat_home)
    assert "bob is unblocked" in out
    peers = json.loads(ok("--profile", "alice", "peers", "--json", home=p2pchat_home))
    assert [p["state"] for p in peers if p["name"] == "bob"] == ["contact"]
    out = ok("--profile", "alice", "block", "bob", home=p2pchat_home)
    assert "bob is blocked: nothing from them is stored or shown" in out  # not "a blocked"


async def friends_then_bob_away(bob_name: str = "bob") -> None:
    """Alice and Bob become contacts; then both stop (Bob stays away)."""
    alice, bob = make_node("alice"), make_node("bob")
    bob.profile.set_display_name(bob_name)
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
    finally:
        await alice.stop()
        await bob.stop()


def test_send_wait_says_it_waits_and_ctrl_c_says_queued(p2pchat_home: Path) -> None:
    asyncio.run(friends_then_bob_away("Bob N"))  # a name with a space, to be quoted
    env = {**os.environ, "P2PCHAT_HOME": str(p2pchat_home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2pchat",
            "--profile",
            "alice",
            "--no-mdns",
            "send",
            "Bob N",
            "hi",
            "--wait",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the line comes (or the process ends)
        assert "waiting up to 60 s for Bob N" in first
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stays queued" in rest
    assert proc.returncode == 130
    # The command it suggests works as copied (the name with a space is quoted).
    hint = rest.split("`")[1]
    assert hint == "p2pchat --profile alice history 'Bob N'"
    shown = ok(*shlex.split(hint)[1:], home=p2pchat_home)
    assert "you: hi  …" in shown


def test_serve_says_a_peers_new_name_or_state_in_words() -> None:
    # Was "i7ohjskf is now bob [contact]", and nothing for our own rename.
    peer = {"type": "peer", "peer": "i7ohjskfaaaa", "name": "bob", "state": "contact"}
    assert describe_event(peer) == ["bob (i7ohjskf) is a contact"]
    stranger = {**peer, "name": "Bob N", "state": "unknown"}
    assert describe_event(stranger) == ["Bob N (i7ohjskf) is not a contact"]
    me = {**peer, "name": "Alice L", "state": "self"}
    assert describe_event(me) == ["your name is now Alice L"]


def test_a_too_long_name_says_it_was_shortened(p2pchat_home: Path) -> None:
    long_name = "Maximilian " * 9 + "X"  # 100 characters
    out = ok("--profile", "alice", "name", long_name, home=p2pchat_home)
    assert f"your name is now {long_name[:64].strip()}" in out
    assert "at most 64 characters" in out


async def alice_room_with_bob() -> None:
    """Alice's room "Hikers" with Bob in it (then both stop)."""
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        room = await alice.groups.create_room("Hikers")
        bob_events = bob.subscribe()
        await alice.groups.invite(room, bob.me)
        await wait_for(bob_events, lambda e: isinstance(e, RoomInvitation))
        await bob.groups.join(room)
    finally:
        await alice.stop()
        await bob.stop()


def test_removing_a_member_at_a_terminal_asks_first(
    p2pchat_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(alice_room_with_bob())
    asked: list[str] = []
    answers = ["n", "y"]

    def answer(prompt: str = "") -> str:
        asked.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", answer)
    argv = ["--profile", "alice", "--no-mdns", "room", "remove", "Hikers", "bob"]
    args = build_parser().parse_args(argv)
    assert args.handler(args) == 1  # "n": nothing happens
    assert asked[0].startswith("Remove bob from Hikers? They stop getting its messages")
    assert "nobody was removed" in capsys.readouterr().out
    args = build_parser().parse_args(argv)
    assert args.handler(args) == 0
    assert "bob was removed from Hikers" in capsys.readouterr().out
    members = json.loads(ok(*argv[:4], "members", "Hikers", "--json", home=p2pchat_home))
    assert [m["state"] for m in members if m["name"] == "bob"] == ["removed"]
