"""Issue scenario: three `serve` processes form a room; an absent member catches up from
the one member still running after the author stopped too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.processes import Serve, cli, free_port


def ok(*args: str, home: Path) -> str:
    result = cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_three_profiles_form_a_room_and_the_absent_one_catches_up(p2pchat_home: Path) -> None:
    ports = {name: free_port() for name in ("alice", "bob", "carol")}

    def serve(name: str) -> Serve:
        peers = [a for n, p in ports.items() if n != name for a in ("--peer", f"127.0.0.1:{p}")]
        # Off mDNS (Serve adds --no-mdns) but not --no-announce: unannounced nodes tell
        # their names only to contacts, and these start as strangers.
        return Serve(name, p2pchat_home, "--port", str(ports[name]), "--name", name, *peers)

    nodes = {name: serve(name) for name in ports}
    try:
        for name, node in nodes.items():
            for other in ports:
                if other != name:
                    node.wait_for(f"{other} is online")
        for name in ports:
            for other in ports:
                if other != name:
                    ok("--profile", name, "accept", other, home=p2pchat_home)
        created = json.loads(
            ok("--profile", "alice", "room", "create", "Book club", "--json", home=p2pchat_home)
        )
        room = created["id"][:8]
        for invitee in ("bob", "carol"):
            ok("--profile", "alice", "room", "invite", room, invitee, home=p2pchat_home)
            nodes[invitee].wait_for("alice invited " + invitee)
            ok("--profile", invitee, "room", "join", room, home=p2pchat_home)
        nodes["alice"].wait_for("carol joined")
        nodes["bob"].wait_for("carol joined")
        members = json.loads(
            ok("--profile", "carol", "room", "members", room, "--json", home=p2pchat_home)
        )
        assert sorted((m["name"], m["state"]) for m in members) == [
            ("alice", "joined"),
            ("bob", "joined"),
            ("carol", "joined"),
        ]
        assert nodes["carol"].stop() == 0
        for i in range(3):
            ok(
                "--profile",
                "alice",
                "send",
                "--room",
                room,
                f"alice says {i}",
                "--wait",
                "0",
                home=p2pchat_home,
            )
            ok(
                "--profile",
                "bob",
                "send",
                "--room",
                room,
                f"bob says {i}",
                "--wait",
                "0",
                home=p2pchat_home,
            )
        nodes["bob"].wait_for("message from alice: alice says 2")
        assert nodes["alice"].stop() == 0  # the author is gone too
        nodes["carol"] = Serve(
            "carol", p2pchat_home, "--port", str(ports["carol"]), "--no-announce"
        )
        nodes["carol"].wait_for("message from alice: alice says 2")
        nodes["carol"].wait_for("message from bob: bob says 2")
        history = json.loads(
            ok("--profile", "carol", "history", "--room", room, "--json", home=p2pchat_home)
        )["messages"]
        said = [m["text"] for m in history if " says " in m["text"]]
        assert sorted(said) == sorted([f"{n} says {i}" for n in ("alice", "bob") for i in range(3)])
        system = [m["text"] for m in history if " says " not in m["text"]]
        assert system[0] == "alice created the room \u201cBook club\u201d"
        assert "carol joined" in system
    finally:
        for node in nodes.values():
            node.stop()
