"""The p2pchat wire protocol: frame types, their msgpack codec, and message framing.

Pure protocol code in the sans-I/O style: bytes in, frames out, and back. It imports only
the standard library and msgpack, and must never do I/O, sign, verify or encrypt; the
transport feeds it decrypted plaintexts and the node acts on the frames. The format is
documented in docs/protocol.md.
"""

from __future__ import annotations

from .codec import FRAME_TYPES, decode_envelope, decode_frame, encode_envelope, encode_frame
from .errors import FrameDecodeError, FrameEncodeError, FrameTooLargeError, WireError
from .frames import (
    ENVELOPE_SIGNING_CONTEXT,
    PURPOSE_CHAT,
    PURPOSE_FILES,
    RECEIPT_DELIVERED,
    RECEIPT_READ,
    Bye,
    Chunk,
    ChunkError,
    ChunkRequest,
    Envelope,
    Frame,
    Hello,
    MessageFrame,
    Ping,
    Pong,
    Profile,
    Receipt,
    SyncHeads,
    Typing,
    Want,
)
from .framing import PREFIX_LEN, FrameReader, frame_prefix
from .limits import (
    MAX_BODY,
    MAX_CAP_CHARS,
    MAX_CAPS,
    MAX_CHUNK_DATA,
    MAX_HEADS,
    MAX_IDS_PER_RECEIPT,
    MAX_KIND_CHARS,
    MAX_MAP_KEYS,
    MAX_NAME_CHARS,
    MAX_NESTING,
    MAX_NOISE_MESSAGE,
    MAX_PLAINTEXT,
    MAX_REASON_CHARS,
    MAX_WANT_COUNT,
    NOISE_TAG_LEN,
    PROTOCOL_VERSION,
)

__all__ = [
    "ENVELOPE_SIGNING_CONTEXT",
    "FRAME_TYPES",
    "MAX_BODY",
    "MAX_CAPS",
    "MAX_CAP_CHARS",
    "MAX_CHUNK_DATA",
    "MAX_HEADS",
    "MAX_IDS_PER_RECEIPT",
    "MAX_KIND_CHARS",
    "MAX_MAP_KEYS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_NOISE_MESSAGE",
    "MAX_PLAINTEXT",
    "MAX_REASON_CHARS",
    "MAX_WANT_COUNT",
    "NOISE_TAG_LEN",
    "PREFIX_LEN",
    "PROTOCOL_VERSION",
    "PURPOSE_CHAT",
    "PURPOSE_FILES",
    "RECEIPT_DELIVERED",
    "RECEIPT_READ",
    "Bye",
    "Chunk",
    "ChunkError",
    "ChunkRequest",
    "Envelope",
    "Frame",
    "FrameDecodeError",
    "FrameEncodeError",
    "FrameReader",
    "FrameTooLargeError",
    "Hello",
    "MessageFrame",
    "Ping",
    "Pong",
    "Profile",
    "Receipt",
    "SyncHeads",
    "Typing",
    "Want",
    "WireError",
    "decode_envelope",
    "decode_frame",
    "encode_envelope",
    "encode_frame",
    "frame_prefix",
]
