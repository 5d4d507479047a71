"""``p2pchat repair``: salvage a damaged store into a fresh one, keeping the damaged file.

A start that finds damage it cannot fix by rebuilding indexes refuses and names this
command. With a passphrase it asks for it (the store is encrypted, and so is the fresh
one); it needs no running node (it takes the profile's lock, so it refuses while the app
or ``serve`` runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from p2pchat.cli.common import CliError, command_hint, load_profile
from p2pchat.key_doc import KEY_FILE
from p2pchat.paths import ProfileNameError, profile_dir
from p2pchat.profile import STORE_FILE, record_store_created
from p2pchat.store import (
    CorruptStoreError,
    DamagedStoreError,
    MissingStoreError,
    Store,
    StoreError,
    StoreIOError,
)
from p2pchat.store.recovery import SalvageReport
from p2pchat.store.repair import RepairResult, lost_rows, repair_store

#: Tables people know by another name; the rest are shown as they are.
_FRIENDLY = {
    "messages": "messages",
    "peers": "peers and contacts",
    "rooms": "rooms",
    "members": "room members",
    "receipts": "receipts",
    "outbox": "messages waiting to be sent",
    "transfers": "file transfers",
    "reactions": "reactions",
    "settings": "settings",
    "addresses": "known addresses",
}

AFTERWARDS = (
    "Group rooms fetch what was lost from other members when they next meet (anti-entropy). "
    "Direct chats get back only what the other side still sends you again (messages it has "
    "not seen delivered); restore a backup (`p2pchat restore`) for the rest."
)


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``repair`` to the parser."""
    p = subs.add_parser(
        "repair",
        parents=[common],
        help="salvage a damaged store into a fresh one (the damaged file is kept)",
        description=(
            "Copy every readable row of this profile's store into a fresh store and keep "
            "the damaged file beside it, renamed with a timestamp (never deleted). Says "
            "what was recovered and what was lost. Stop the app or `p2pchat serve` first."
        ),
    )
    p.set_defaults(handler=cmd_repair)


def cmd_repair(args: argparse.Namespace) -> int:
    """Run the salvage and print its report."""
    try:
        directory = profile_dir(args.profile, create=False)
    except ProfileNameError as exc:
        raise CliError(str(exc)) from None
    if not (directory / KEY_FILE).exists():
        raise CliError(f"there is no profile {args.profile!r} ({directory}); nothing to repair")
    profile = load_profile(args)  # the store key, when a passphrase is set
    path = directory / STORE_FILE
    if _sound(path, profile.store_key, profile.old_store_keys):
        print(f"no damage found in {path} (full integrity check); nothing was changed")
        return 0
    try:
        result = repair_store(path, key=profile.store_key)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    record_store_created(directory)
    for line in report_lines(result):
        print(line)
    print(f"start it again with: {command_hint(args.profile, '')}".rstrip())
    return 0


def _sound(path: Path, key: bytes | None, old_keys: tuple[bytes, ...]) -> bool:
    """Whether the store opens and passes the full check (then repair has nothing to do).

    Opening may rebuild damaged indexes by itself (losslessly); that counts as sound.
    """
    try:
        with Store.open(path, create=False, key=key, old_keys=old_keys) as store:
            if store.rebuilt_from is not None:
                print(f"damaged indexes were rebuilt; the old file is kept as {store.rebuilt_from}")
            return store.integrity_check() == ["ok"]
    except (DamagedStoreError, MissingStoreError, CorruptStoreError, StoreIOError):
        return False
    except StoreError as exc:  # locked, not ours, newer: repair cannot help either
        raise CliError(str(exc)) from None


def report_lines(result: RepairResult) -> list[str]:
    """The repair's outcome in plain words: where the old file is, what came back."""
    lines = []
    if result.kept is not None:
        lines.append(f"the damaged store was kept as {result.kept}")
    if result.nothing_readable:
        lines.append(f"nothing could be recovered: {result.nothing_readable}.")
        lines.append("a fresh, empty store is in place; your identity key is unchanged.")
        lines.append(AFTERWARDS)
        return lines
    report = result.report
    lines.append("recovered: " + _recovered(report))
    lost = _lost(report)
    if lost:
        lines.append("lost: " + "; ".join(lost))
        lines.append(AFTERWARDS)
    else:
        lines.append("nothing was lost: every row could be read")
    return lines


def _recovered(report: SalvageReport) -> str:
    parts = [
        f"{t.copied - t.orphans} {_FRIENDLY.get(t.name, t.name)}"
        for t in report.tables
        if t.name in _FRIENDLY
    ]
    return ", ".join(parts)


def _lost(report: SalvageReport) -> list[str]:
    lost = []
    for table in report.tables:
        if table.name == "heads":
            continue  # derived from the messages, rebuilt by the salvage
        name = _FRIENDLY.get(table.name, table.name)
        count = lost_rows(table)
        if count == 0:
            continue
        if count is None:
            lost.append(f"an unknown number of {name} (a damaged part could not be read)")
        elif table.damaged:
            lost.append(f"up to {count} {name}")
        else:
            lost.append(f"{count} {name} whose room or message was lost")
    return lost
