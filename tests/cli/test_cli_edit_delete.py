"""``p2pchat edit``, ``delete`` and ``disappear``: ids from ``history --json``, errors said."""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.node import MessageAdded
from tests.node.groups_helpers import befriend
from tests.nodes import make_node, wait_for
from tests.processes import cli


def _history(profile: str, peer: str, home: Path) -> list[dict[str, object]]:
    out = cli("--profile", profile, "history", peer, "--json", home=home)
    assert out.returncode == 0, out.stderr
    messages: list[dict[str, object]] = json.loads(out.stdout)["messages"]
    return messages


async def test_edit_delete_and_disappear_from_the_command_line(p2pchat_home: Path) -> None:
    home = p2pchat_home
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    try:
        await befriend(alice, bob)
        arrived = bob.subscribe()
        sent = await alice.send_text(bob.me, "lunch at 12")
        await wait_for(arrived, lambda e: isinstance(e, MessageAdded) and e.incoming)
    finally:
        await alice.stop()
        await bob.stop()
    message_id = sent.id.hex()
    assert [m["id"] for m in _history("alice", "bob", home)] == [message_id]

    edited = cli("--profile", "alice", "--no-mdns", "edit", message_id, "lunch at 1", home=home)
    assert edited.returncode == 0, edited.stderr
    assert edited.stdout.strip() == "edited"
    (shown,) = _history("alice", "bob", home)
    assert (shown["text"], shown["edited"]) == ("lunch at 1", True)

    # Bob holds alice's message but cannot edit it; the reason is said.
    refused = cli("--profile", "bob", "--no-mdns", "edit", message_id, "free", home=home)
    assert refused.returncode != 0
    assert "only edit your own" in refused.stderr

    deleted = cli("--profile", "alice", "--no-mdns", "delete", message_id, home=home)
    assert deleted.returncode == 0, deleted.stderr
    timer = cli("--profile", "alice", "--no-mdns", "disappear", "bob", "1d", home=home)
    assert timer.returncode == 0, timer.stderr
    assert "disappear after 1 day" in timer.stdout
    assert [m["text"] for m in _history("alice", "bob", home)] == [
        "message deleted",
        "alice set messages to disappear after 1 day",
    ]
    wrong = cli("--profile", "alice", "--no-mdns", "disappear", "bob", "2d", home=home)
    assert wrong.returncode != 0
    assert "off, 5m, 1h, 1d or 1w" in wrong.stderr
