"""Signed envelopes: building, signing and checking the messages people write.

Every message is signed by its author over ``Envelope.signing_bytes()`` so any member
can relay it and nobody can forge an author. Direct rooms have a deterministic id, so
both people derive the same room without talking about it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence

from p2pchat.identity import Identity, verify_signature
from p2pchat.store import Message, NewMessage, Store
from p2pchat.wire import Envelope

log = logging.getLogger(__name__)

DIRECT_ROOM_CONTEXT = b"p2pchat/direct-room/v1"
# Envelope kinds besides text and the rooms' "system" (node/rooms.py).
KIND_REACTION = "reaction"
KIND_FILE = "file"
#: Kinds of a deleted or expired message's row (store.changes); never sent, no signature.
TOMBSTONE_KINDS = ("deleted", "removed")
MESSAGE_ID_LEN = 16


@functools.lru_cache(maxsize=1024)
def direct_room_id(a: bytes, b: bytes) -> bytes:
    """The id of the one-to-one room of two peers (same on both sides).

    Cached: the node asks it for every frame a contact sends (20,000 hashes in a
    catch-up of 10,000), always for the same few pairs.
    """
    first, second = sorted((a, b))
    return hashlib.blake2b(DIRECT_ROOM_CONTEXT + first + second, digest_size=32).digest()


def new_message_id() -> bytes:
    """16 random bytes: unguessable and collision-free in practice."""
    return os.urandom(MESSAGE_ID_LEN)


def sign_envelope(identity: Identity, unsigned: Envelope) -> Envelope:
    """Sign ``unsigned`` as ``identity`` (which must be its author)."""
    if unsigned.author != identity.peer_id:
        raise ValueError("an envelope can only be signed by its author")
    return unsigned.with_sig(identity.sign(unsigned.signing_bytes()))


def envelope_is_authentic(env: Envelope) -> bool:
    """True if the envelope's signature verifies against its author's id."""
    return verify_signature(env.author, env.signing_bytes(), env.sig)


def envelope_to_row(env: Envelope, received_at: int, status: int) -> NewMessage:
    """The store row of a signed envelope."""
    return NewMessage(
        id=env.id,
        room=env.room,
        author=env.author,
        seq=env.seq,
        lamport=env.lamport,
        sent_at=env.ts,
        received_at=received_at,
        kind=env.kind,
        body=env.body,
        sig=env.sig,
        reply_to=env.reply_to,
        status=status,
        deps=None if env.deps is None else b"".join(env.deps),
    )


def row_to_envelope(row: Message | NewMessage) -> Envelope:
    """Rebuild the signed envelope from a stored row (for sending or relaying)."""
    return Envelope(
        room=row.room,
        id=row.id,
        author=row.author,
        seq=row.seq,
        lamport=row.lamport,
        ts=row.sent_at,
        kind=row.kind,
        body=row.body,
        reply_to=row.reply_to,
        deps=None if row.deps is None else split_ids(row.deps),
        sig=row.sig,
    )


def split_ids(joined: bytes) -> tuple[bytes, ...]:
    """Message ids stored back to back (as ``deps`` are) as a tuple."""
    return tuple(joined[i : i + MESSAGE_ID_LEN] for i in range(0, len(joined), MESSAGE_ID_LEN))


class ReactionError(ValueError):
    """A reaction body is malformed."""


def encode_reaction(target: bytes, emoji: str, on: bool) -> bytes:
    """Body of a ``reaction`` envelope: target id (16), on/off (1), emoji (UTF-8)."""
    return target + (b"\x01" if on else b"\x00") + emoji.encode("utf-8")


def decode_reaction(body: bytes) -> tuple[bytes, str, bool]:
    """Parse a reaction body; raise ReactionError when malformed."""
    if len(body) < MESSAGE_ID_LEN + 2 or body[MESSAGE_ID_LEN] not in (0, 1):
        raise ReactionError("too short or bad flag")
    try:
        emoji = body[MESSAGE_ID_LEN + 1 :].decode("utf-8")
    except UnicodeDecodeError:
        raise ReactionError("emoji is not UTF-8") from None
    if len(emoji) > 16 or not emoji.isprintable():
        raise ReactionError("not a single emoji")
    return body[:MESSAGE_ID_LEN], emoji, body[MESSAGE_ID_LEN] == 1


def apply_reaction(store: Store, message: Message | NewMessage) -> None:
    """Record a reaction envelope's effect, if its target is a message of the same room."""
    target, emoji, on = decode_reaction(message.body)
    original = store.get_message(target)
    if original is None or original.room != message.room:
        return
    if on:
        store.add_reaction(target, message.author, emoji)
    else:
        store.remove_reaction(target, message.author, emoji)


def _removed_here(have: Message, row: NewMessage) -> bool:
    """True if ``have`` is the tombstone of ``row`` (same room, author and seq)."""
    return (
        have.kind in TOMBSTONE_KINDS
        and not have.sig
        and (have.room, have.author, have.seq) == (row.room, row.author, row.seq)
    )


def held_intact(
    store: Store, rows: Sequence[NewMessage], results: Sequence[Message | None]
) -> set[bytes]:
    """Ids among ``rows`` that we now hold exactly as sent (new, or a true duplicate).

    An id we already hold for a *different* envelope is someone squatting on it: that
    envelope is not acknowledged, so its author keeps offering it, and it is logged.
    """
    held = {r.id for r, m in zip(rows, results, strict=True) if m is not None}
    duplicates = [r for r, m in zip(rows, results, strict=True) if m is None]
    if duplicates:
        stored = {m.id: m for m in store.get_messages([r.id for r in duplicates])}
        for row in duplicates:
            have = stored.get(row.id)
            if have is not None and (have.sig, have.room) == (row.sig, row.room):
                held.add(row.id)
            elif have is not None and _removed_here(have, row):
                held.add(row.id)  # deleted or expired here: held, and never stored again
            else:
                log.warning("message id %s reused by another envelope", row.id.hex()[:8])
    return held
