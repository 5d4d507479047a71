"""Noise handshake patterns as data: pre-messages and per-message token lists.

The table below is written in the notation of the Noise specification (sections 7.4, 7.5
and 7.6) so it can be checked against the spec by eye; :func:`parse_pattern` turns a name
such as ``"XX"``, ``"XK1"`` or ``"NNpsk0+psk2"`` into a :class:`Pattern`.

Pure data and parsing: this module must never do I/O or any cryptography.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from p2pchat.crypto.errors import NoiseStateError

__all__ = ["PATTERN_NAMES", "Pattern", "parse_pattern"]

# "->" is initiator to responder, "<-" the reverse. Pre-messages come before "...".
_TABLE: Final = """
N:    <- s ; ... ; -> e, es
K:    -> s ; <- s ; ... ; -> e, es, ss
X:    <- s ; ... ; -> e, es, s, ss
NN:   -> e ; <- e, ee
NK:   <- s ; ... ; -> e, es ; <- e, ee
NX:   -> e ; <- e, ee, s, es
XN:   -> e ; <- e, ee ; -> s, se
XK:   <- s ; ... ; -> e, es ; <- e, ee ; -> s, se
XX:   -> e ; <- e, ee, s, es ; -> s, se
KN:   -> s ; ... ; -> e ; <- e, ee, se
KK:   -> s ; <- s ; ... ; -> e, es, ss ; <- e, ee, se
KX:   -> s ; ... ; -> e ; <- e, ee, se, s, es
IN:   -> e, s ; <- e, ee, se
IK:   <- s ; ... ; -> e, es, s, ss ; <- e, ee, se
IX:   -> e, s ; <- e, ee, se, s, es
NK1:  <- s ; ... ; -> e ; <- e, ee, es
NX1:  -> e ; <- e, ee, s ; -> es
X1N:  -> e ; <- e, ee ; -> s ; <- se
X1K:  <- s ; ... ; -> e, es ; <- e, ee ; -> s ; <- se
XK1:  <- s ; ... ; -> e ; <- e, ee, es ; -> s, se
X1K1: <- s ; ... ; -> e ; <- e, ee, es ; -> s ; <- se
X1X:  -> e ; <- e, ee, s, es ; -> s ; <- se
XX1:  -> e ; <- e, ee, s ; -> es, s, se
X1X1: -> e ; <- e, ee, s ; -> es, s ; <- se
K1N:  -> s ; ... ; -> e ; <- e, ee ; -> se
K1K:  -> s ; <- s ; ... ; -> e, es ; <- e, ee ; -> se
KK1:  -> s ; <- s ; ... ; -> e ; <- e, ee, se, es
K1K1: -> s ; <- s ; ... ; -> e ; <- e, ee, es ; -> se
K1X:  -> s ; ... ; -> e ; <- e, ee, s, es ; -> se
KX1:  -> s ; ... ; -> e ; <- e, ee, se, s ; -> es
K1X1: -> s ; ... ; -> e ; <- e, ee, s ; -> se, es
I1N:  -> e, s ; <- e, ee ; -> se
I1K:  <- s ; ... ; -> e, es, s ; <- e, ee ; -> se
IK1:  <- s ; ... ; -> e, s ; <- e, ee, se, es
I1K1: <- s ; ... ; -> e, s ; <- e, ee, es ; -> se
I1X:  -> e, s ; <- e, ee, s, es ; -> se
IX1:  -> e, s ; <- e, ee, se, s ; -> es
I1X1: -> e, s ; <- e, ee, s ; -> se, es
"""

_PRE_TOKENS: Final = frozenset({"e", "s"})
_MSG_TOKENS: Final = frozenset({"e", "s", "ee", "es", "se", "ss", "psk"})
_NAME_RE: Final = re.compile(r"(?P<base>[A-Z][A-Z0-9]*?)(?P<mods>psk\d+(?:\+psk\d+)*)?")


@dataclass(frozen=True)
class Pattern:
    """A parsed handshake pattern.

    ``messages[i]`` is sent by the initiator when ``i`` is even and by the responder when
    ``i`` is odd; one-way patterns (N, K, X) have a single message.
    """

    name: str
    initiator_pre: tuple[str, ...]
    responder_pre: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]

    @property
    def one_way(self) -> bool:
        """True for N, K and X: only the initiator ever sends, also after the handshake."""
        return len(self.messages) == 1

    @property
    def psk_count(self) -> int:
        """Number of ``psk`` tokens, i.e. how many pre-shared keys the handshake needs."""
        return sum(m.count("psk") for m in self.messages)


def _parse_line(line: str) -> tuple[str, Pattern]:
    name, _, body = line.partition(":")
    name = name.strip()
    parts = [p.strip() for p in body.split(";")]
    if "..." in parts:
        cut = parts.index("...")
        pre, msgs = parts[:cut], parts[cut + 1 :]
    else:
        pre, msgs = [], parts
    initiator_pre: tuple[str, ...] = ()
    responder_pre: tuple[str, ...] = ()
    for p in pre:
        arrow, tokens = p[:2], tuple(t.strip() for t in p[2:].split(","))
        assert set(tokens) <= _PRE_TOKENS, line
        if arrow == "->":
            initiator_pre = tokens
        else:
            responder_pre = tokens
    messages: list[tuple[str, ...]] = []
    for i, p in enumerate(msgs):
        arrow, tokens = p[:2], tuple(t.strip() for t in p[2:].split(","))
        # The table must alternate, starting with the initiator; the state machine relies on it.
        assert arrow == ("->" if i % 2 == 0 else "<-"), line
        assert set(tokens) <= _MSG_TOKENS, line
        messages.append(tokens)
    return name, Pattern(name, initiator_pre, responder_pre, tuple(messages))


_BASE: Final = dict(_parse_line(line) for line in _TABLE.strip().splitlines())

PATTERN_NAMES: Final = tuple(_BASE)
"""Base pattern names supported (each may also take ``pskN`` modifiers)."""


def parse_pattern(name: str) -> Pattern:
    """Resolve a pattern name, applying ``pskN`` modifiers; NoiseStateError if unsupported."""
    match = _NAME_RE.fullmatch(name)
    base = _BASE.get(match["base"]) if match else None
    if match is None or base is None:
        raise NoiseStateError(f"unsupported Noise pattern {name!r}")
    messages = [list(m) for m in base.messages]
    if match["mods"]:
        for mod in match["mods"].split("+"):
            n = int(mod[3:])
            # psk0 goes at the start of the first message, pskN at the end of message N.
            if n > len(messages):
                raise NoiseStateError(f"{mod} is out of range for pattern {name!r}")
            if n == 0:
                messages[0].insert(0, "psk")
            else:
                messages[n - 1].append("psk")
    return Pattern(name, base.initiator_pre, base.responder_pre, tuple(tuple(m) for m in messages))
