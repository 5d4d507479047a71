"""A newcomer's first day on the command line (issue 13)."""

from __future__ import annotations

import argparse
from pathlib import Path

import nacl.pwhash
import pytest

from p2pchat.cli import build_parser
from p2pchat.cli import common as cli_common
from p2pchat.cli.common import CliError, load_profile
from p2pchat.identity import KdfParams, save_identity
from p2pchat.profile import KEY_FILE, open_profile

# The cheapest Argon2id cost: the tests check the asking, not the key stretching.
CHEAP = KdfParams(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def sealed_profile(name: str, passphrase: str) -> bytes:
    """Create profile ``name`` with its key sealed by ``passphrase``; its peer id."""
    profile = open_profile(name)
    save_identity(profile.directory / KEY_FILE, profile.identity, passphrase, kdf=CHEAP)
    return profile.identity.peer_id


class Terminal:
    """The person at the terminal (outside our control): types the given answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> None:
        self.answers = answers
        self.asked = 0
        monkeypatch.setattr(cli_common.sys.stdin, "isatty", lambda: True)
        monkeypatch.setattr(cli_common.getpass, "getpass", self.getpass)

    def getpass(self, prompt: str = "") -> str:
        self.asked += 1
        return self.answers.pop(0)


def test_a_mistyped_passphrase_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    peer_id = sealed_profile("alice", "correct horse")
    terminal = Terminal(monkeypatch, ["correct hrose", "correct horse"])
    profile = load_profile(argparse.Namespace(profile="alice"))
    assert profile.identity.peer_id == peer_id
    assert terminal.asked == 2
    assert "try again" in capsys.readouterr().err


def test_three_wrong_passphrases_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed_profile("alice", "correct horse")
    terminal = Terminal(monkeypatch, ["a", "b", "c", "correct horse"])
    with pytest.raises(CliError, match="wrong passphrase"):
        load_profile(argparse.Namespace(profile="alice"))
    assert terminal.asked == 3


def test_a_wrong_env_passphrase_fails_at_once_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed_profile("alice", "correct horse")
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", "nope")
    terminal = Terminal(monkeypatch, ["correct horse"])
    with pytest.raises(CliError, match="P2PCHAT_PASSPHRASE"):
        load_profile(argparse.Namespace(profile="alice"))
    assert terminal.asked == 0


def test_help_documents_the_passphrase_variable() -> None:
    assert "P2PCHAT_PASSPHRASE" in build_parser().format_help()


def test_readme_documents_the_passphrase_variable() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert "P2PCHAT_PASSPHRASE" in readme.read_text(encoding="utf-8")
