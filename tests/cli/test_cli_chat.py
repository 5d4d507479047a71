"""The README's walkthrough, for real: two ``serve`` processes and CLI commands."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Serve, cli, free_port


@pytest.fixture
def two_nodes(p2pchat_home: Path) -> Iterator[tuple[Serve, Serve]]:
    pa, pb = free_port(), free_port()
    alice = Serve(
        "alice",
        p2pchat_home,
        "--port",
        str(pa),
        "--peer",
        f"127.0.0.1:{pb}",
        "--name",
        "alice",
    )
    bob = Serve(
        "bob",
        p2pchat_home,
        "--port",
        str(pb),
        "--peer",
        f"127.0.0.1:{pa}",
        "--name",
        "bob",
    )
    # Off mDNS (Serve adds --no-mdns) but not --no-announce: unannounced nodes tell
    # their names only to contacts, and these two start as strangers.
    try:
        alice.wait_for("bob is online")
        bob.wait_for("alice is online")
        yield alice, bob
    finally:
        alice.stop()
        bob.stop()


def test_chat_from_the_command_line(two_nodes: tuple[Serve, Serve], p2pchat_home: Path) -> None:
    alice, bob = two_nodes
    sent = cli("--profile", "alice", "send", "bob", "hi 👋", home=p2pchat_home)
    assert sent.returncode == 0, sent.stderr
    assert "sent" in sent.stdout  # bob has not accepted alice yet
    request = bob.wait_for("contact request from alice")
    assert "to accept: p2pchat --profile bob accept " in request  # copyable as it is
    hist = cli("--profile", "bob", "history", "alice", home=p2pchat_home)
    assert hist.returncode == 0, hist.stderr
    assert "alice: hi 👋" in hist.stdout

    assert cli("--profile", "bob", "accept", "alice", home=p2pchat_home).returncode == 0
    again = cli("--profile", "alice", "send", "bob", "second", "--wait", "10", home=p2pchat_home)
    assert again.stdout.strip() == "delivered", again.stdout + again.stderr

    data = json.loads(
        cli("--profile", "bob", "history", "alice", "--json", home=p2pchat_home).stdout
    )
    # The control socket's shape (docs/control.md): {peer, room, messages}.
    assert set(data) == {"peer", "room", "messages"}
    assert data["peer"] == "alice"
    assert [m["text"] for m in data["messages"]] == ["hi 👋", "second"]
    assert all(not m["outgoing"] for m in data["messages"])
    # Showing them in `history` counts as read: alice's copy turns "read".
    alice.wait_for("message(s) read")
    mine = json.loads(
        cli("--profile", "alice", "history", "bob", "--json", home=p2pchat_home).stdout
    )
    assert mine["messages"][-1]["status"] == "read"

    peers = json.loads(cli("--profile", "alice", "peers", "--json", home=p2pchat_home).stdout)
    assert [(p["name"], p["online"], p["state"]) for p in peers] == [("bob", True, "contact")]


def test_hostile_text_is_printed_harmlessly(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path
) -> None:
    _alice, bob = two_nodes
    evil = "[bold]x[/] \x1b[2J\x07 [@click=app.quit]"
    assert (
        cli("--profile", "alice", "send", "bob", evil, "--wait", "0", home=p2pchat_home).returncode
        == 0
    )
    line = bob.wait_for("message from alice")
    assert "\x1b" not in line
    assert "\\x1b[2J" in line
    hist = cli("--profile", "bob", "history", "alice", home=p2pchat_home).stdout
    assert "\x1b" not in hist
    assert "\x07" not in hist
    assert "[bold]x[/]" in hist


def test_unknown_and_ambiguous_peers_fail_clearly(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path
) -> None:
    result = cli("--profile", "alice", "send", "carol", "hi", home=p2pchat_home)
    assert result.returncode == 1
    assert "no peer called 'carol'" in result.stderr
    assert "Traceback" not in result.stderr
    near = cli("--profile", "alice", "send", "bo", "hi", home=p2pchat_home)
    assert near.returncode == 1
    assert "bob" in near.stderr  # listed as a candidate


def test_message_to_an_offline_peer_is_queued_then_delivered(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path
) -> None:
    alice, bob = two_nodes
    assert cli("--profile", "bob", "accept", "alice", home=p2pchat_home).returncode == 0
    port_line = bob.wait_for("on port")
    bob_port = port_line.split("on port ")[1].split(";")[0]
    assert bob.stop() == 0
    alice.wait_for("went offline")
    queued = cli("--profile", "alice", "send", "bob", "while away", home=p2pchat_home)
    assert queued.stdout.startswith("queued"), queued.stdout
    bob2 = Serve("bob", p2pchat_home, "--port", bob_port, "--no-announce")
    try:
        bob2.wait_for("message from alice: while away")
        alice.wait_for("message(s) delivered")
    finally:
        bob2.stop()


def test_serve_stops_cleanly_on_sigint_and_sigterm(p2pchat_home: Path) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        node = Serve("solo", p2pchat_home, "--port", "0", "--no-announce")
        node.wait_for("on port")
        assert node.stop(sig) == 0
        node.wait_for("stopped")
    db = sqlite3.connect(p2pchat_home / "profiles" / "solo" / "store.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not (p2pchat_home / "profiles" / "solo" / "control.sock").exists()


def test_port_in_use_and_second_instance_give_clear_errors(p2pchat_home: Path) -> None:
    port = free_port()
    first = Serve("one", p2pchat_home, "--port", str(port), "--no-announce")
    try:
        first.wait_for("on port")
        clash = cli(
            "--profile",
            "two",
            "serve",
            "--port",
            str(port),
            "--no-announce",
            home=p2pchat_home,
            timeout=30,
        )
        assert clash.returncode == 1
        assert "already in use" in clash.stderr
        assert "Traceback" not in clash.stderr
        twin = cli("--profile", "one", "serve", "--no-announce", home=p2pchat_home, timeout=30)
        assert twin.returncode == 1
        assert "another p2pchat" in twin.stderr
        assert "Traceback" not in twin.stderr
    finally:
        first.stop()


def test_commands_work_without_a_running_node(p2pchat_home: Path) -> None:
    assert cli("--profile", "solo", "name", "Solo Person", home=p2pchat_home).returncode == 0
    ident = json.loads(cli("--profile", "solo", "id", "--json", home=p2pchat_home).stdout)
    assert ident["name"] == "Solo Person"
    added = cli("--profile", "solo", "add", "127.0.0.1:7999", home=p2pchat_home)
    assert added.returncode == 0, added.stderr
    bad = cli("--profile", "solo", "add", "nonsense", home=p2pchat_home)
    assert bad.returncode != 0
    assert "HOST:PORT" in bad.stderr
    peers = cli("--profile", "solo", "peers", home=p2pchat_home)
    assert peers.returncode == 0
    assert "no peers yet" in peers.stdout


def test_a_command_whose_node_dies_says_so_without_a_traceback(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path, tmp_path: Path
) -> None:
    alice, bob = two_nodes
    assert cli("--profile", "alice", "accept", "bob", home=p2pchat_home).returncode == 0
    bob.stop()
    alice.wait_for("bob went offline")  # by name, as "bob is online" says it
    photo = tmp_path / "photo.bin"
    photo.write_bytes(b"x" * 10_000)
    # Bob is away: `send --file` keeps following the offer through alice's serve...
    command = ["--profile", "alice", "send", "bob", "--file", str(photo), "--wait", "60"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "p2pchat", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "P2PCHAT_HOME": str(p2pchat_home)},
    )
    try:
        alice.wait_for("file photo.bin: offered")
        alice.stop(signal.SIGKILL)  # ...and that node dies under it
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 1, out + err
    assert "stopped; run this command again" in err
    assert "Traceback" not in err


def test_send_with_the_same_client_id_stores_one_copy(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path
) -> None:
    for _ in range(2):  # a script retrying after it lost the answer
        sent = cli(
            "--profile", "alice", "send", "bob", "once", "--client-id", "k1", home=p2pchat_home
        )
        assert sent.returncode == 0, sent.stderr
    mine = json.loads(
        cli("--profile", "alice", "history", "bob", "--json", home=p2pchat_home).stdout
    )
    assert [m["text"] for m in mine["messages"]].count("once") == 1
