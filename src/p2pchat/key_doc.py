"""The key file as a JSON document, read without any crypto.

``p2pchat`` must know whether a profile's key file is sealed (a passphrase to ask for
on the terminal) before the app starts, and it asks before PyNaCl is loaded, so the
app's first frame never waits for it (issue 12). Opening the keys is ``identity``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KEY_FILE = "identity.key"
KEY_FILE_VERSION = 1


class KeyDocFormatError(ValueError):
    """Valid JSON, but not a key file of a version we know."""


def read_key_doc(path: Path) -> dict[str, Any]:
    """The key file's document: OSError if unreadable, ValueError if not valid JSON,
    KeyDocFormatError if not one of our key files."""
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict) or doc.get("version") != KEY_FILE_VERSION:
        raise KeyDocFormatError(f"{path} is not a key file of version {KEY_FILE_VERSION}")
    return doc


def is_sealed_doc(doc: dict[str, Any]) -> bool:
    """Whether a key file's document needs a passphrase to open."""
    return "sealed" in doc
