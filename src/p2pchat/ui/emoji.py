"""Emoji by name: ``:shortcode:`` completion, the picker's list and search, recent ones.

The data is the ``emoji`` package's (Unicode's CLDR names such as ``thumbs_up`` plus
the common aliases ``:+1:``, ``:thumbsup:``, ``:smile:``; skin-tone variants have names
too). Only names are looked up here; nothing is rendered.

The lists a person browses (picker, completion) hold only emoji whose width every
terminal agrees on: one wide code point, or a flag. A text-style symbol needing
VS16 (``❤️``), a skin-tone or ZWJ sequence is drawn one, two or six cells wide
depending on the terminal, which shifts everything after it on the line, the dialog's
border included. They can still be typed by name (``:red_heart:``) or pasted.

The package has no categories, so :func:`category` sorts by Unicode block, with a few
name rules for the mixed blocks: good enough to browse, not a Unicode standard.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

#: The reactions offered first (keys 1-6 on a selected message).
QUICK_REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🙏")

#: Browsing order of the picker's sections.
CATEGORIES = (
    "Smileys & people",
    "Animals & nature",
    "Food & drink",
    "Activities",
    "Travel & places",
    "Objects",
    "Symbols",
    "Flags",
)
#: The UI setting (through the node's ``set_ui_setting``) holding recent picks.
RECENT_SETTING = "emoji_recent"
MAX_RECENT = 16

_SHORTCODE = re.compile(r":([A-Za-z0-9_+\-]+):")
_PARTIAL = re.compile(r"(?:^|(?<=[\s(]))(:[a-z0-9_+\-]{2,})$")
_NOT_KEY = re.compile(r"[^a-z0-9+\-]+")

# (first, last code point, category), first match wins; ordered so the narrower
# ranges inside a mixed block come first.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x1F1E6, 0x1F1FF, "Flags"),
    (0x1F3F3, 0x1F3F4, "Flags"),
    (0x1F170, 0x1F251, "Symbols"),  # 🅰 🆎 🈁: enclosed letters and ideographs
    (0x1F600, 0x1F64F, "Smileys & people"),
    (0x1F910, 0x1F92F, "Smileys & people"),
    (0x1F930, 0x1F93A, "Smileys & people"),
    (0x1F970, 0x1F97F, "Smileys & people"),
    (0x1F9B0, 0x1F9B9, "Smileys & people"),
    (0x1F9CD, 0x1F9DF, "Smileys & people"),
    (0x1FAE0, 0x1FAFF, "Smileys & people"),
    (0x1F440, 0x1F450, "Smileys & people"),
    (0x1F466, 0x1F487, "Smileys & people"),
    (0x1F48B, 0x1F49F, "Smileys & people"),
    (0x1F574, 0x1F57A, "Smileys & people"),
    (0x1F590, 0x1F596, "Smileys & people"),
    (0x270A, 0x270D, "Smileys & people"),
    (0x1F4AA, 0x1F4AA, "Smileys & people"),
    (0x1F400, 0x1F43F, "Animals & nature"),
    (0x1F330, 0x1F344, "Animals & nature"),
    (0x1F980, 0x1F9AE, "Animals & nature"),
    (0x1FAB0, 0x1FABF, "Animals & nature"),
    (0x1F345, 0x1F37F, "Food & drink"),
    (0x1F32D, 0x1F32F, "Food & drink"),
    (0x1F950, 0x1F96F, "Food & drink"),
    (0x1F9C0, 0x1F9CB, "Food & drink"),
    (0x1FAD0, 0x1FADF, "Food & drink"),
    (0x1F380, 0x1F3D3, "Activities"),
    (0x1F3F8, 0x1F3F9, "Activities"),
    (0x1F93B, 0x1F94F, "Activities"),
    (0x26BD, 0x26BE, "Activities"),
    (0x1F3D4, 0x1F3F0, "Travel & places"),
    (0x1F300, 0x1F32F, "Travel & places"),
    (0x1F680, 0x1F6FF, "Travel & places"),
    (0x2600, 0x26FF, "Symbols"),
    (0x1F500, 0x1F53D, "Symbols"),
    (0x1F7E0, 0x1F7FF, "Symbols"),
    (0x1F004, 0x1F0CF, "Activities"),
    (0x2190, 0x2BFF, "Symbols"),
    (0x3000, 0x33FF, "Symbols"),
)
_PEOPLE_WORDS = ("face", "hand", "person", "man", "woman", "heart", "finger")


class SettingStore(Protocol):
    """Where recent picks are kept: the node's UI settings."""

    async def ui_setting(self, key: str) -> str | None: ...
    async def set_ui_setting(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Entry:
    """One emoji a person can browse to: its text, readable name, shortcodes."""

    char: str
    name: str  # "thumbs up"
    keys: tuple[str, ...]  # "thumbs_up", "thumbsup", "+1": lower-case, ASCII
    category: str


def shortcode_key(name: str) -> str:
    """What a person can type for a name: ``:Côte_d_Ivoire:`` -> ``cote_d_ivoire``."""
    plain = unicodedata.normalize("NFKD", name.strip(":").lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return _NOT_KEY.sub("_", plain).strip("_")


def listable(char: str) -> bool:
    """True when every terminal draws ``char`` two cells wide (see the module doc)."""
    if len(char) == 2 and all(0x1F1E6 <= ord(c) <= 0x1F1FF for c in char):
        return True  # a flag: two regional indicators
    return len(char) == 1 and unicodedata.east_asian_width(char) == "W"


def category(char: str, name: str = "") -> str:
    """The picker section of ``char`` (by Unicode block; see the module doc)."""
    return _place(char, name)[0]


def _place(char: str, name: str) -> tuple[str, int]:
    """The section of ``char`` and the index of its range (the order inside a section)."""
    point = ord(char[0])
    for index, (first, last, section) in enumerate(_RANGES):
        if first <= point <= last:
            return section, index
    words = name.split("_")
    if any(w in words for w in _PEOPLE_WORDS):
        return "Smileys & people", len(_RANGES)
    return "Objects", len(_RANGES)


@lru_cache(maxsize=1)
def _data() -> tuple[dict[str, str], tuple[Entry, ...]]:
    """Every shortcode -> emoji, and the browsable entries in picker order."""
    codes: dict[str, str] = {}
    found: list[tuple[int, int, str, Entry]] = []
    order = {c: i for i, c in enumerate(CATEGORIES)}
    # Imported on first use (a name typed, the picker opened): its tables take about
    # 50 ms to load, which start-up does not need to pay.
    from emoji import EMOJI_DATA, STATUS

    fully_qualified = STATUS["fully_qualified"]
    for char, info in EMOJI_DATA.items():
        if info["status"] != fully_qualified:
            continue
        names = [info["en"], *info.get("alias", [])]
        keys = tuple(dict.fromkeys(k for k in map(shortcode_key, names) if k))
        for key in keys:
            codes.setdefault(key, char)
        if listable(char) and keys:
            readable = info["en"].strip(":").replace("_", " ")
            section, index = _place(char, keys[0])
            found.append((order[section], index, char, Entry(char, readable, keys, section)))
    found.sort(key=lambda f: f[:3])
    return codes, tuple(f[3] for f in found)


def entries() -> tuple[Entry, ...]:
    """All browsable emoji, section by section (Smileys & people first)."""
    return _data()[1]


def lookup(name: str) -> str | None:
    """The emoji for shortcode ``name`` (without colons), or None."""
    return _data()[0].get(shortcode_key(name)) if name else None


def _rank(entry: Entry, query: str, words: list[str]) -> int | None:
    """0 exact shortcode, 1 a shortcode's prefix, 2 every word starts a word, 3 inside."""
    if query in entry.keys:
        return 0
    if any(k.startswith(query) for k in entry.keys):
        return 1
    parts = [w for k in entry.keys for w in k.split("_")]
    if all(any(p.startswith(w) for p in parts) for w in words):
        return 2
    if all(any(w in k for k in entry.keys) for w in words):
        return 3
    return None


def search(query: str, limit: int = 200) -> list[Entry]:
    """Entries matching ``query`` (words of a name or alias), best matches first."""
    words = [shortcode_key(w) for w in query.split()]
    words = [w for w in words if w]
    if not words:
        return list(entries()[:limit])
    joined = "_".join(words)
    ranked = []
    for i, entry in enumerate(entries()):
        rank = _rank(entry, joined, words)
        if rank is not None:
            ranked.append((rank, min(len(k) for k in entry.keys), i, entry))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked[:limit]]


def complete(prefix: str, limit: int = 8) -> list[tuple[str, str]]:
    """(shortcode, emoji) pairs whose shortcode starts with ``prefix``, shortest first."""
    key = shortcode_key(prefix)
    if not key:
        return []
    found = []
    for i, entry in enumerate(entries()):
        matching = [k for k in entry.keys if k.startswith(key)]
        if matching:
            best = min(matching, key=lambda k: (len(k), k))
            found.append((len(best), best, i, entry.char))
    found.sort()
    return [(name, char) for _, name, _, char in found[:limit]]


def partial_shortcode(before_cursor: str) -> str | None:
    """The ``:sho`` being typed just before the cursor, without the colon, or None."""
    match = _PARTIAL.search(before_cursor)
    return match.group(1)[1:] if match else None


def replace_shortcodes(text: str) -> str:
    """``text`` with every known ``:name:`` replaced by its emoji; unknown ones stay."""

    def sub(match: re.Match[str]) -> str:
        return lookup(match.group(1)) or match.group(0)

    return _SHORTCODE.sub(sub, text)


# ------------------------------------------------------------------ recently used


def parse_recent(value: str | None) -> list[str]:
    """The stored recent picks, dropping anything that is not a browsable emoji."""
    known = {e.char for e in entries()}
    out: list[str] = []
    for char in (value or "").split():
        if char in known and char not in out:
            out.append(char)
    return out[:MAX_RECENT]


async def load_recent(store: SettingStore) -> list[str]:
    """Recent picks, newest first (none when the setting is missing or damaged)."""
    return parse_recent(await store.ui_setting(RECENT_SETTING))


async def remember(store: SettingStore, char: str) -> list[str]:
    """Put ``char`` first among the recent picks and store them."""
    recent = [char, *(c for c in await load_recent(store) if c != char)]
    recent = parse_recent(" ".join(recent))
    await store.set_ui_setting(RECENT_SETTING, " ".join(recent))
    return recent
