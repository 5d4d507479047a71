"""Size limits and the protocol version of the p2pchat wire protocol.

Every number a decoder must enforce lives here, so the codec, the framing, the transport
and the documentation (docs/protocol.md) agree. This module must only define constants.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_BODY",
    "MAX_CAPS",
    "MAX_CAP_CHARS",
    "MAX_CHUNK_COUNT",
    "MAX_CHUNK_DATA",
    "MAX_DEPS",
    "MAX_HEADS",
    "MAX_IDS_PER_RECEIPT",
    "MAX_INT",
    "MAX_KIND_CHARS",
    "MAX_MAP_KEYS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_NOISE_MESSAGE",
    "MAX_PLAINTEXT",
    "MAX_REASON_CHARS",
    "MAX_TS",
    "MAX_WANT_COUNT",
    "NOISE_TAG_LEN",
    "PROTOCOL_VERSION",
]

#: Version of the application protocol, sent in ``hello.v`` and bound into the Noise prologue.
PROTOCOL_VERSION: Final = 1

#: Largest Noise message (the Noise spec's limit; also the most a 2-byte prefix can express).
MAX_NOISE_MESSAGE: Final = 65535
#: Length of the ChaChaPoly authentication tag appended to each transport message.
NOISE_TAG_LEN: Final = 16
#: Largest plaintext of one transport message, i.e. the largest encoded frame.
MAX_PLAINTEXT: Final = MAX_NOISE_MESSAGE - NOISE_TAG_LEN

#: Display names (``hello.name``, ``profile.name``), in Unicode code points.
MAX_NAME_CHARS: Final = 64
#: Each capability string in ``hello.caps``, in code points.
MAX_CAP_CHARS: Final = 32
#: Number of capability strings in ``hello.caps``.
MAX_CAPS: Final = 16
#: ``bye.reason`` and ``nochunk.reason``, in code points.
MAX_REASON_CHARS: Final = 200
#: ``env.kind``, in code points.
MAX_KIND_CHARS: Final = 16

#: ``env.body``, in bytes. Leaves room for the envelope's other fields inside one frame.
MAX_BODY: Final = 49152
#: ``chunk.data`` and ``get.length``, in bytes.
MAX_CHUNK_DATA: Final = 65000
#: ``get.count``: most ``chunk`` frames one ``get`` may ask for (64 x 65000 bytes = 4 MB).
MAX_CHUNK_COUNT: Final = 64
#: ``env.deps``: membership operations an envelope names as seen (the heads of the room's
#: operation graph; concurrent changes are few, and an author names the newest first).
MAX_DEPS: Final = 16
#: Number of message ids in one ``rcpt`` frame.
MAX_IDS_PER_RECEIPT: Final = 512
#: Number of (author, seq) pairs in one ``sync`` frame.
MAX_HEADS: Final = 256
#: ``want.count``: most envelopes one ``want`` may ask for.
MAX_WANT_COUNT: Final = 1000

#: Largest value of any integer field; all are non-negative. msgpack could carry up to
#: 2**64 - 1, but staying within a signed 64-bit int keeps SQLite and other languages happy.
MAX_INT: Final = 2**63 - 1

#: Latest ``env.ts`` a receiver accepts: the last millisecond of 9999-12-31 UTC. An envelope
#: with a later ``ts`` (or one the wire lets through up to ``MAX_INT``) is dropped by the
#: node; every instant up to here has a four-digit-year calendar date, so any clock that
#: is merely wrong (1970, 2100) still gets its messages through.
MAX_TS: Final = 253_402_300_799_999

#: Most keys in any msgpack map of a frame (known fields plus ignored future fields).
MAX_MAP_KEYS: Final = 32
#: Deepest container nesting in a frame, counting the frame map itself as 1. The current
#: schema needs 3 (``sync`` → ``heads`` → pair); one level is spare for future fields.
MAX_NESTING: Final = 4
