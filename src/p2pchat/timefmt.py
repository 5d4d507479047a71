"""Millisecond timestamps as text, for every integer: the one way times are shown.

A message's time is whatever its author signed. The node refuses envelopes whose ``ts``
lies outside ``0 .. MAX_TS`` (docs/protocol.md), but a database written before that
check, a clock set to the year 30000, or a time zone that pushes 9999-12-31 into the year
10000 must never make showing a conversation fail. So every function here is *total*:
for any ``int`` it returns a value and never raises; a time no calendar here can show
becomes a plain stand-in (``--:--``, ``None``) rather than an exception.

The UI, the CLI and the control socket all format times through this module (it imports
nothing of p2pchat, so every layer may use it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = [
    "UNKNOWN_CLOCK",
    "UNKNOWN_STAMP",
    "iso_utc",
    "local_clock",
    "local_datetime",
    "local_day",
    "local_stamp",
    "utc_datetime",
]

#: Shown instead of ``HH:MM`` for a time that cannot be put on a calendar.
UNKNOWN_CLOCK: Final = "--:--"
#: Shown instead of a date and time that cannot be put on a calendar.
UNKNOWN_STAMP: Final = "unknown time"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# What converting an out-of-range time can raise: timedelta and datetime arithmetic raise
# OverflowError, datetime's year range ValueError, the platform's localtime() OSError.
_RANGE_ERRORS: Final = (OverflowError, ValueError, OSError)


def utc_datetime(ms: int) -> datetime | None:
    """``ms`` milliseconds after the Unix epoch as an aware UTC datetime, or None.

    Pure arithmetic (no platform ``gmtime``), so the same on every OS: None exactly when
    the instant is outside years 1..9999.
    """
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except _RANGE_ERRORS:
        return None


def local_datetime(ms: int) -> datetime | None:
    """``ms`` as an aware datetime in the local time zone, or None if it has none."""
    utc = utc_datetime(ms)
    if utc is None:
        return None
    try:
        return utc.astimezone()
    except _RANGE_ERRORS:
        return None


def local_day(ms: int) -> date | None:
    """The local calendar day of ``ms``, or None."""
    when = local_datetime(ms)
    return when.date() if when is not None else None


def local_clock(ms: int) -> str:
    """``14:05`` in local time, or ``--:--``."""
    when = local_datetime(ms)
    return f"{when:%H:%M}" if when is not None else UNKNOWN_CLOCK


def local_stamp(ms: int, *, with_date: bool = True) -> str:
    """``2026-12-07 14:05`` (or ``14:05:09``) in local time, or ``unknown time``."""
    when = local_datetime(ms)
    if when is None:
        return UNKNOWN_STAMP
    return f"{when:%Y-%m-%d %H:%M}" if with_date else f"{when:%H:%M:%S}"


def iso_utc(ms: int | None) -> str | None:
    """``2026-12-07T14:05:09+00:00``; None for no time or one outside years 1..9999."""
    if ms is None:
        return None
    when = utc_datetime(ms)
    return when.isoformat(timespec="seconds") if when is not None else None
