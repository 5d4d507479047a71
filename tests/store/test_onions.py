"""Contacts' onion addresses in the store: newer signed ones win, invites never replace."""

from __future__ import annotations

from pathlib import Path

from p2pchat.store import Store
from p2pchat.store.onions import OnionRow, contact_onions, get_onion, put_onion

PEER = b"\1" * 32


def row(addr: str, ts: int, sig: bytes | None = b"s" * 64) -> OnionRow:
    return OnionRow(PEER, addr * 56, 7373, ts, sig)


def test_newer_signed_address_wins_older_and_invites_do_not(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite3") as store:
        store.upsert_peer(PEER, state="contact")
        assert put_onion(store, row("a", 0, None))  # from an invite code
        assert put_onion(store, row("b", 10))  # the contact's own, signed
        assert not put_onion(store, row("c", 5))  # older
        assert not put_onion(store, row("d", 99, None))  # an invite never replaces it
        assert put_onion(store, row("e", 11))
        got = get_onion(store, PEER)
        assert got is not None
        assert got.addr == "e" * 56
        assert [r.peer_id for r in contact_onions(store)] == [PEER]
        store.set_peer_state(PEER, "blocked")
        assert contact_onions(store) == []  # only contacts are dialled
