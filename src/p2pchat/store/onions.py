"""SQL of contacts' onion addresses (one row per peer; see schema ``_v_onions``).

Functions here take an open :class:`Store` and run in the store's thread like its own
methods. They import nothing else of p2pchat: addresses were checked before they came.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store import Store


@dataclass(frozen=True, slots=True)
class OnionRow:
    """A peer's onion service; ``sig`` None when it came from an invite code."""

    peer_id: bytes
    addr: str
    port: int
    ts: int
    sig: bytes | None


def put_onion(store: Store, row: OnionRow) -> bool:
    """Keep ``row`` unless a signed row at least as new is stored; return whether kept.

    An invite's unsigned address never replaces a signed one.
    """
    with store.atomic(), store.sql_errors():
        old = store.connection.execute(
            "SELECT ts, sig FROM onions WHERE peer_id = ?", (row.peer_id,)
        ).fetchone()
        if old is not None and old[1] is not None and (row.sig is None or old[0] > row.ts):
            return False
        store.connection.execute(
            "INSERT INTO onions (peer_id, addr, port, ts, sig) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (peer_id) DO UPDATE SET"
            " addr = excluded.addr, port = excluded.port, ts = excluded.ts, sig = excluded.sig",
            (row.peer_id, row.addr, row.port, row.ts, row.sig),
        )
    return True


def contact_onions(store: Store) -> list[OnionRow]:
    """Onion services of every contact (the peers we dial through tor)."""
    rows = store.rows(
        "SELECT o.peer_id, o.addr, o.port, o.ts, o.sig FROM onions o"
        " JOIN peers p ON p.id = o.peer_id WHERE p.state = 'contact'"
    )
    return [OnionRow(bytes(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]


def get_onion(store: Store, peer_id: bytes) -> OnionRow | None:
    """The onion service stored for ``peer_id``, if any."""
    r = store.row("SELECT peer_id, addr, port, ts, sig FROM onions WHERE peer_id = ?", (peer_id,))
    return None if r is None else OnionRow(bytes(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4])
