"""Length-prefix framing of Noise messages on a byte stream (sans-I/O).

On the TCP stream every Noise message (handshake or transport) is sent as a 2-byte
big-endian length followed by that many bytes. :func:`frame_prefix` produces that; a
:class:`FrameReader` is fed whatever bytes arrived and hands back whole messages.

This module never touches a socket, never decrypts and never buffers more than one
incomplete message (at most ``2 + MAX_NOISE_MESSAGE`` bytes), whatever the peer sends.
"""

from __future__ import annotations

from .errors import FrameDecodeError, FrameEncodeError, FrameTooLargeError
from .limits import MAX_NOISE_MESSAGE

__all__ = ["PREFIX_LEN", "FrameReader", "frame_prefix"]

#: Size of the length prefix in bytes.
PREFIX_LEN = 2


def frame_prefix(message: bytes) -> bytes:
    """Return ``message`` preceded by its 2-byte big-endian length, ready to write.

    Raises :class:`FrameTooLargeError` if the message is longer than 65535 bytes and
    :class:`FrameEncodeError` if it is empty (a zero length is a protocol error for the
    reader, and no Noise message is ever empty).
    """
    n = len(message)
    if n > MAX_NOISE_MESSAGE:
        raise FrameTooLargeError(f"message of {n} bytes exceeds {MAX_NOISE_MESSAGE}")
    if n == 0:
        raise FrameEncodeError("empty message: a zero length prefix is a protocol error")
    return n.to_bytes(PREFIX_LEN, "big") + message


class FrameReader:
    """Splits a byte stream into length-prefixed messages, without doing any I/O.

    Call :meth:`feed` with each chunk read from the socket; it returns the messages
    completed by that chunk (possibly none). After a :class:`FrameDecodeError` the
    stream cannot be resynchronised: the reader stays broken and the connection must be
    closed.
    """

    __slots__ = ("_broken", "_buf")

    def __init__(self) -> None:
        # Holds at most one incomplete message, prefix included, so it is bounded by
        # PREFIX_LEN + MAX_NOISE_MESSAGE - 1 bytes.
        self._buf = bytearray()
        self._broken: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message (never more than ``2 + 65535``)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume ``data`` and return the complete messages it finishes, in order.

        A partial message at the end is kept for the next call. Raises
        :class:`FrameDecodeError` on a zero length prefix; messages completed earlier in
        the same call are then dropped, since the connection is being closed anyway.
        """
        if self._broken is not None:
            raise FrameDecodeError(f"stream already broken: {self._broken}")
        out: list[bytes] = []
        view = memoryview(data)
        pos = 0
        end = len(view)
        buf = self._buf
        if buf:
            # Finish the pending message first, copying only what it still needs.
            if len(buf) < PREFIX_LEN:
                take = min(PREFIX_LEN - len(buf), end)
                buf += view[:take]
                pos = take
                if len(buf) < PREFIX_LEN:
                    return out
            need = self._check_length(int.from_bytes(buf[:PREFIX_LEN], "big"))
            missing = PREFIX_LEN + need - len(buf)
            take = min(missing, end - pos)
            buf += view[pos : pos + take]
            pos += take
            if take < missing:
                return out
            out.append(bytes(buf[PREFIX_LEN:]))
            buf.clear()
        # Whole messages are sliced straight out of ``data``; nothing is buffered for them.
        while end - pos >= PREFIX_LEN:
            n = self._check_length((view[pos] << 8) | view[pos + 1])
            if end - pos - PREFIX_LEN < n:
                break
            start = pos + PREFIX_LEN
            out.append(bytes(view[start : start + n]))
            pos = start + n
        if pos < end:
            # At most PREFIX_LEN + n - 1 bytes, n <= 65535: the bound holds by construction.
            buf += view[pos:]
        return out

    def _check_length(self, n: int) -> int:
        if n == 0:
            self._broken = "zero-length message"
            self._buf.clear()
            raise FrameDecodeError("zero-length message in the stream")
        return n
