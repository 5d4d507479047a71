"""``p2pchat backup FILE`` and ``p2pchat restore FILE``: a whole profile in one file.

A backup holds what a new machine needs to become this profile again: the identity key
file, profile.json and a consistent snapshot of the store (contacts, rooms, history,
settings), made with SQLite's online backup while the app or ``serve`` keeps running
(through the control socket) or directly when nothing runs. It is sealed with the
profile's passphrase when one is set; the store snapshot inside is then also encrypted
with the store's own key (kept in the sealed key file, which the backup holds), so a
restored profile opens with the same passphrase. The contents of files sent and
received are not included; see :mod:`p2pchat.cli.backup_archive` for the format.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from p2pchat.cli.backup_archive import (
    BackupError,
    is_sealed,
    read_backup,
    write_backup,
)
from p2pchat.cli.common import CliError, command_hint
from p2pchat.control.api import SNAPSHOT_PREFIX
from p2pchat.control.client import ControlClient
from p2pchat.control.params import ApiError
from p2pchat.control.server import socket_is_live
from p2pchat.identity import IdentityError, KdfParams, KeyFile, load_key_file
from p2pchat.key_doc import KEY_FILE
from p2pchat.paths import ProfileNameError, ensure_private_dir, profile_dir
from p2pchat.profile import (
    CONTROL_SOCKET,
    PASSPHRASE_ENV,
    PROFILE_FILE,
    STORE_FILE,
    passphrase_from_env,
    read_profile_meta,
    record_store_created,
)
from p2pchat.store import Store, StoreError

#: A passphrase for a backup of a profile that has none (scripts; else it is asked).
BACKUP_PASSPHRASE_ENV = "P2PCHAT_BACKUP_PASSPHRASE"  # noqa: S105 - a variable name

NOT_INCLUDED = (
    "not included: the contents of files sent and received (their records are; fetch "
    "them again from whoever still has them)"
)
AFTER_RESTORE = (
    "since the backup: group rooms fetch what members sent from any member you meet; "
    "direct chats get back what your contacts still had waiting for you, but messages they "
    "already saw delivered after the backup are not sent again, and what you sent after it "
    "stays only on their side."
)


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``backup`` and ``restore`` to the parser."""
    p = subs.add_parser(
        "backup",
        parents=[common],
        help="save this profile (key, contacts, history, settings) into one file",
        description=(
            "Write a consistent snapshot of this profile into FILE: its identity key, "
            "contacts, rooms, message history and settings (not the contents of files sent "
            "and received). Works while the app or `p2pchat serve` runs. Sealed with the "
            "profile's passphrase when it has one; otherwise unencrypted unless you give "
            f"--passphrase (asked for, or taken from {BACKUP_PASSPHRASE_ENV})."
        ),
    )
    p.add_argument("file", metavar="FILE", help="where to write the backup")
    p.add_argument(
        "--passphrase",
        action="store_true",
        help="seal the backup with a passphrase even though the profile has none",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(handler=cmd_backup)

    p = subs.add_parser(
        "restore",
        parents=[common],
        help="bring a backup back as a profile (default: the profile 'default')",
        description=(
            "Check FILE completely (a truncated, damaged or altered backup is refused) and "
            "make it the profile named by --profile. An existing profile is never "
            "overwritten unless you give --force, and then it is kept, renamed."
        ),
    )
    p.add_argument("file", metavar="FILE", help="a file written by `p2pchat backup`")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing profile (it is kept beside, renamed with a timestamp)",
    )
    p.set_defaults(handler=cmd_restore)


# ------------------------------------------------------------------------- backup


def cmd_backup(args: argparse.Namespace) -> int:
    """Snapshot the profile and write the backup file."""
    directory = _existing_profile(args.profile)
    dest = Path(args.file).expanduser()
    if dest.exists() and not args.force:
        raise CliError(f"{dest} exists; choose another name or give --force to overwrite it")
    if not dest.parent.is_dir():
        raise CliError(f"there is no folder {dest.parent} to write the backup into")
    key_path = directory / KEY_FILE
    passphrase, kdf, keys = _sealing(key_path, want=args.passphrase)
    snapshot = asyncio.run(_snapshot(directory, keys))
    try:
        files = {KEY_FILE: key_path, STORE_FILE: snapshot}
        if (directory / PROFILE_FILE).exists():
            files[PROFILE_FILE] = directory / PROFILE_FILE
        write_backup(
            dest,
            files,
            peer_id=_peer_id_of(key_path),
            profile=args.profile,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            passphrase=passphrase,
            kdf=kdf,
        )
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        snapshot.unlink(missing_ok=True)
    print(f"backup written to {dest}")
    if passphrase:
        print("it is sealed with your passphrase (Argon2id + XSalsa20-Poly1305)")
    else:
        print(
            "it is NOT encrypted: anyone who gets this file can read your history and act as "
            "you. Keep it somewhere safe, or make it again with --passphrase.",
            file=sys.stderr,
        )
    print(NOT_INCLUDED)
    return 0


def _existing_profile(name: str) -> Path:
    try:
        directory = profile_dir(name, create=False)
    except ProfileNameError as exc:
        raise CliError(str(exc)) from None
    if not (directory / KEY_FILE).exists():
        raise CliError(f"there is no profile {name!r} ({directory}) to back up")
    return directory


def _key_doc(key_path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(key_path.read_bytes())
    except (OSError, ValueError):
        raise CliError(f"cannot read the key file {key_path}") from None
    if not isinstance(doc, dict):
        raise CliError(f"the key file {key_path} is damaged")
    return doc


def _peer_id_of(key_path: Path) -> str:
    return str(_key_doc(key_path).get("peer_id", ""))


def _sealing(key_path: Path, *, want: bool) -> tuple[str | None, KdfParams | None, KeyFile]:
    """The passphrase (and Argon2id cost) to seal the backup with, or (None, None), and
    the opened key file (its store key opens an encrypted store)."""
    sealed = _key_doc(key_path).get("sealed")
    if isinstance(sealed, dict):
        secret = passphrase_from_env() or _ask("Passphrase for this profile: ")
        if not secret:
            raise CliError(
                f"this profile's key is protected by a passphrase; enter it or set {PASSPHRASE_ENV}"
            )
        try:
            keys = load_key_file(key_path, secret)  # a wrong passphrase must not seal it
        except IdentityError as exc:
            raise CliError(str(exc)) from None
        try:  # as costly to guess as the key file itself
            kdf = KdfParams(opslimit=int(sealed["opslimit"]), memlimit=int(sealed["memlimit"]))
        except (KeyError, TypeError, ValueError):
            kdf = KdfParams()
        return secret, kdf, keys
    try:
        keys = load_key_file(key_path, None)
    except IdentityError as exc:
        raise CliError(str(exc)) from None
    if not want:
        return None, None, keys
    secret = os.environ.get(BACKUP_PASSPHRASE_ENV) or ""
    if not secret:
        first = _ask("Passphrase for the backup: ")
        if first is not None and _ask("Repeat it: ") != first:
            raise CliError("the two passphrases differ; no backup was written")
        secret = first or ""
    if len(secret) < 8:
        raise CliError("a backup passphrase needs at least 8 characters")
    return secret, KdfParams(), keys


def _ask(prompt: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(prompt)


async def _snapshot(directory: Path, keys: KeyFile) -> Path:
    """A consistent copy of the store: from the running node if one runs, else directly."""
    control = directory / CONTROL_SOCKET
    if socket_is_live(control):
        try:
            async with await ControlClient.connect(control) as client:
                result = await client.call("backup")
        except ApiError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"cannot reach the running p2pchat: {exc.strerror or exc}") from None
        name = result.get("snapshot") if isinstance(result, dict) else None
        if not isinstance(name, str) or not name.startswith(SNAPSHOT_PREFIX) or "/" in name:
            raise CliError("the running p2pchat gave an unexpected answer to `backup`")
        return directory / name
    store_path = directory / STORE_FILE
    dest = directory / f"{SNAPSHOT_PREFIX}{os.getpid()}.sqlite3"
    dest.unlink(missing_ok=True)
    try:
        with Store.open(
            store_path, create=False, key=keys.store_key, old_keys=keys.old_store_keys
        ) as store:
            store.backup_to(dest)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    return dest


# ------------------------------------------------------------------------ restore


def cmd_restore(args: argparse.Namespace) -> int:
    """Check the backup, then make it the profile ``--profile``."""
    source = Path(args.file).expanduser()
    try:
        target = profile_dir(args.profile, create=False)
    except ProfileNameError as exc:
        raise CliError(str(exc)) from None
    occupied = target.exists() and any(target.iterdir())
    if occupied and not args.force:
        raise CliError(
            f"the profile {args.profile!r} already exists ({target}); restore into another "
            "one with --profile NAME, or give --force to replace it (it is kept, renamed)"
        )
    if occupied and socket_is_live(target / CONTROL_SOCKET):
        raise CliError(f"the profile {args.profile!r} is running; stop it first")
    try:
        sealed = is_sealed(source)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    secret = None
    if sealed:
        secret = (
            os.environ.get(BACKUP_PASSPHRASE_ENV)
            or passphrase_from_env()
            or _ask("Passphrase of the backup: ")
        )
    root = ensure_private_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=root))
    try:
        summary = _unpack(source, work, secret)
        if occupied:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            kept = target.with_name(f"{target.name}.replaced-{stamp}")
            os.replace(target, kept)
            print(f"the profile that was there is kept as {kept}")
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"restored profile {args.profile!r} from {source}: {summary}")
    print(AFTER_RESTORE)
    print(NOT_INCLUDED)
    print(f"start it with: {command_hint(args.profile, '')}".rstrip())
    return 0


def _unpack(source: Path, work: Path, secret: str | None) -> str:
    """Extract and check everything in ``work``; return a one-line summary."""
    try:
        manifest = read_backup(source, work, secret)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    key_id = _peer_id_of(work / KEY_FILE)
    if manifest.peer_id and key_id != manifest.peer_id:
        raise CliError("the backup is damaged: its key file belongs to another id")
    counts = ""
    if (work / STORE_FILE).exists():
        keys = _restored_keys(work, secret)
        try:  # the full start-up check runs here: a damaged store is never restored
            with Store.open(
                work / STORE_FILE,
                create=False,
                key=keys.store_key,
                old_keys=keys.old_store_keys,
            ) as store:
                rooms = store.list_rooms()
                messages = sum(store.message_count(r.room.id) for r in rooms)
                contacts = len(store.list_peers("contact"))
            counts = f"{messages} messages in {len(rooms)} rooms, {contacts} contacts, "
        except StoreError as exc:
            raise CliError(f"the backup's store cannot be used: {exc}") from None
        record_store_created(work)
    for leftover in work.iterdir():  # the check's lock file: the new profile makes its own
        if leftover.name not in {KEY_FILE, STORE_FILE, PROFILE_FILE}:
            with contextlib.suppress(OSError):
                leftover.unlink()
    name = read_profile_meta(work).get("name", "")
    made = f"made {manifest.created_at}" if manifest.created_at else "undated"
    return f"{counts}id {key_id[:8]} {name!r} (backup {made})"


def _restored_keys(work: Path, secret: str | None) -> KeyFile:
    """The restored key file, opened: an encrypted store in the backup needs its key.

    A profile with a passphrase is backed up sealed with that same passphrase, so the
    backup's passphrase opens the key file too; otherwise it is asked for.
    """
    key_path = work / KEY_FILE
    try:
        if "sealed" not in _key_doc(key_path):
            return load_key_file(key_path, None)
        for candidate in (secret, passphrase_from_env()):
            if candidate:
                with contextlib.suppress(IdentityError):
                    return load_key_file(key_path, candidate)
        asked = _ask("Passphrase of the backed-up profile: ")
        return load_key_file(key_path, asked)
    except IdentityError as exc:
        raise CliError(f"the backup's key file cannot be opened: {exc}") from None
