"""Preferences only the app has (terminal bell, desktop notifications).

The node keeps its own settings (read receipts, announce, download folder) in the store;
these two concern only this screen, so they live in ``ui.json`` beside the profile.
A damaged file means defaults, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = "ui.json"


@dataclass
class UiPrefs:
    """Notification preferences of this profile's app."""

    bell: bool = False
    desktop: bool = True

    @classmethod
    def load(cls, directory: Path) -> UiPrefs:
        """Read ``ui.json`` (defaults when missing or damaged)."""
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

    def save(self, directory: Path) -> None:
        """Write ``ui.json`` (0600, like everything in the profile)."""
        path = directory / FILE
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")
        path.chmod(0o600)
