"""The store encrypted at rest (issue 17, item 1): real encrypted files, raw bytes read back."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from p2pchat.store import (
    CorruptStoreError,
    ForeignDatabaseError,
    NewerSchemaError,
    Store,
    StoreKeyError,
    db,
)
from p2pchat.store.backup import snapshot
from p2pchat.store.encryption import PAUSE_ENV, PAUSED_LINE, TEMP_SUFFIX

from .helpers import ROOM, SELF, msg

SECRET_TEXT = b"the treasure is under the third oak"
CONTACT_NAME = "Zebediah Quux"
#: A contact's peer id: random-looking, so a match in the raw bytes cannot be chance.
CONTACT = bytes.fromhex("9f3a61c27be04d18a5f2c6e93b7d0a4481e5c39f27b6d0e4a8c1f5b2937e6d0a")
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _fill(store: Store, n: int = 50) -> None:
    store.ensure_room(ROOM, "group", name="Secret Society", owner=SELF, created_at=1)
    store.upsert_peer(CONTACT, name=CONTACT_NAME, state="contact", last_seen=5)
    with store.transaction():
        store.add_messages(
            [msg(author=CONTACT, seq=i, body=SECRET_TEXT + b" #%d" % i) for i in range(1, n + 1)]
        )


def _raw(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _leaks(folder: Path) -> list[str]:
    """Every (file, secret) pair where a secret shows in the raw bytes of the folder."""
    secrets = {
        "text": SECRET_TEXT[:12],
        "contact name": CONTACT_NAME.encode(),
        "room name": b"Secret Society",
        "peer id": CONTACT[:12],
        "peer id (hex)": CONTACT.hex().encode()[:24],
    }
    return [
        f"{name}: {what}"
        for name, data in _raw(folder).items()
        for what, secret in secrets.items()
        if secret in data
    ]


def test_without_a_key_the_file_is_plain_sqlite_as_before(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF) as store:
        _fill(store)
    assert db_path.read_bytes().startswith(b"SQLite format 3\x00")
    assert _leaks(db_path.parent)  # the check below can see a leak when there is one


def test_with_a_key_no_text_name_or_id_is_in_the_store_or_its_wal(db_path: Path) -> None:
    store = Store.open(db_path, self_id=SELF, key=KEY)
    try:
        _fill(store)
        # While open, the latest commits live in the -wal: it must be encrypted too.
        assert (db_path.parent / (db_path.name + "-wal")).stat().st_size > 0
        assert _leaks(db_path.parent) == []
    finally:
        store.close()
    assert _leaks(db_path.parent) == []
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.encrypted
        assert store.message_count(ROOM) == 50
        # The search index lives in the same encrypted file, and works there.
        found, _ = store.search_messages("third oak", limit=100)
        assert len(found) == 50
        assert store.get_peer(CONTACT).name == CONTACT_NAME  # type: ignore[union-attr]


def test_a_wrong_key_is_refused_and_the_file_is_left_as_it_was(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store)
    before = _raw(db_path.parent)
    with pytest.raises(StoreKeyError, match="does not unlock") as caught:
        Store.open(db_path, self_id=SELF, key=OTHER_KEY)
    assert KEY.hex() not in str(caught.value)
    assert OTHER_KEY.hex() not in str(caught.value)
    with pytest.raises(CorruptStoreError, match="no passphrase"):
        Store.open(db_path, self_id=SELF)
    after = _raw(db_path.parent)
    assert {k: v for k, v in after.items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.message_count(ROOM) == 50


@pytest.mark.parametrize(
    ("start", "end"), [(None, KEY), (KEY, OTHER_KEY), (KEY, None)], ids=["set", "change", "remove"]
)
def test_opening_with_an_old_key_moves_the_store_to_the_new_one(
    db_path: Path, start: bytes | None, end: bytes | None
) -> None:
    with Store.open(db_path, self_id=SELF, key=start) as store:
        _fill(store)
    olds = (start,) if start is not None else ()
    with Store.open(db_path, self_id=SELF, key=end, old_keys=olds) as store:
        assert store.message_count(ROOM) == 50
    assert db_path.read_bytes().startswith(b"SQLite format 3\x00") == (end is None)
    assert not db_path.with_name(db_path.name + TEMP_SUFFIX).exists()
    with Store.open(db_path, self_id=SELF, key=end) as store:  # no old key needed now
        assert store.message_count(ROOM) == 50
        assert store.integrity_check() == ["ok"]
    if start is not None and end is not None:
        with pytest.raises(StoreKeyError):
            Store.open(db_path, self_id=SELF, key=start)


def test_rekey_of_an_open_store_keeps_every_row_and_the_index_and_schema(db_path: Path) -> None:
    store = Store.open(db_path, self_id=SELF)
    try:
        _fill(store)
        version = store._db.execute("PRAGMA user_version").fetchone()[0]
        store.rekey(KEY)
        assert store.encrypted
        assert store.message_count(ROOM) == 50
        store.add_messages([msg(author=CONTACT, seq=51, body=SECRET_TEXT)])
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == version
    finally:
        store.close()
    assert _leaks(db_path.parent) == []
    with Store.open(db_path, self_id=SELF, key=KEY) as again:
        assert again.message_count(ROOM) == 51
        assert len(again.search_messages("treasure", limit=100)[0]) == 51
        assert again.integrity_check() == ["ok"]


def test_an_encrypted_stores_backup_is_encrypted_with_the_same_key(
    db_path: Path, tmp_path: Path
) -> None:
    store = Store.open(db_path, self_id=SELF, key=KEY)
    try:
        _fill(store)
        dest = tmp_path / "snap.sqlite3"
        snapshot(db_path, dest, KEY)  # as the control socket does beside the running node
    finally:
        store.close()
    assert SECRET_TEXT[:12] not in dest.read_bytes()
    assert not dest.read_bytes().startswith(b"SQLite format 3")
    with Store.open(dest, self_id=SELF, key=KEY) as copy:
        assert copy.message_count(ROOM) == 50


def test_a_leftover_half_copy_is_removed_and_never_read(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store)
    leftover = db_path.with_name(db_path.name + TEMP_SUFFIX)
    leftover.write_bytes(os.urandom(4096))
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.message_count(ROOM) == 50
    assert not leftover.exists()


def test_a_damaged_index_page_of_an_encrypted_store_is_rebuilt_encrypted(db_path: Path) -> None:
    from p2pchat.store import db

    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store, 3000)
    conn = db.connect(db_path, KEY)
    try:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'messages_arrival'"
        ).fetchone()[0]
    finally:
        conn.close()
    with db_path.open("r+b") as f:  # a bad sector inside one index page: its tag fails
        f.seek((root - 1) * 4096 + 100)
        f.write(os.urandom(200))
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.rebuilt_from is not None  # the damaged file, kept beside
        assert store.message_count(ROOM) == 3000
        assert store.integrity_check() == ["ok"]
    assert _leaks(db_path.parent) == []  # the rebuilt store and the kept one: encrypted
    assert not db_path.read_bytes().startswith(b"SQLite format 3")


# ------------------------------------------------------------ stores encrypted before

#: A store written by p2pchat 35d2666 (the release before AEGIS) through sqlcipher3:
#: SQLCipher 4.19, HMAC-SHA256, raw key KEY; a group room "Fixture room" with three
#: messages by b"A" * 32 that each contain "zebracorn", indexed for search.
SQLCIPHER_FIXTURE = Path(__file__).with_name("data") / "sqlcipher4-sha256.sqlite3"
LEGACY = [pytest.param(c, id=c.name) for c in db.LEGACY_CIPHERS]


def _as_legacy(path: Path, key: bytes, cipher: db.Cipher) -> None:
    """Rewrite the store at ``path`` in an older page format (SQLite3 Multiple Ciphers
    writes SQLCipher 4's too), as p2pchat wrote stores before AEGIS."""
    hmac = {"sqlcipher4-hmac-sha256": 1, "sqlcipher4-hmac-sha512": 2}[cipher.name]
    legacy = path.with_name("legacy.sqlite")
    key_param = quote(f"x'{key.hex()}'", safe="")
    target = f"{legacy.resolve().as_uri()}?cipher=sqlcipher&legacy=4&hmac_algorithm={hmac}"
    conn = db.connect(path, key)
    try:
        conn.execute("VACUUM INTO ?", (f"{target}&key={key_param}",))
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(legacy, path)
    assert _cipher_of(path, key) == cipher.name


def _cipher_of(path: Path, key: bytes) -> str:
    """The page format the file at ``path`` is read in with ``key``."""
    conn = db.connect(path, key)
    try:
        assert db.key_opens(conn)
        cipher = getattr(conn, "cipher", None)
        assert cipher is not None
        return str(cipher.name)
    finally:
        conn.close()


def test_new_encrypted_stores_use_aegis_256(db_path: Path) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store)
    assert _cipher_of(db_path, KEY) == db.CIPHER.name == "aegis-256"


def test_a_store_written_by_the_sqlcipher_release_opens_whole_and_moves_to_aegis(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(SQLCIPHER_FIXTURE.read_bytes())
    assert _cipher_of(db_path, KEY) == "sqlcipher4-hmac-sha256"

    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        fixture_room = b"R" * 16
        assert [r.room.name for r in store.list_rooms()] == ["Fixture room"]
        texts = [m.body for m in store.latest_messages(fixture_room, 10)]
        assert texts == [f"fixture message {i} zebracorn".encode() for i in (1, 2, 3)]
        found, _ = store.search_messages("zebracorn")
        assert len(found) == 3
        assert store.integrity_check() == ["ok"]
    assert _cipher_of(db_path, KEY) == db.CIPHER.name
    assert b"zebracorn" not in db_path.read_bytes()
    assert not db_path.with_name(db_path.name + TEMP_SUFFIX).exists()


@pytest.mark.parametrize("cipher", LEGACY)
def test_a_store_in_an_older_format_opens_whole_and_is_moved_to_aegis(
    db_path: Path, cipher: db.Cipher
) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store, 300)
    _as_legacy(db_path, KEY, cipher)

    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.message_count(ROOM) == 300
        assert store.integrity_check() == ["ok"]
        assert [r.room.name for r in store.list_rooms()] == ["Secret Society"]
    assert _cipher_of(db_path, KEY) == db.CIPHER.name
    assert _leaks(db_path.parent) == []
    assert not db_path.with_name(db_path.name + TEMP_SUFFIX).exists()


@pytest.mark.parametrize("cipher", LEGACY)
def test_a_passphrase_change_of_an_older_store_takes_the_old_key_and_writes_aegis(
    db_path: Path, cipher: db.Cipher
) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store)
    _as_legacy(db_path, KEY, cipher)
    # An interrupted change of an older store: the new key, the old one as a candidate.
    with Store.open(db_path, self_id=SELF, key=OTHER_KEY, old_keys=[KEY]) as store:
        assert store.message_count(ROOM) == 50
    assert _cipher_of(db_path, OTHER_KEY) == db.CIPHER.name
    with pytest.raises(StoreKeyError):
        Store.open(db_path, self_id=SELF, key=KEY)


#: Opens the store at argv[1] with the key in hex at argv[2], as a start does.
_OPEN_CHILD = """
import sys
from p2pchat.store import Store
Store.open(sys.argv[1], key=bytes.fromhex(sys.argv[2])).close()
"""


@pytest.mark.parametrize("step", ["exported", "synced", "renamed"])
def test_a_kill_while_an_older_store_is_moved_loses_nothing(db_path: Path, step: str) -> None:
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        _fill(store, 120)
    _as_legacy(db_path, KEY, db.LEGACY_CIPHERS[0])
    proc = subprocess.Popen(
        [sys.executable, "-c", _OPEN_CHILD, str(db_path), KEY.hex()],
        env={**os.environ, PAUSE_ENV: step},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        line = proc.stderr.readline() if ready else ""
        assert line.startswith(f"{PAUSED_LINE} {step}"), (line, proc.poll())
    finally:
        proc.kill()  # SIGKILL mid-move: no cleanup, no close
        proc.wait(timeout=30)
    with Store.open(db_path, self_id=SELF, key=KEY) as store:
        assert store.message_count(ROOM) == 120
        assert store.integrity_check() == ["ok"]
    assert _cipher_of(db_path, KEY) == db.CIPHER.name
    assert not db_path.with_name(db_path.name + TEMP_SUFFIX).exists()


def _keyed_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every keyed connection the store opens from now on (its target)."""
    opened: list[str] = []
    real = db.connect

    def counting(target: Path | str, key: bytes | None, **kw: bool) -> db.Connection:
        if key is not None:
            opened.append(str(target))
        return real(target, key, **kw)

    monkeypatch.setattr(db, "connect", counting)
    return opened


def test_an_encrypted_store_opens_with_one_probe_that_also_inspects_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection that finds the key also checks the file is ours and not newer:
    a keyed connection costs about as much as the rest of a small store's open."""
    with Store.open(db_path, key=KEY) as s:
        s.set_setting("k", "v")
    opened = _keyed_connections(monkeypatch)
    with Store.open(db_path, key=KEY) as s:
        assert s.get_setting("k") == "v"
    assert len(opened) == 2  # the read-only probe, then the store's own connection
    assert "mode=ro" in opened[0]


def test_an_encrypted_store_a_newer_p2pchat_wrote_is_refused_and_left_as_it_was(
    db_path: Path,
) -> None:
    with Store.open(db_path, key=KEY):
        pass
    conn = db.connect(db_path, KEY)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(NewerSchemaError):
        Store.open(db_path, key=KEY)
    with pytest.raises(NewerSchemaError):  # nor is it moved from an old key first
        Store.open(db_path, key=OTHER_KEY, old_keys=[KEY])
    assert db_path.read_bytes() == before


def test_another_programs_encrypted_database_is_refused_and_left_as_it_was(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect(db_path, KEY)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(ForeignDatabaseError):
        Store.open(db_path, key=KEY)
    assert db_path.read_bytes() == before
