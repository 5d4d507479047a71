"""``p2pchat passphrase set|change|remove``: one passphrase for the key and the history.

With a passphrase the key file is sealed (Argon2id + XSalsa20-Poly1305) and the store
(history, contacts, file records, its WAL and search index) is encrypted (AEGIS-256)
with a random 32-byte key kept inside the sealed key file. Each operation:

1. opens the store with its present key (taking the profile's lock: never beside a
   running app, and finishing any earlier operation a crash interrupted);
2. writes the key file with the new passphrase, the new store key AND the old one
   (one atomic rename: this is the commit point);
3. re-encrypts the store to the new key (a copy, fsync, atomic rename: see
   :mod:`p2pchat.store.encryption`);
4. writes the key file again without the old key.

A kill at any point leaves a key file that opens with the old or the new passphrase
and holds the key of the store as it is; the next open of the store finishes the move
(Store.open re-keys from an old key). Nothing is lost. Files received or being received
(.part) are the person's own files and are not encrypted.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, Final

from p2pchat.cli.common import CliError, command_hint, load_profile
from p2pchat.cli.output import say
from p2pchat.identity import KdfParams, new_store_key
from p2pchat.profile import Profile, write_key_file
from p2pchat.store import Store, StoreError
from p2pchat.store.encryption import pause

#: Shown before a passphrase is set or changed, and when it is asked for in vain.
NO_RECOVERY: Final = (
    "There is no way to recover a forgotten passphrase: nobody (not p2pchat, not its "
    "authors) can open this profile's key or its history without it. If you lose it, "
    "you keep nothing but a new, empty profile. Write it down somewhere safe."
)
MIN_LENGTH: Final = 8


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``passphrase`` to the parser."""
    p = subs.add_parser(
        "passphrase",
        parents=[common],
        help="protect this profile's key and encrypt its history with a passphrase "
        "(or change or remove it)",
        description=(
            "set: seal the key file and encrypt the store (messages, contacts, file "
            "records) with a passphrase, asked for at every start. change: a new "
            "passphrase and a new store key. remove: back to an unsealed key file and a "
            "plain store. Stop the app or `p2pchat serve` first. Received files stay "
            f"unencrypted. {NO_RECOVERY}"
        ),
    )
    p.add_argument("action", choices=["set", "change", "remove"])
    p.set_defaults(handler=cmd_passphrase)


def cmd_passphrase(args: argparse.Namespace) -> int:
    """Set, change or remove the profile's passphrase (key file and store together)."""
    profile = load_profile(args)  # asks for the present passphrase, if there is one
    has_one = profile.passphrase is not None
    if args.action == "remove":
        if not has_one:
            raise CliError("this profile has no passphrase; nothing was changed")
        _apply(profile, None)
        say("passphrase removed: the key file is protected only by file permissions now, ")
        say("and the history is stored unencrypted")
        return 0
    if args.action == "set" and has_one:
        hint = command_hint(profile.name, "passphrase change")
        raise CliError(f"this profile already has a passphrase; to replace it run `{hint}`")
    if args.action == "change" and not has_one:
        hint = command_hint(profile.name, "passphrase set")
        raise CliError(f"this profile has no passphrase yet; to set one run `{hint}`")
    if not sys.stdin.isatty():
        raise CliError("setting a passphrase needs a terminal to type it in")
    say(NO_RECOVERY)  # before it is set, while the person can still decide
    first = getpass.getpass("New passphrase: ")
    if len(first) < MIN_LENGTH:
        raise CliError(f"too short (at least {MIN_LENGTH} characters); nothing was changed")
    if getpass.getpass("Repeat it: ") != first:
        raise CliError("the two passphrases differ; nothing was changed")
    _apply(profile, first)
    say("key file sealed and history encrypted with your passphrase")
    say("it is asked for at every start; received files are not encrypted")
    return 0


def _apply(profile: Profile, passphrase: str | None) -> None:
    try:
        apply_passphrase(profile, passphrase)
    except StoreError as exc:
        raise CliError(f"{exc}; the passphrase was not changed") from None


def apply_passphrase(
    profile: Profile, passphrase: str | None, kdf: KdfParams | None = None
) -> None:
    """Make ``passphrase`` (None: none) protect the key file and the store (steps above).

    Raises StoreError (another p2pchat runs, the store is damaged, the disk is full)
    before anything changed, or with the key file at the new passphrase and the store
    still openable through it (it is finished at the next open).
    """
    store = _open_store(profile)
    try:
        before = (profile.passphrase, profile.store_key, profile.kdf)
        new_key = new_store_key() if passphrase is not None else None
        old = (profile.store_key,) if profile.store_key is not None else ()
        write_key_file(profile, passphrase, new_key, old, kdf)  # the commit point
        pause("key-file-written")
        if store is not None:
            try:
                store.rekey(new_key)
            except StoreError:
                # The store is whole on its old key: put the old key file back, so the
                # old passphrase goes on opening both ("nothing was changed" is true).
                write_key_file(profile, before[0], before[1], (), before[2])
                raise
        pause("store-rekeyed")
        write_key_file(profile, passphrase, new_key)
    finally:
        if store is not None:
            store.close()


def _open_store(profile: Profile) -> Store | None:
    """The profile's store, on its present key (None: the profile has none yet)."""
    if not profile.store_path.exists() and not profile.store_expected:
        return None  # made by `p2pchat id`: the store is created encrypted later
    store = Store.open(
        profile.store_path,
        create=not profile.store_expected,
        key=profile.store_key,
        old_keys=profile.old_store_keys,
    )
    profile.mark_store_created()
    return store


__all__ = ["NO_RECOVERY", "apply_passphrase", "register"]
