"""Emoji by name: ``:shortcode:`` completion, search for the picker, quick reactions.

The table is Rich's (the same names Rich uses for ``:smile:`` in markup), so no new
dependency is needed. Only names are looked up here; nothing is rendered.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich._emoji_codes import EMOJI

#: The reactions offered first (keys 1-6 on a selected message).
QUICK_REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🙏")

# Short, common names first in completions and search results.
_FAVOURITES = (
    "thumbs_up",
    "red_heart",
    "smile",
    "joy",
    "grinning_face",
    "wink",
    "tada",
    "fire",
    "pray",
    "heart",
    "rocket",
    "eyes",
)
_SHORTCODE = re.compile(r":([a-z0-9_+\-()']+):")
_PARTIAL = re.compile(r"(?:^|(?<=[\s(]))(:[a-z0-9_+\-]{2,})$")


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    return tuple(sorted(EMOJI, key=lambda n: (len(n), n)))


def lookup(name: str) -> str | None:
    """The emoji for ``name`` (without colons), or None."""
    return EMOJI.get(name.lower())


def search(query: str, limit: int = 200) -> list[tuple[str, str]]:
    """(name, emoji) pairs matching ``query``: prefix matches first, then substrings."""
    q = query.strip().lower().replace(" ", "_").strip(":")
    if not q:
        picks = [(n, EMOJI[n]) for n in _FAVOURITES if n in EMOJI]
        rest = [(n, EMOJI[n]) for n in _names() if n not in _FAVOURITES]
        return (picks + rest)[:limit]
    prefix = [n for n in _names() if n.startswith(q)]
    words = [n for n in _names() if not n.startswith(q) and f"_{q}" in n]
    inner = [n for n in _names() if q in n and n not in prefix and n not in words]
    return [(n, EMOJI[n]) for n in (prefix + words + inner)[:limit]]


def partial_shortcode(before_cursor: str) -> str | None:
    """The ``:sho`` being typed just before the cursor, without the colon, or None."""
    match = _PARTIAL.search(before_cursor)
    return match.group(1)[1:] if match else None


def replace_shortcodes(text: str) -> str:
    """``text`` with every known ``:name:`` replaced by its emoji; unknown ones stay."""

    def sub(match: re.Match[str]) -> str:
        return EMOJI.get(match.group(1).lower(), match.group(0))

    return _SHORTCODE.sub(sub, text)
