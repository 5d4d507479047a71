"""Child process of tests/cli/test_passphrase.py: one passphrase change, killed mid-way.

Usage: ``python -m tests.cli.passphrase_child PROFILE OLD NEW`` (an empty OLD/NEW means
no passphrase). The test sets P2PCHAT_HOME and P2PCHAT_TEST_REKEY_PAUSE.
"""

from __future__ import annotations

import sys

from p2pchat.cli.passphrase_cmds import apply_passphrase
from p2pchat.identity import KdfParams
from p2pchat.profile import open_profile

#: Argon2id at its minimum: the test is about crash safety, not about guessing cost.
CHEAP = KdfParams(opslimit=1, memlimit=8192)


def main() -> None:
    name, old, new = sys.argv[1:4]
    profile = open_profile(name, lambda: old or None)
    apply_passphrase(profile, new or None, CHEAP)


if __name__ == "__main__":
    main()
