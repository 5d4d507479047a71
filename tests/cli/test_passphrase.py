"""A passphrase encrypts the history at rest (issue 17, items 1 and 3): real nodes on
loopback, real files read back byte for byte, real child processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.cli import main
from p2pchat.cli.passphrase_cmds import NO_RECOVERY, apply_passphrase
from p2pchat.identity import KdfParams, WrongPassphraseError, encode_peer_id
from p2pchat.node import Node
from p2pchat.profile import PASSPHRASE_ENV, open_profile
from p2pchat.store import Store
from p2pchat.store.encryption import PAUSE_ENV, PAUSED_LINE, TEMP_SUFFIX
from tests.node.groups_helpers import wait_until
from tests.nodes import connected_pair, make_node

CHEAP = KdfParams(opslimit=1, memlimit=8192)
ROOT = Path(__file__).resolve().parents[2]
TEXT = "meet me at the lighthouse at nine"
BOB_NAME = "Bartholomew Zyx"
STEPS = ["key-file-written", "exported", "synced", "renamed", "store-rekeyed"]


def _raw_files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _found(folder: Path, needles: dict[str, bytes]) -> list[str]:
    return [
        f"{path.relative_to(folder)}: {what}"
        for path, data in _raw_files(folder).items()
        for what, needle in needles.items()
        if needle in data
    ]


async def _held(node: Node, peer: bytes) -> int:
    room = node.direct_room(peer)
    assert node.db is not None
    return await node.db.run(lambda s: s.message_count(room))


async def test_with_a_passphrase_no_text_name_or_contact_id_is_in_any_file_of_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice_profile = open_profile("alice")
    alice_profile.set_display_name("alice")
    apply_passphrase(alice_profile, "correct horse battery", CHEAP)
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    alice, bob = make_node("alice"), make_node("bob")
    bob.profile.set_display_name(BOB_NAME)
    await alice.start()
    await bob.start()
    try:
        await connected_pair(alice, bob)
        await alice.accept(bob.me)
        await bob.accept(alice.me)
        for i in range(20):
            await alice.send_text(bob.me, f"{TEXT} #{i}")
            await bob.send_text(alice.me, f"{TEXT} (reply {i})")

        async def both_have_all() -> bool:
            return await _held(alice, bob.me) >= 40 and await _held(bob, alice.me) >= 40

        await wait_until(alice, both_have_all, within=30)
        needles = {
            "message text": TEXT[:16].encode(),
            "contact's name": BOB_NAME.encode(),
            "contact's peer id (raw)": bob.me[:12],
            "contact's peer id (text)": encode_peer_id(bob.me)[:16].encode(),
            "contact's peer id (hex)": bob.me.hex()[:24].encode(),
        }
        # Bob has no passphrase: the same check finds everything in his plain store.
        assert len(_found(bob.profile.directory, {"text": needles["message text"]})) > 0
        running = _found(alice.profile.directory, needles)  # WAL and all, while it runs
    finally:
        await alice.stop()
        await bob.stop()
    assert running == []
    assert _found(alice.profile.directory, needles) == []
    # Alice's own peer id: only in identity.key (its public part, needed to name the
    # profile before the passphrase is typed); nowhere else.
    own = encode_peer_id(alice.me).encode()
    assert [str(p.name) for p, d in _raw_files(alice.profile.directory).items() if own in d] == [
        "identity.key"
    ]


def _profile_with_history(name: str, passphrase: str | None, count: int = 30) -> bytes:
    """A profile whose store holds ``count`` messages; returns the room id."""
    profile = open_profile(name, lambda: passphrase)
    if passphrase is not None:
        apply_passphrase(profile, passphrase, CHEAP)
    room = b"R" * 16
    with Store.open(
        profile.store_path, self_id=profile.identity.peer_id, key=profile.store_key
    ) as s:
        s.ensure_room(room, "group", name="history", owner=profile.identity.peer_id, created_at=1)
        from tests.store.helpers import msg

        with s.transaction():
            s.add_messages(
                [
                    msg(room=room, seq=i, body=b"%s %d" % (TEXT.encode(), i))
                    for i in range(1, count + 1)
                ]
            )
    profile.mark_store_created()
    return room


def _kill_at(step: str, name: str, old: str | None, new: str | None, home: Path) -> None:
    """Run the change in a child process, SIGKILL it when it says it reached ``step``."""
    env = {**os.environ, "P2PCHAT_HOME": str(home), PAUSE_ENV: step}
    env.pop(PASSPHRASE_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cli.passphrase_child", name, old or "", new or ""],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        line = proc.stderr.readline() if ready else ""
        assert line.startswith(f"{PAUSED_LINE} {step}"), (line, proc.poll())
    finally:
        proc.kill()  # SIGKILL: no cleanup, no atexit, no close of the store
        proc.wait(timeout=30)


def _opens_with(name: str, passphrase: str | None) -> bool:
    try:
        open_profile(name, lambda: passphrase)
    except WrongPassphraseError:
        return False
    return True


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, "first passphrase"),
        ("first passphrase", "second passphrase"),
        ("first passphrase", None),
    ],
    ids=["set", "change", "remove"],
)
def test_a_kill_at_any_step_of_set_change_remove_loses_nothing(
    p2pchat_home: Path, step: str, old: str | None, new: str | None
) -> None:
    name = f"k{STEPS.index(step)}"
    room = _profile_with_history(name, old)
    _kill_at(step, name, old, new, p2pchat_home)
    # Every step is after the key file's atomic write: the new passphrase opens it...
    assert _opens_with(name, new)
    if old is not None and new is not None:
        assert not _opens_with(name, old)
    # ...and the store opens through it (finishing the move), with every message.
    profile = open_profile(name, lambda: new)
    with Store.open(
        profile.store_path,
        create=False,
        key=profile.store_key,
        old_keys=profile.old_store_keys,
    ) as store:
        assert store.message_count(room) == 30
        assert store.get_messages([m.id for m in store.latest_messages(room, 1)])[
            0
        ].body.startswith(TEXT.encode())
        assert store.encrypted == (new is not None)
    plain = profile.store_path.read_bytes().startswith(b"SQLite format 3\x00")
    assert plain == (new is None)
    assert not profile.store_path.with_name(profile.store_path.name + TEMP_SUFFIX).exists()


def test_a_wrong_passphrase_is_refused_clearly_three_times_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    room = _profile_with_history("carol", "the right one")
    typed: list[str] = []

    def fake_getpass(prompt: str) -> str:  # the terminal: outside our control
        typed.append(prompt)
        return "not it"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert main(["--profile", "carol", "id"]) == 1
    err = capsys.readouterr().err
    assert len(typed) == 3
    assert "Wrong passphrase, try again (2 left)" in err
    assert "wrong passphrase (3 tries)" in err
    assert "no way to recover" in err
    assert "Nothing was changed or lost" in err
    monkeypatch.setenv(PASSPHRASE_ENV, "still not it")
    assert main(["--profile", "carol", "id"]) == 1
    assert f"wrong passphrase (from {PASSPHRASE_ENV})" in capsys.readouterr().err
    profile = open_profile("carol", lambda: "the right one")
    with Store.open(profile.store_path, create=False, key=profile.store_key) as store:
        assert store.message_count(room) == 30


def test_set_says_there_is_no_recovery_before_asking_for_the_passphrase(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    room = _profile_with_history("dave", None)
    shown_before_prompt: list[str] = []

    def fake_getpass(prompt: str) -> str:
        shown_before_prompt.append(capsys.readouterr().out)
        return "a good long passphrase"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("p2pchat.profile.KdfParams", lambda: CHEAP)
    assert main(["--profile", "dave", "passphrase", "set"]) == 0
    assert "no way to recover a forgotten passphrase" in shown_before_prompt[0]
    assert NO_RECOVERY.split(":")[0] in shown_before_prompt[0]
    assert "history encrypted" in capsys.readouterr().out
    profile = open_profile("dave", lambda: "a good long passphrase")
    assert not profile.store_path.read_bytes().startswith(b"SQLite format 3")
    with Store.open(profile.store_path, create=False, key=profile.store_key) as store:
        assert store.message_count(room) == 30
    assert main(["--profile", "dave", "passphrase", "set"]) == 1  # already has one
    monkeypatch.setenv(PASSPHRASE_ENV, "a good long passphrase")
    assert "passphrase change" in capsys.readouterr().err


async def test_set_refuses_while_the_app_runs_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = make_node("erin")
    await node.start()
    try:
        before = (node.profile.directory / "identity.key").read_bytes()
        with pytest.raises(Exception, match="another p2pchat is using this profile"):
            await asyncio.to_thread(
                apply_passphrase, open_profile("erin"), "some passphrase", CHEAP
            )
        assert (node.profile.directory / "identity.key").read_bytes() == before
    finally:
        await node.stop()
