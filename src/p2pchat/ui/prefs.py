"""Preferences only the app has (terminal bell, desktop notifications, theme).

They are kept in the profile's store through the node (``ui_setting``), beside the
node's own settings. Earlier versions wrote ``ui.json`` in the profile folder: when the
store has no value yet, that file's value is taken over once. A damaged value or file
means defaults, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

FILE = "ui.json"
KEYS = ("bell", "desktop")
THEME_KEY = "theme"
MAX_THEME_NAME = 100


class SettingStore(Protocol):
    """What the node offers for the app's settings."""

    async def ui_setting(self, key: str) -> str | None: ...
    async def set_ui_setting(self, key: str, value: str) -> None: ...


@dataclass
class UiPrefs:
    """Notification preferences of this profile's app."""

    bell: bool = False
    desktop: bool = True
    #: The Textual theme last chosen ("" = the default); only in the store, not ui.json.
    theme: str = ""

    @classmethod
    def load_file(cls, directory: Path) -> UiPrefs:
        """Read the old ``ui.json`` (defaults when missing or damaged)."""
        try:
            data = json.loads((directory / FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(
            bell=data.get("bell") is True,
            desktop=data.get("desktop", True) is not False,
        )

    @classmethod
    async def load(cls, node: SettingStore, directory: Path) -> UiPrefs:
        """Read the store; take over ``ui.json`` values the store does not have yet."""
        old = cls.load_file(directory)
        prefs = cls()
        for key in KEYS:
            stored = await node.ui_setting(key)
            if stored in ("0", "1"):
                setattr(prefs, key, stored == "1")
            else:
                setattr(prefs, key, getattr(old, key))
                await node.set_ui_setting(key, "1" if getattr(old, key) else "0")
        stored_theme = await node.ui_setting(THEME_KEY)
        if stored_theme and len(stored_theme) <= MAX_THEME_NAME:
            prefs.theme = stored_theme
        return prefs

    async def save(self, node: SettingStore) -> None:
        """Write both notification preferences to the store."""
        for key in KEYS:
            await node.set_ui_setting(key, "1" if getattr(self, key) else "0")

    async def save_theme(self, node: SettingStore, theme: str) -> None:
        """Remember the chosen theme for the next start."""
        self.theme = theme
        await node.set_ui_setting(THEME_KEY, theme)
