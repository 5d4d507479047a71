"""File transfers from the command line, for real: two ``serve`` processes and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pchat.control.client import ControlClient
from p2pchat.paths import profile_dir
from p2pchat.profile import CONTROL_SOCKET
from tests.processes import Serve, cli, free_port
from tests.transfer.helpers import sha256_file, write_random

SEND_FILE = """
import argparse, sys
from p2pchat.cli.file_cmds import cmd_send_file
args = argparse.Namespace(
    peer=sys.argv[1], file=sys.argv[2], json="--json" in sys.argv, profile=sys.argv[3],
    wait=float(sys.argv[4]), port=0, peer_addresses=[], no_announce=True, interface=[],
)
sys.exit(cmd_send_file(args))
"""


def send_file(home: Path, profile: str, peer: str, path: Path, wait: float, *extra: str) -> Any:
    """Run cmd_send_file (the lead wires it to `p2pchat send PEER --file PATH`)."""
    return subprocess.run(
        [sys.executable, "-c", SEND_FILE, peer, str(path), profile, str(wait), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "P2PCHAT_HOME": str(home)},
        timeout=120,
        check=False,
    )


def control(home: Path, profile: str, method: str, params: dict[str, Any]) -> Any:
    os.environ["P2PCHAT_HOME"] = str(home)

    async def go() -> Any:
        client = await ControlClient.connect(profile_dir(profile) / CONTROL_SOCKET)
        async with client:
            return await client.call(method, params)

    return asyncio.run(go())


@pytest.fixture
def two_nodes(p2pchat_home: Path) -> Iterator[tuple[Serve, Serve]]:
    pa, pb = free_port(), free_port()
    # Off mDNS (Serve adds --no-mdns) but not --no-announce: unannounced nodes tell
    # their names only to contacts, and these two start as strangers.
    common: tuple[str, ...] = ()
    alice = Serve("alice", p2pchat_home, "--port", str(pa), "--name", "alice", *common)
    bob = Serve(
        "bob",
        p2pchat_home,
        "--port",
        str(pb),
        "--peer",
        f"127.0.0.1:{pa}",
        "--name",
        "bob",
        *common,
    )
    try:
        alice.wait_for("bob is online")
        bob.wait_for("alice is online")
        yield alice, bob
    finally:
        alice.stop()
        bob.stop()


def test_send_list_get_from_the_cli(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path, tmp_path: Path
) -> None:
    for me, other in (("alice", "bob"), ("bob", "alice")):
        assert cli("--profile", me, "accept", other, home=p2pchat_home).returncode == 0
    downloads = tmp_path / "bob-downloads"
    settings = control(
        p2pchat_home, "bob", "file_settings", {"download_dir": str(downloads), "auto_accept_max": 0}
    )
    assert settings == {"auto_accept_max": 0, "download_dir": str(downloads)}
    src = tmp_path / "holiday photos.tar"
    digest = write_random(src, 3 * 1024 * 1024 + 3)

    sent = cli(
        "--profile", "alice", "send", "bob", "--file", str(src), "--wait", "0", home=p2pchat_home
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "offered holiday photos.tar" in sent.stdout

    listed = json.loads(cli("--profile", "bob", "files", "--json", home=p2pchat_home).stdout)
    assert [(t["name"], t["state"], t["incoming"]) for t in listed] == [
        ("holiday photos.tar", "offered", True)
    ]
    text = cli("--profile", "bob", "files", home=p2pchat_home).stdout
    # A hint to copy, naming the profile (bob is not the default one).
    assert f"p2pchat --profile bob get {listed[0]['short_id']}" in text

    got = cli("--profile", "bob", "get", listed[0]["short_id"], home=p2pchat_home)
    assert got.returncode == 0, got.stdout + got.stderr
    saved = Path(got.stdout.strip().removeprefix("saved to "))
    assert saved == downloads / "holiday photos.tar"
    assert sha256_file(saved) == digest

    mine = json.loads(cli("--profile", "alice", "files", "--json", home=p2pchat_home).stdout)
    assert mine[0]["state"] == "done"
    assert not mine[0]["incoming"]


def test_send_waits_for_an_auto_accepted_file(
    two_nodes: tuple[Serve, Serve], p2pchat_home: Path, tmp_path: Path
) -> None:
    for me, other in (("alice", "bob"), ("bob", "alice")):
        assert cli("--profile", me, "accept", other, home=p2pchat_home).returncode == 0
    downloads = tmp_path / "dl"
    control(p2pchat_home, "bob", "file_settings", {"download_dir": str(downloads)})
    src = tmp_path / "notes.txt"
    src.write_text("hello\n")
    sent = send_file(p2pchat_home, "alice", "bob", src, 20.0, "--json")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    result = json.loads(sent.stdout)
    assert result["state"] == "done"
    bob_files = control(p2pchat_home, "bob", "files", {"id": result["id"]})
    assert bob_files["state"] in ("active", "done")


def test_get_unknown_id_is_one_clean_line(p2pchat_home: Path) -> None:
    result = cli("--profile", "bob", "get", "abcd", "--no-wait", home=p2pchat_home)
    assert result.returncode == 1
    assert result.stderr.strip() == "p2pchat: no transfer with id 'abcd'"


def test_a_finished_transfer_reads_as_the_file_card_does() -> None:
    """The list says what the app's card says ("✓ sent" / "✓ saved"), not "done"."""
    from p2pchat.cli.file_cmds import progress_line

    base = {"name": "a.txt", "progress": 1.0, "done": 10, "size": 10, "rate": 0, "eta": None}
    assert progress_line({**base, "state": "done", "incoming": False}).endswith("✓ sent")
    assert progress_line({**base, "state": "done", "incoming": True}).endswith("✓ saved")
    assert progress_line({**base, "state": "failed", "incoming": True}).endswith("failed")
