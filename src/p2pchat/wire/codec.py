"""msgpack encoding and strict validation of frames and envelopes.

``decode_frame`` is the only door through which peer bytes become frame objects: it
unpacks with explicit msgpack limits (so a hostile length can never make it allocate much),
then checks the map against the frame's schema with one explicit validator per type
(faster than reflecting over dataclass fields, and this runs for every frame received).
Unknown ``t`` values and unknown extra keys are ignored for forward compatibility; anything
else that is wrong raises :class:`FrameDecodeError` naming the field.

``encode_frame`` runs the same validators before packing, so this side cannot send a frame
its peer would reject. This module never does I/O and never signs or verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NoReturn

import msgpack

from .errors import FrameDecodeError, FrameEncodeError, FrameTooLargeError
from .frames import (
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
    OnionAddress,
    Ping,
    Pong,
    Profile,
    Receipt,
    SyncHeads,
    Typing,
    Want,
)
from .limits import (
    MAX_BODY,
    MAX_CAP_CHARS,
    MAX_CAPS,
    MAX_CHUNK_COUNT,
    MAX_CHUNK_DATA,
    MAX_DEPS,
    MAX_HEADS,
    MAX_IDS_PER_RECEIPT,
    MAX_INT,
    MAX_KIND_CHARS,
    MAX_MAP_KEYS,
    MAX_NAME_CHARS,
    MAX_NESTING,
    MAX_PLAINTEXT,
    MAX_REASON_CHARS,
    MAX_WANT_COUNT,
)
from .onion import ONION_CHARS, OnionAddressError, check_onion_address

__all__ = ["FRAME_TYPES", "decode_envelope", "decode_frame", "encode_envelope", "encode_frame"]

_ID_LEN: Final = 16
_KEY_LEN: Final = 32
_SIG_LEN: Final = 64
_ROOM_LENS: Final = (16, 32)
_PURPOSES: Final = frozenset((PURPOSE_CHAT, PURPOSE_FILES))
_RECEIPT_STATES: Final = frozenset((RECEIPT_DELIVERED, RECEIPT_READ))

# Limits for msgpack.unpackb, sized to the schema: nothing longer can be valid, so the
# unpacker refuses it from the header alone, before allocating.
_LONGEST_STR_CHARS: Final = max(MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_KIND_CHARS, MAX_CAP_CHARS)
# A code point is at most 4 bytes of UTF-8.
_MAX_STR_LEN: Final = 4 * _LONGEST_STR_CHARS
_MAX_BIN_LEN: Final = max(MAX_CHUNK_DATA, MAX_BODY)
_MAX_ARRAY_LEN: Final = max(MAX_IDS_PER_RECEIPT, MAX_HEADS, MAX_CAPS, MAX_DEPS)

Map = dict[str, Any]


class _InvalidError(Exception):
    """A value failed validation; decode and encode turn it into their own public error."""


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise _InvalidError(f"msgpack ext type {code} is not allowed")


def _describe(v: object) -> str:
    """Name a value's type in msgpack terms, for error messages."""
    if isinstance(v, bytes):
        return f"{len(v)}-byte bin"
    if isinstance(v, str):
        return "str"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if v is None:
        return "nil"
    if isinstance(v, float):
        return "float"
    if isinstance(v, tuple | list):
        return "array"
    if isinstance(v, dict):
        return "map"
    return type(v).__name__


# --- field validators -------------------------------------------------------------------
# Each takes the map, the key and the path prefix (e.g. "rcpt"), and only formats the path
# on failure so that the happy path does no string work.


def _get(m: Map, key: str, where: str) -> Any:
    try:
        return m[key]
    except KeyError:
        raise _InvalidError(f"{where}.{key}: missing") from None


def _uint(m: Map, key: str, where: str, lo: int = 0, hi: int = MAX_INT) -> int:
    v = _get(m, key, where)
    # type() rather than isinstance(): bool is an int subclass and must not pass.
    if type(v) is not int:
        raise _InvalidError(f"{where}.{key}: expected int, got {_describe(v)}")
    if v < lo or v > hi:
        raise _InvalidError(f"{where}.{key}: {v} out of range {lo}..{hi}")
    return v


def _bool(m: Map, key: str, where: str) -> bool:
    v = _get(m, key, where)
    if type(v) is not bool:
        raise _InvalidError(f"{where}.{key}: expected bool, got {_describe(v)}")
    return v


def _bin(m: Map, key: str, where: str, size: int) -> bytes:
    v = _get(m, key, where)
    if type(v) is not bytes or len(v) != size:
        raise _InvalidError(f"{where}.{key}: expected {size}-byte bin, got {_describe(v)}")
    return v


def _bin_max(m: Map, key: str, where: str, maxlen: int) -> bytes:
    v = _get(m, key, where)
    if type(v) is not bytes:
        raise _InvalidError(f"{where}.{key}: expected bin, got {_describe(v)}")
    if len(v) > maxlen:
        raise _InvalidError(f"{where}.{key}: {len(v)} bytes exceeds {maxlen}")
    return v


def _room(m: Map, key: str, where: str) -> bytes:
    v = _get(m, key, where)
    if type(v) is not bytes or len(v) not in _ROOM_LENS:
        raise _InvalidError(f"{where}.{key}: expected 16- or 32-byte bin, got {_describe(v)}")
    return v


def _str(m: Map, key: str, where: str, maxchars: int) -> str:
    v = _get(m, key, where)
    if type(v) is not str:
        raise _InvalidError(f"{where}.{key}: expected str, got {_describe(v)}")
    if len(v) > maxchars:
        raise _InvalidError(f"{where}.{key}: {len(v)} characters exceeds {maxchars}")
    return v


def _choice(m: Map, key: str, where: str, choices: frozenset[str]) -> str:
    v = _get(m, key, where)
    if type(v) is not str:
        raise _InvalidError(f"{where}.{key}: expected str, got {_describe(v)}")
    if v not in choices:
        allowed = " | ".join(sorted(choices))
        raise _InvalidError(f"{where}.{key}: {v[:40]!r} is not one of {allowed}")
    return v


def _array(m: Map, key: str, where: str, lo: int, hi: int) -> tuple[Any, ...]:
    v = _get(m, key, where)
    if type(v) is not tuple:
        raise _InvalidError(f"{where}.{key}: expected array, got {_describe(v)}")
    if not lo <= len(v) <= hi:
        raise _InvalidError(f"{where}.{key}: {len(v)} items, expected {lo}..{hi}")
    return v


def _check_extras(m: Map, where: str, known: int, depth: int = 1) -> None:
    """Check keys beyond the ``known`` ones present: ignored, but still bounded.

    ``depth`` is the nesting level of ``m`` itself (1 for the frame map).
    """
    if len(m) == known:
        return
    for k, v in m.items():
        if type(k) is not str:
            raise _InvalidError(f"{where}: map key must be str, got {_describe(k)}")
        # A known key's value is already validated as a scalar or a shallow container;
        # walking it again is harmless, and cheaper than looking every key up.
        _check_depth(v, f"{where}.{k}", MAX_NESTING - depth)


def _check_depth(v: object, path: str, levels: int) -> None:
    """Fail if ``v`` nests containers more than ``levels`` deep."""
    if isinstance(v, tuple | list):
        if levels <= 0:
            raise _InvalidError(f"{path}: nested deeper than {MAX_NESTING} levels")
        for x in v:
            _check_depth(x, path, levels - 1)
    elif isinstance(v, dict):
        if levels <= 0:
            raise _InvalidError(f"{path}: nested deeper than {MAX_NESTING} levels")
        for k, x in v.items():
            _check_depth(x, f"{path}.{k}", levels - 1)


def _map(v: object, where: str) -> Map:
    if type(v) is not dict:
        raise _InvalidError(f"{where}: expected map, got {_describe(v)}")
    return v


# --- per-type validators: map -> dataclass ------------------------------------------------


def _v_hello(m: Map) -> Hello:
    w = "hello"
    caps = _array(m, "caps", w, 0, MAX_CAPS)
    for i, c in enumerate(caps):
        if type(c) is not str or len(c) > MAX_CAP_CHARS:
            raise _InvalidError(f"hello.caps[{i}]: expected str of <= {MAX_CAP_CHARS} characters")
    port = m.get("port")
    known = 7  # counts "t"
    if "port" in m:
        known = 8
        if port is not None:
            port = _uint(m, "port", w, 1, 65535)
    f = Hello(
        id=_bin(m, "id", w, _KEY_LEN),
        sig=_bin(m, "sig", w, _SIG_LEN),
        name=_str(m, "name", w, MAX_NAME_CHARS),
        v=_uint(m, "v", w),
        caps=caps,
        purpose=_choice(m, "purpose", w, _PURPOSES),
        port=port,
    )
    _check_extras(m, w, known)
    return f


def _v_envelope(m: Map, w: str) -> Envelope:
    reply_to = m.get("reply_to")
    known = 9
    if "reply_to" in m:
        known += 1
        if reply_to is not None:
            reply_to = _bin(m, "reply_to", w, _ID_LEN)
    deps: tuple[bytes, ...] | None = None
    if "deps" in m:
        known += 1
        deps = _array(m, "deps", w, 0, MAX_DEPS)
        for i, d in enumerate(deps):
            if type(d) is not bytes or len(d) != _ID_LEN:
                raise _InvalidError(
                    f"{w}.deps[{i}]: expected {_ID_LEN}-byte bin, got {_describe(d)}"
                )
    e = Envelope(
        room=_room(m, "room", w),
        id=_bin(m, "id", w, _ID_LEN),
        author=_bin(m, "author", w, _KEY_LEN),
        seq=_uint(m, "seq", w, 1),
        lamport=_uint(m, "lamport", w),
        ts=_uint(m, "ts", w),
        kind=_str(m, "kind", w, MAX_KIND_CHARS),
        body=_bin_max(m, "body", w, MAX_BODY),
        reply_to=reply_to,
        deps=deps,
        sig=_bin(m, "sig", w, _SIG_LEN),
    )
    # Stored envelopes are checked as if nested in a msg frame, so both paths agree.
    _check_extras(m, w, known, depth=2)
    return e


def _v_msg(m: Map) -> MessageFrame:
    env = _v_envelope(_map(_get(m, "env", "msg"), "msg.env"), "msg.env")
    _check_extras(m, "msg", 2)
    return MessageFrame(env=env)


def _v_rcpt(m: Map) -> Receipt:
    w = "rcpt"
    ids = _array(m, "ids", w, 1, MAX_IDS_PER_RECEIPT)
    for i, x in enumerate(ids):
        if type(x) is not bytes or len(x) != _ID_LEN:
            raise _InvalidError(f"rcpt.ids[{i}]: expected {_ID_LEN}-byte bin, got {_describe(x)}")
    f = Receipt(room=_room(m, "room", w), ids=ids, st=_choice(m, "st", w, _RECEIPT_STATES))
    _check_extras(m, w, 4)
    return f


def _v_typing(m: Map) -> Typing:
    f = Typing(room=_room(m, "room", "typing"), on=_bool(m, "on", "typing"))
    _check_extras(m, "typing", 3)
    return f


def _v_ping(m: Map) -> Ping:
    f = Ping(n=_uint(m, "n", "ping"))
    _check_extras(m, "ping", 2)
    return f


def _v_pong(m: Map) -> Pong:
    f = Pong(n=_uint(m, "n", "pong"))
    _check_extras(m, "pong", 2)
    return f


def _v_profile(m: Map) -> Profile:
    f = Profile(name=_str(m, "name", "profile", MAX_NAME_CHARS))
    _check_extras(m, "profile", 2)
    return f


def _v_sync(m: Map) -> SyncHeads:
    w = "sync"
    heads = _array(m, "heads", w, 0, MAX_HEADS)
    seen: set[bytes] = set()
    for i, h in enumerate(heads):
        if (
            type(h) is not tuple
            or len(h) != 2
            or type(h[0]) is not bytes
            or len(h[0]) != _KEY_LEN
            or type(h[1]) is not int
            or not 0 <= h[1] <= MAX_INT
        ):
            raise _InvalidError(f"sync.heads[{i}]: expected [32-byte bin, int >= 0]")
        seen.add(h[0])
    if len(seen) != len(heads):
        raise _InvalidError("sync.heads: an author appears more than once")
    f = SyncHeads(room=_room(m, "room", w), heads=heads)
    _check_extras(m, w, 3)
    return f


def _v_want(m: Map) -> Want:
    w = "want"
    f = Want(
        room=_room(m, "room", w),
        author=_bin(m, "author", w, _KEY_LEN),
        start=_uint(m, "start", w, 1),
        count=_uint(m, "count", w, 1, MAX_WANT_COUNT),
    )
    _check_extras(m, w, 5)
    return f


def _v_get(m: Map) -> ChunkRequest:
    w = "get"
    known = 5  # counts "t"
    count = 1
    if "count" in m:
        known = 6
        count = _uint(m, "count", w, 1, MAX_CHUNK_COUNT)
    f = ChunkRequest(
        req=_uint(m, "req", w),
        hash=_bin(m, "hash", w, _KEY_LEN),
        offset=_uint(m, "offset", w),
        length=_uint(m, "length", w, 1, MAX_CHUNK_DATA),
        count=count,
    )
    _check_extras(m, w, known)
    return f


def _v_chunk(m: Map) -> Chunk:
    w = "chunk"
    f = Chunk(
        req=_uint(m, "req", w),
        hash=_bin(m, "hash", w, _KEY_LEN),
        offset=_uint(m, "offset", w),
        data=_bin_max(m, "data", w, MAX_CHUNK_DATA),
    )
    _check_extras(m, w, 5)
    return f


def _v_nochunk(m: Map) -> ChunkError:
    w = "nochunk"
    f = ChunkError(
        req=_uint(m, "req", w),
        hash=_bin(m, "hash", w, _KEY_LEN),
        reason=_str(m, "reason", w, MAX_REASON_CHARS),
    )
    _check_extras(m, w, 4)
    return f


def _v_onion(m: Map) -> OnionAddress:
    w = "onion"
    addr = _str(m, "addr", w, ONION_CHARS)
    try:
        check_onion_address(addr)
    except OnionAddressError as e:
        raise _InvalidError(f"onion.addr: {e}") from None
    f = OnionAddress(
        addr=addr,
        port=_uint(m, "port", w, 1, 65535),
        ts=_uint(m, "ts", w),
        sig=_bin(m, "sig", w, _SIG_LEN),
    )
    _check_extras(m, w, 5)
    return f


def _v_bye(m: Map) -> Bye:
    f = Bye(reason=_str(m, "reason", "bye", MAX_REASON_CHARS))
    _check_extras(m, "bye", 2)
    return f


_VALIDATORS: Final[dict[str, Callable[[Map], Frame]]] = {
    Hello.TYPE: _v_hello,
    MessageFrame.TYPE: _v_msg,
    Receipt.TYPE: _v_rcpt,
    Typing.TYPE: _v_typing,
    Ping.TYPE: _v_ping,
    Pong.TYPE: _v_pong,
    Profile.TYPE: _v_profile,
    SyncHeads.TYPE: _v_sync,
    Want.TYPE: _v_want,
    ChunkRequest.TYPE: _v_get,
    Chunk.TYPE: _v_chunk,
    ChunkError.TYPE: _v_nochunk,
    OnionAddress.TYPE: _v_onion,
    Bye.TYPE: _v_bye,
}

#: Every frame class, by its ``t`` value.
FRAME_TYPES: Final[dict[str, type[Frame]]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        MessageFrame,
        Receipt,
        Typing,
        Ping,
        Pong,
        Profile,
        SyncHeads,
        Want,
        ChunkRequest,
        Chunk,
        ChunkError,
        OnionAddress,
        Bye,
    )
}


# --- dataclass -> map -------------------------------------------------------------------
# Optional fields that are None are left out rather than sent as nil: smaller, and the
# decoder treats "absent" and nil alike.


def _envelope_map(e: Envelope) -> Map:
    m: Map = {
        "room": e.room,
        "id": e.id,
        "author": e.author,
        "seq": e.seq,
        "lamport": e.lamport,
        "ts": e.ts,
        "kind": e.kind,
        "body": e.body,
        "sig": e.sig,
    }
    if e.reply_to is not None:
        m["reply_to"] = e.reply_to
    if e.deps is not None:
        m["deps"] = tuple(e.deps)
    return m


def _frame_map(f: Frame) -> Map:
    # One explicit branch per type keeps the wire keys visible next to each other.
    if isinstance(f, MessageFrame):
        return {"t": "msg", "env": _envelope_map(f.env)}
    if isinstance(f, Receipt):
        return {"t": "rcpt", "room": f.room, "ids": f.ids, "st": f.st}
    if isinstance(f, Typing):
        return {"t": "typing", "room": f.room, "on": f.on}
    if isinstance(f, Ping):
        return {"t": "ping", "n": f.n}
    if isinstance(f, Pong):
        return {"t": "pong", "n": f.n}
    if isinstance(f, Chunk):
        return {"t": "chunk", "req": f.req, "hash": f.hash, "offset": f.offset, "data": f.data}
    if isinstance(f, ChunkRequest):
        g: Map = {"t": "get", "req": f.req, "hash": f.hash, "offset": f.offset, "length": f.length}
        if f.count != 1:
            g["count"] = f.count
        return g
    if isinstance(f, ChunkError):
        return {"t": "nochunk", "req": f.req, "hash": f.hash, "reason": f.reason}
    if isinstance(f, SyncHeads):
        return {"t": "sync", "room": f.room, "heads": f.heads}
    if isinstance(f, Want):
        return {"t": "want", "room": f.room, "author": f.author, "start": f.start, "count": f.count}
    if isinstance(f, Hello):
        m: Map = {
            "t": "hello",
            "id": f.id,
            "sig": f.sig,
            "name": f.name,
            "v": f.v,
            "caps": f.caps,
            "purpose": f.purpose,
        }
        if f.port is not None:
            m["port"] = f.port
        return m
    if isinstance(f, Profile):
        return {"t": "profile", "name": f.name}
    if isinstance(f, OnionAddress):
        return {"t": "onion", "addr": f.addr, "port": f.port, "ts": f.ts, "sig": f.sig}
    if isinstance(f, Bye):
        return {"t": "bye", "reason": f.reason}
    raise FrameEncodeError(f"not a frame: {type(f).__name__}")


# --- public API -------------------------------------------------------------------------


def _pack(m: Map, what: str) -> bytes:
    try:
        data = msgpack.packb(m, use_bin_type=True)
    except UnicodeEncodeError as e:
        # Validation checks types, not encodability: a str with a lone surrogate has no
        # UTF-8 form.
        raise FrameEncodeError(f"{what}: str is not encodable as UTF-8: {e}") from None
    if len(data) > MAX_PLAINTEXT:
        raise FrameTooLargeError(f"{what}: {len(data)} bytes exceeds {MAX_PLAINTEXT}")
    return data


def _unpack(data: bytes) -> Any:
    n = len(data)
    if n > MAX_PLAINTEXT:
        raise FrameDecodeError(f"frame: {n} bytes exceeds {MAX_PLAINTEXT}")
    if n == 0:
        raise FrameDecodeError("frame: empty")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            ext_hook=_reject_ext,
            max_str_len=_MAX_STR_LEN,
            max_bin_len=_MAX_BIN_LEN,
            max_array_len=_MAX_ARRAY_LEN,
            max_map_len=MAX_MAP_KEYS,
            # No ext type is part of the protocol. A zero limit also stops the timestamp
            # ext (-1), which msgpack decodes itself without ever calling ext_hook.
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise FrameDecodeError("frame: trailing bytes after the msgpack object") from None
    except msgpack.StackError:
        raise FrameDecodeError("frame: msgpack nested too deep") from None
    except msgpack.FormatError:
        raise FrameDecodeError("frame: not msgpack (reserved type byte)") from None
    except UnicodeDecodeError:
        raise FrameDecodeError("frame: str is not valid UTF-8") from None
    except _InvalidError as e:
        raise FrameDecodeError(f"frame: {e}") from None
    except Exception as e:
        # msgpack reports truncation, oversize lengths and bad map keys as ValueError and
        # friends; whatever it raises, the peer sent garbage and must not crash us.
        # (Memory is bounded by the limits above, except that the unpacker preallocates
        # each array it opens: up to ~1000 nested 512-item arrays, a few MB for a moment.)
        raise FrameDecodeError(f"frame: bad msgpack: {type(e).__name__}: {e}") from None


def encode_frame(frame: Frame) -> bytes:
    """Validate ``frame`` and return its msgpack encoding (the transport plaintext).

    Raises :class:`FrameEncodeError` if a field breaks the schema (a bug on this side) and
    :class:`FrameTooLargeError` if the encoding exceeds ``MAX_PLAINTEXT``.
    """
    m = _frame_map(frame)
    try:
        _VALIDATORS[m["t"]](m)
    except _InvalidError as e:
        raise FrameEncodeError(str(e)) from None
    return _pack(m, frame.TYPE)


def encode_chunk(req: int, hash: bytes, offset: int, data: bytes | memoryview) -> bytes:
    """The encoding of ``Chunk(req=req, hash=hash, offset=offset, data=data)``, byte for
    byte, packed straight from ``data``, which may be a view of a bigger buffer.

    Serving a file is the one place where every byte passes through here: building a
    ``bytes`` for each chunk first would copy the whole file once more.
    """
    m: Map = {"t": "chunk", "req": req, "hash": hash, "offset": offset, "data": data}
    try:
        _uint(m, "req", "chunk")
        _bin(m, "hash", "chunk", _KEY_LEN)
        _uint(m, "offset", "chunk")
    except _InvalidError as e:
        raise FrameEncodeError(str(e)) from None
    if len(data) > MAX_CHUNK_DATA:
        raise FrameEncodeError(f"chunk.data: {len(data)} bytes exceeds {MAX_CHUNK_DATA}")
    return _pack(m, Chunk.TYPE)


def decode_frame(data: bytes) -> Frame | None:
    """Decode and validate one frame (a transport message's plaintext).

    Returns ``None`` for a well-formed map whose ``t`` this version does not know (ignore
    it: a newer peer may send it). Raises :class:`FrameDecodeError` for anything else that
    is not a valid frame; nothing else escapes for any input.
    """
    obj = _unpack(data)
    try:
        m = _map(obj, "frame")
        t = _get(m, "t", "frame")
        if type(t) is not str:
            raise _InvalidError(f"frame.t: expected str, got {_describe(t)}")
        validator = _VALIDATORS.get(t)
        if validator is None:
            _check_extras(m, f"frame[t={t[:32]!r}]", -1)
            return None
        return validator(m)
    except _InvalidError as e:
        raise FrameDecodeError(str(e)) from None


def encode_envelope(env: Envelope) -> bytes:
    """Validate ``env`` and return the msgpack encoding of its map alone (for storage/relay).

    Raises :class:`FrameEncodeError` for an invalid or unsigned envelope.
    """
    m = _envelope_map(env)
    try:
        _v_envelope(m, "env")
    except _InvalidError as e:
        raise FrameEncodeError(str(e)) from None
    return _pack(m, "env")


def decode_envelope(data: bytes) -> Envelope:
    """Decode and validate bytes made by :func:`encode_envelope`.

    Raises :class:`FrameDecodeError` if they are not a valid envelope map. Keys this version
    does not know are dropped (they are not covered by the signature anyway).
    """
    obj = _unpack(data)
    try:
        return _v_envelope(_map(obj, "env"), "env")
    except _InvalidError as e:
        raise FrameDecodeError(str(e)) from None
