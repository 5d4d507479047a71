"""Hostile file names: what a peer calls its file must be harmless where it is saved and
wherever it is shown.

A name is the sender's choice. It must not escape the download folder, must not be a
trap for people who use a shell (``-rf`` read as options, ``~`` as a home folder), and
must not hide or fake what it says: bidi overrides reorder it (``\u202egpj.exe`` shows as
``exe.jpg``), BOM, zero-width and filler characters make two names look alike and make a
list's columns disagree with what the terminal draws.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len, get_character_cell_size

from p2pchat.node import Node
from p2pchat.node.events import TransferProgress
from p2pchat.node.files import MAX_MARKS, MAX_NAME_BYTES, LocalFile, inside, safe_name
from tests.nodes import wait_for
from tests.transfer.helpers import start_pair

# Names seen in the probe of issue 10 and their cleaned forms.
EXAMPLES = {
    "-rf": "rf",
    "--no-preserve-root": "no-preserve-root",
    "~": "file",
    "~root": "root",
    "..": "file",
    "../../.bashrc": "bashrc",
    "\u202egpj.exe": "gpj.exe",  # shows as "exe.jpg" with the override
    "\ufeffreport.pdf": "report.pdf",
    "in\u200bvoice\u200d.pdf": "invoice.pdf",
    "Alice\u034f.txt": "Alice.txt",  # combining grapheme joiner
    "Alice\u3164.txt": "Alice.txt",  # Hangul filler: blank, yet a letter
    "\u115f\u1160.txt": "txt",  # fillers only, then the dot goes
    "photo\ufe0f.jpg": "photo.jpg",  # variation selector
    "a\U000e0041b.txt": "ab.txt",  # tag character
    "- \u200e~.txt": "txt",
    # Canonical order puts the marks below first; two are kept.
    "Z\u0351\u0352\u0353\u0354\u0355algo.txt": "Z\u0353\u0354algo.txt",
    "r\u00e9sum\u00e9.pdf": "r\u00e9sum\u00e9.pdf",  # readable names stay as they are
    "\u0915\u094d\u0937\u093f.txt": "\u0915\u094d\u0937\u093f.txt",  # Devanagari
    "\u5199\u771f 2024.png": "\u5199\u771f 2024.png",
}

# Every Unicode category, plus the invisible characters the sanitiser must know by name.
names = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from("-~./\\ \u202e\u2066\ufeff\u200b\u200d\u034f\u3164\u115f\u1160\ufe0f"),
        st.sampled_from("\u0301\u0351\u093f\u1161\u11a8\u2800\u3000\U0001f3fb\U000e0041"),
    ),
    min_size=1,
    max_size=300,
)

DROPPED = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or get_character_cell_size(ch) == 0


def test_known_hostile_names_are_cleaned() -> None:
    cleaned = {name: safe_name(name) for name in EXAMPLES}
    assert cleaned == EXAMPLES


@settings(max_examples=400, deadline=None)
@given(names)
def test_any_name_from_a_peer_becomes_one_safe_visible_component(name: str) -> None:
    clean = safe_name(name)
    # One path component, directly inside the download folder.
    folder = Path("/downloads")
    assert inside(folder, clean).parent == folder
    assert clean not in ("", ".", "..")
    assert "/" not in clean
    assert "\\" not in clean
    assert len(clean.encode("utf-8")) <= MAX_NAME_BYTES
    # No shell trap, no hidden file, nothing invisible at either end.
    assert clean[0] not in "-~. "
    assert clean[-1] not in ". "
    # No control, format, bidi, private or unassigned character anywhere.
    assert not [ch for ch in clean if unicodedata.category(ch) in DROPPED]
    # It shows the width it claims: every character takes cells of its own, except a
    # few marks drawn on the character before them; so a column measured with
    # cell_len is what the terminal draws.
    assert get_character_cell_size(clean[0]) >= 1
    run = 0
    for ch in clean:
        if is_mark(ch):
            run += 1
            assert run <= MAX_MARKS, f"too many marks in {clean!r}"
        else:
            run = 0
            assert get_character_cell_size(ch) >= 1, f"{ch!r} in {clean!r}"
    bases = [ch for ch in clean if not is_mark(ch)]
    assert cell_len(clean) == sum(get_character_cell_size(ch) for ch in bases)
    # Stable: cleaning twice changes nothing (the saved name is the shown name).
    assert unicodedata.normalize("NFC", clean) == clean
    assert safe_name(clean) == clean


def send_raw_names(alice: Node, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make Alice a hostile sender: her offers carry the next name of the returned list
    as it is, instead of the cleaned name an honest client puts in its manifest."""
    raw_names: list[str] = []
    describe = alice.transfers._describe

    async def describe_with_raw_name(path: Path) -> LocalFile:
        local = await describe(path)
        return replace(local, manifest=replace(local.manifest, name=raw_names.pop(0)))

    monkeypatch.setattr(alice.transfers, "_describe", describe_with_raw_name)
    return raw_names


async def received(alice: Node, bob: Node, src: Path) -> tuple[str, str, str]:
    """Alice's file as Bob has it: (saved file name, chat preview, card name)."""
    events = bob.subscribe()
    try:
        message = await alice.transfers.send_file(bob.me, src)
        done = await wait_for(
            events,
            lambda e: (
                isinstance(e, TransferProgress)
                and e.message_id == message.id
                and e.state in ("done", "failed", "cancelled")
            ),
        )
    finally:
        events.close()
    assert isinstance(done, TransferProgress)
    assert done.state == "done", done.detail
    info = await bob.transfers.get(message.id)
    assert info is not None
    assert info.path is not None
    stored = await bob.get_message(message.id)
    assert stored is not None
    manifest = await bob.transfers.manifest(message.id)  # what the chat's file card shows
    assert manifest is not None
    return Path(info.path).name, bob.display_text(stored), manifest.name


async def test_hostile_file_names_are_saved_and_shown_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await start_pair(tmp_path)
    raw_names = send_raw_names(alice, monkeypatch)
    src = tmp_path / "payload.txt"
    src.write_text("boo")
    try:
        for raw, clean in (
            ("-rf", "rf"),
            ("~", "file"),
            ("\u202egpj.exe", "gpj.exe"),
            ("\ufeffin\u200bvoice\u2060.pdf", "invoice.pdf"),
        ):
            raw_names.append(raw)
            saved, preview, card = await received(alice, bob, src)
            assert (saved, card) == (clean, clean)
            assert preview.startswith(f"\U0001f4ce {clean} (")
        downloads = os.listdir(tmp_path / "downloads")
        assert "-rf" not in downloads
        assert "~" not in downloads
    finally:
        await alice.stop()
        await bob.stop()
