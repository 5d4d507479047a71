"""Peers and their addresses: who we know, how trusted, where they listen."""

from __future__ import annotations

from typing import Any, cast

from .base import StoreBase
from .models import Address, AddressSource, Peer, PeerState
from .queries import now_ms, peer_row


class PeerTables(StoreBase):
    """Peers and their addresses: who we know, how trusted, where they listen."""

    # --------------------------------------------------------------- peers

    def upsert_peer(
        self,
        peer_id: bytes,
        *,
        name: str | None = None,
        state: PeerState | None = None,
        last_seen: int | None = None,
    ) -> Peer:
        """Create the peer or change only the fields given; return the stored row.

        A new peer starts in state ``unknown``; ``last_seen`` never moves backwards.
        """
        seen = now_ms() if last_seen is None else last_seen
        with self._atomic():
            self._db.execute(
                """
                INSERT INTO peers (id, name, state, verified, first_seen, last_seen)
                VALUES (?, ?, coalesce(?, 'unknown'), 0, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    name = coalesce(?, name),
                    state = coalesce(?, state),
                    last_seen = CASE
                        WHEN ? IS NULL THEN last_seen
                        ELSE max(coalesce(last_seen, ?), ?) END
                """,
                (
                    peer_id,
                    name,
                    state,
                    seen,
                    last_seen,
                    name,
                    state,
                    last_seen,
                    last_seen,
                    last_seen,
                ),
            )
            peer = self.get_peer(peer_id)
        assert peer is not None
        return peer

    def get_peer(self, peer_id: bytes) -> Peer | None:
        """Return the peer with this id, if known."""
        row = self._one(
            "SELECT id, name, state, verified, first_seen, last_seen FROM peers WHERE id = ?",
            (peer_id,),
        )
        return None if row is None else peer_row(row)

    def list_peers(self, state: PeerState | None = None) -> list[Peer]:
        """Return every known peer (optionally only those in ``state``), by name then id.

        Matching an id prefix typed by the person is left to the caller, on this list.
        """
        sql = "SELECT id, name, state, verified, first_seen, last_seen FROM peers"
        params: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            params = (state,)
        return [peer_row(r) for r in self._all(sql + " ORDER BY name COLLATE NOCASE, id", params)]

    def find_peers_by_name(self, name: str) -> list[Peer]:
        """Return peers whose display name equals ``name`` ignoring case (Unicode-aware).

        More than one result is normal: names are not identities.
        """
        # casefold in Python: SQLite's NOCASE only folds ASCII.
        wanted = name.casefold()
        return [p for p in self.list_peers() if p.name is not None and p.name.casefold() == wanted]

    def prune_strangers(self, keep: int) -> int:
        """Forget all but the ``keep`` most recently seen peers in state ``unknown``.

        Anyone on the LAN can complete a handshake; keeping every such peer forever would
        let them grow the store without bound. Contacts, requests and blocked peers are
        never pruned. Returns how many peers were forgotten (their addresses go too).
        """
        return self._write(
            "DELETE FROM peers WHERE id IN (SELECT id FROM peers WHERE state = 'unknown'"
            " ORDER BY last_seen DESC, id LIMIT -1 OFFSET ?)",
            (keep,),
        )

    def set_peer_state(self, peer_id: bytes, state: PeerState) -> bool:
        """Set a known peer's state; return False when the peer is unknown."""
        return self._write("UPDATE peers SET state = ? WHERE id = ?", (state, peer_id)) > 0

    def set_verified(self, peer_id: bytes, verified: bool = True) -> bool:
        """Record whether the safety number was checked; False when the peer is unknown."""
        return (
            self._write("UPDATE peers SET verified = ? WHERE id = ?", (int(verified), peer_id)) > 0
        )

    # ----------------------------------------------------------- addresses

    def add_address(
        self, peer_id: bytes | None, host: str, port: int, source: AddressSource
    ) -> int:
        """Remember an address (idempotent); return its id.

        ``peer_id`` None is for a manual address whose peer is not known yet; otherwise
        the peer must exist (upsert_peer first). Re-adding keeps the row; a ``manual``
        source sticks, because the person's explicit word outranks what mDNS says.
        """
        with self._atomic():
            row = self._db.execute(
                "SELECT id, source FROM addresses WHERE peer_id IS ? AND host = ? AND port = ?",
                (peer_id, host, port),
            ).fetchone()
            if row is None:
                cur = self._db.execute(
                    "INSERT INTO addresses (peer_id, host, port, source) VALUES (?, ?, ?, ?)",
                    (peer_id, host, port, source),
                )
                assert cur.lastrowid is not None
                return cur.lastrowid
            address_id, old_source = cast(tuple[int, str], tuple(row))
            if old_source not in ("manual", source):
                self._db.execute(
                    "UPDATE addresses SET source = ? WHERE id = ?", (source, address_id)
                )
            return address_id

    def addresses_for(self, peer_id: bytes) -> list[Address]:
        """Return the peer's addresses, most recently working first."""
        rows = self._all(
            "SELECT id, peer_id, host, port, source, last_ok FROM addresses WHERE peer_id = ?"
            " ORDER BY last_ok IS NULL, last_ok DESC, id",
            (peer_id,),
        )
        return [Address(*r) for r in rows]

    def manual_addresses(self) -> list[Address]:
        """Return every address the person typed in, with or without a known peer."""
        rows = self._all(
            "SELECT id, peer_id, host, port, source, last_ok FROM addresses"
            " WHERE source = 'manual' ORDER BY id"
        )
        return [Address(*r) for r in rows]

    def mark_address_ok(self, peer_id: bytes, host: str, port: int, at: int) -> int:
        """Record that ``peer_id`` answered at host:port at time ``at``; return the row id.

        An address not yet known for this peer is added with source ``last``
        (last-known address); the peer must exist.
        """
        with self._atomic():
            row = self._db.execute(
                "SELECT id FROM addresses WHERE peer_id = ? AND host = ? AND port = ?",
                (peer_id, host, port),
            ).fetchone()
            # An existing row keeps its source: mdns or manual says more than "last".
            address_id = int(row[0]) if row else self.add_address(peer_id, host, port, "last")
            self._db.execute(
                "UPDATE addresses SET last_ok = max(coalesce(last_ok, ?), ?) WHERE id = ?",
                (at, at, address_id),
            )
        return address_id

    def forget_address(self, host: str, port: int) -> int:
        """Forget host:port for every peer (and as a manual address); return rows removed."""
        return self._write("DELETE FROM addresses WHERE host = ? AND port = ?", (host, port))

    def remove_address(self, peer_id: bytes | None, host: str, port: int) -> bool:
        """Forget one address; return whether it existed."""
        return (
            self._write(
                "DELETE FROM addresses WHERE peer_id IS ? AND host = ? AND port = ?",
                (peer_id, host, port),
            )
            > 0
        )
