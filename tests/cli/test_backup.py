"""``p2pchat backup`` and ``p2pchat restore`` (issue 11, item 6): real nodes on loopback,
real files; the backup is taken while the node is receiving messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from p2pchat.cli import main
from p2pchat.control.api import NodeApi
from p2pchat.control.server import ControlServer
from p2pchat.identity import KdfParams, save_identity
from p2pchat.key_doc import KEY_FILE
from p2pchat.node import Node
from p2pchat.paths import profile_dir
from p2pchat.profile import PASSPHRASE_ENV, STORE_FILE, open_profile
from p2pchat.store import Store
from tests.node.groups_helpers import wait_until
from tests.nodes import connected_pair, make_node

FAST_KDF = KdfParams(opslimit=1, memlimit=8192)
BEFORE = 40
DURING = 150


async def befriend(a: Node, b: Node) -> None:
    await connected_pair(a, b)
    await a.accept(b.me)
    await b.accept(a.me)


async def cli(args: list[str]) -> int:
    """Run ``p2pchat ARGS`` from an async test (the command runs its own event loop)."""
    return await asyncio.to_thread(main, args)


async def held_by(node: Node, author: bytes) -> list[int]:
    """Seqs of ``author``'s messages in their direct room with ``node``, ascending."""
    room = node.direct_room(author)
    msgs = await node.db.run(lambda s: s.latest_messages(room, 100_000))  # type: ignore[union-attr]
    return sorted(m.seq for m in msgs if m.author == author)


async def wait_held(node: Node, author: bytes, count: int) -> None:
    """Wait (on the node's events) until it holds ``count`` messages of ``author``."""

    async def enough() -> bool:
        return len(await held_by(node, author)) >= count

    await wait_until(node, enough, within=30)


async def test_backup_of_a_running_node_while_it_receives_restores_the_same_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    server = ControlServer(NodeApi(bob), bob.profile.control_path)
    await server.start()
    backup = tmp_path / "bob.p2pchat-backup"
    try:
        await befriend(alice, bob)
        for n in range(BEFORE):
            await alice.send_text(bob.me, f"before {n}")
        await wait_held(bob, alice.me, BEFORE)

        async def keep_sending() -> None:
            for n in range(DURING):
                await alice.send_text(bob.me, f"during {n}")
                await asyncio.sleep(0.002)

        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.05)  # messages are arriving while the snapshot is taken
        code = await asyncio.to_thread(main, ["--profile", "bob", "backup", str(backup)])
        assert code == 0
        arrived_by_then = len(await held_by(bob, alice.me))
        await sender
        await wait_held(bob, alice.me, BEFORE + DURING)
    finally:
        await server.stop()
        await alice.stop()
        await bob.stop()
    out, err = capsys.readouterr()
    assert "NOT encrypted" in err
    assert "contents of files" in out
    assert arrived_by_then > BEFORE  # the snapshot really raced incoming messages

    new_home = tmp_path / "new-machine"
    monkeypatch.setenv("P2PCHAT_HOME", str(new_home))
    assert main(["--profile", "bob", "restore", str(backup)]) == 0
    assert "restored profile 'bob'" in capsys.readouterr().out

    restored = make_node("bob")
    await restored.start()
    try:
        assert restored.me == bob.me
        seqs = await held_by(restored, alice.me)
        # A consistent snapshot: alice's messages without a gap, and the head agrees.
        assert len(seqs) >= BEFORE
        assert seqs == list(range(1, len(seqs) + 1))
        room = restored.direct_room(alice.me)
        heads = await restored.db.run(lambda s: s.heads(room))  # type: ignore[union-attr]
        assert heads[alice.me] == len(seqs)
        contacts = await restored.db.run(lambda s: s.list_peers("contact"))  # type: ignore[union-attr]
        assert [p.id for p in contacts] == [alice.me]
        history = await restored.history(room, 5)
        assert history
        assert all(m.body.decode().startswith(("before", "during")) for m in history)
    finally:
        await restored.stop()


async def test_backup_without_a_running_node_and_restore_refuses_an_existing_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = make_node("dave")
    await node.start()
    await node.stop()
    backup = tmp_path / "dave.backup"
    assert await cli(["--profile", "dave", "backup", str(backup)]) == 0
    assert await cli(["--profile", "dave", "backup", str(backup)]) == 1  # never overwrites
    assert "--force" in capsys.readouterr().err

    assert await cli(["--profile", "dave", "restore", str(backup)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert await cli(["--profile", "dave", "restore", str(backup), "--force"]) == 0
    kept = list(profile_dir("dave").parent.glob("dave.replaced-*"))
    assert len(kept) == 1
    assert (kept[0] / KEY_FILE).exists()  # the replaced profile is kept, not deleted
    again = make_node("dave")
    await again.start()
    assert again.me == node.me
    await again.stop()


async def test_a_sealed_profile_gives_a_sealed_backup_that_needs_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = open_profile("erin")
    save_identity(profile.directory / KEY_FILE, profile.identity, "correct horse", FAST_KDF)
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    node = make_node("erin")
    await node.start()
    await node.stop()
    backup = tmp_path / "erin.backup"
    assert await cli(["--profile", "erin", "backup", str(backup)]) == 0
    assert "sealed with your passphrase" in capsys.readouterr().out
    data = backup.read_bytes()
    assert b"SQLite format 3" not in data
    assert b"erin" not in data  # not even the profile's name is readable

    monkeypatch.delenv(PASSPHRASE_ENV)
    assert await cli(["--profile", "other", "restore", str(backup)]) == 1
    assert "sealed with a passphrase" in capsys.readouterr().err
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse")
    assert await cli(["--profile", "other", "restore", str(backup)]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    assert not profile_dir("other", create=False).exists()

    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert await cli(["--profile", "other", "restore", str(backup)]) == 0
    restored = make_node("other")
    assert restored.me == node.me
    # With a passphrase the store is encrypted (issue 17), in the backup and restored.
    assert restored.profile.store_key is not None
    assert not restored.profile.store_path.read_bytes().startswith(b"SQLite format 3")
    await restored.start()
    await restored.stop()


def make_backup(tmp_path: Path, name: str, *extra: str) -> Path:
    profile = open_profile(name)
    with Store.open(profile.store_path) as store:
        store.set_setting("hello", "world")
    profile.mark_store_created()
    backup = tmp_path / f"{name}.backup"
    assert main(["--profile", name, "backup", str(backup), *extra]) == 0
    return backup


@pytest.mark.parametrize("sealed", [False, True])
def test_a_truncated_backup_is_refused_and_creates_no_profile(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sealed: bool,
) -> None:
    monkeypatch.setenv("P2PCHAT_BACKUP_PASSPHRASE", "a long passphrase")
    monkeypatch.setattr("p2pchat.cli.backup_cmds.KdfParams", lambda: FAST_KDF)
    backup = make_backup(tmp_path, "frank", *(["--passphrase"] if sealed else []))
    data = backup.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 40):
        backup.write_bytes(data[:cut])
        assert main(["--profile", "copy", "restore", str(backup)]) == 1
        assert "truncated" in capsys.readouterr().err
        assert not profile_dir("copy", create=False).exists()
        assert not list(profile_dir("copy", create=False).parent.glob(".restore-*"))


@pytest.mark.parametrize("sealed", [False, True])
def test_a_tampered_backup_is_refused_and_creates_no_profile(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sealed: bool,
) -> None:
    monkeypatch.setenv("P2PCHAT_BACKUP_PASSPHRASE", "a long passphrase")
    monkeypatch.setattr("p2pchat.cli.backup_cmds.KdfParams", lambda: FAST_KDF)
    backup = make_backup(tmp_path, "gina", *(["--passphrase"] if sealed else []))
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the store's bytes
    backup.write_bytes(bytes(data))
    assert main(["--profile", "copy", "restore", str(backup)]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err or "tampered" in err
    assert not profile_dir("copy", create=False).exists()

    (tmp_path / "not-a-backup").write_bytes(b"SQLite format 3\x00" + bytes(100))
    assert main(["--profile", "copy", "restore", str(tmp_path / "not-a-backup")]) == 1
    assert "not a p2pchat backup" in capsys.readouterr().err


def test_a_backup_holds_the_store_and_the_key_but_no_other_file(tmp_path: Path) -> None:
    from p2pchat.cli.backup_archive import read_backup

    backup = make_backup(tmp_path, "hank")
    out = tmp_path / "out"
    out.mkdir()
    manifest = read_backup(backup, out, None)
    assert set(manifest.files) <= {KEY_FILE, STORE_FILE, "profile.json"}
    with Store.open(out / STORE_FILE) as store:
        assert store.get_setting("hello") == "world"


def test_a_backup_header_asking_for_a_huge_argon2_cost_is_refused_before_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import struct

    from p2pchat.cli.backup_archive import MAGIC

    kdf = {"name": "argon2id", "opslimit": 4, "memlimit": 1 << 40, "salt": "00" * 16}
    header = json.dumps({"format": 1, "sealed": True, "kdf": kdf}).encode()
    hostile = tmp_path / "hostile.backup"
    hostile.write_bytes(MAGIC + struct.pack(">I", len(header)) + header)
    monkeypatch.setenv(PASSPHRASE_ENV, "whatever it is")
    assert main(["--profile", "copy", "restore", str(hostile)]) == 1
    assert "sealing parameters" in capsys.readouterr().err


async def test_after_a_restore_a_group_room_gets_back_what_was_sent_since_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.node.groups_helpers import befriend as befriend_pair
    from tests.node.groups_helpers import form_room, wait_texts

    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    backup = tmp_path / "bob.backup"
    try:
        await befriend_pair(alice, bob)
        room = await form_room(alice, [bob])
        await alice.send_message(room, "before the backup")
        await wait_texts(bob, room, 1)
        await bob.stop()  # a backup of a stopped profile, taken directly
        assert await cli(["--profile", "bob", "backup", str(backup)]) == 0
        await bob.start()
        await connected_pair(alice, bob)
        for n in range(5):
            await alice.send_message(room, f"after the backup {n}")
        await wait_texts(bob, room, 6)
        await bob.stop()

        monkeypatch.setenv("P2PCHAT_HOME", str(tmp_path / "new-machine"))
        assert await cli(["--profile", "bob", "restore", str(backup)]) == 0
        # What the copy holds before it starts (once started, Alice's link, up within
        # milliseconds, may already have synced the rest).
        with Store.open(profile_dir("bob") / STORE_FILE) as store:
            held = [m.body.decode() for m in store.messages_of_kind(room, "text")]
        assert held == ["before the backup"]
        restored = make_node("bob")
        await restored.start()
        try:
            await connected_pair(alice, restored)
            await wait_texts(restored, room, 6)  # anti-entropy with any member
        finally:
            await restored.stop()
    finally:
        await alice.stop()
        await bob.stop()
