"""Exceptions raised by the wire layer.

Two families, in the spirit of h11: :class:`FrameDecodeError` means *the peer* broke the
protocol (close the connection and log the message), while :class:`FrameEncodeError` and
:class:`FrameTooLargeError` mean *we* tried to send something invalid (a bug on this side).
This module must never import anything but the standard library.
"""

from __future__ import annotations

__all__ = ["FrameDecodeError", "FrameEncodeError", "FrameTooLargeError", "WireError"]


class WireError(Exception):
    """Base class of every error raised by :mod:`p2pchat.wire`."""


class FrameTooLargeError(WireError):
    """A message or frame to be sent exceeds a size limit of the protocol."""


class FrameEncodeError(WireError, ValueError):
    """A frame to be sent has a field value the protocol does not allow (a local bug)."""


class FrameDecodeError(WireError):
    """Received bytes are not a valid message or frame.

    Raised for truncated input, bytes that are not msgpack, wrong types, missing fields,
    values out of range, oversized strings/binaries/arrays/maps, nesting deeper than the
    schema and trailing bytes. The message names the offending field, for example
    ``"rcpt.ids[3]: expected 16-byte bin, got str"``.
    """
