"""``p2pchat`` with no subcommand: what happens before the app runs (issue 12).

The app paints its first frame before the node's modules load, so the command line
hands it a Launch instead of a node. A sealed key file still has its passphrase asked
for on the terminal first (wrong ones give the usual clear message, and the app never
starts); an unsealed profile is opened by the Launch, in the app's thread.
"""

from __future__ import annotations

import pytest

import p2pchat.ui.run
from p2pchat.cli import app_args, main
from p2pchat.cli.passphrase_cmds import apply_passphrase
from p2pchat.identity import KdfParams
from p2pchat.node import Node
from p2pchat.paths import profile_dir
from p2pchat.profile import PASSPHRASE_ENV, open_profile
from p2pchat.ui.launch import Launch

CHEAP = KdfParams(opslimit=1, memlimit=8192)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Launches handed to the app instead of running it."""
    got: list[Launch] = []

    def fake_run_app(launch: Launch) -> int:
        got.append(launch)
        return 0

    monkeypatch.setattr(p2pchat.ui.run, "run_app", fake_run_app)
    return got


def test_only_a_plain_command_line_takes_the_apps_quick_parser() -> None:
    assert app_args([]) is not None
    args = app_args(["--profile", "amy", "--port", "7101", "--peer", "127.0.0.1:7102"])
    assert args is not None
    assert (args.profile, args.port, args.peer_addresses) == ("amy", 7101, [("127.0.0.1", 7102)])
    for other in (["serve"], ["--help"], ["--version"], ["--port", "x"], ["--peer", "nope"]):
        assert app_args(other) is None  # the full parser handles (and explains) these


def test_an_unsealed_profile_is_opened_by_the_launch(launches: list[Launch]) -> None:
    assert main(["--profile", "amy", "--no-mdns"]) == 0
    (launch,) = launches
    assert launch.directory == profile_dir("amy")
    assert not (launch.directory / "identity.key").exists()  # not opened before the app
    node = launch.build()
    assert isinstance(node, Node)
    assert node.profile.name == "amy"
    assert not node.config.discovery


def test_a_sealed_profile_asks_first_and_a_wrong_passphrase_never_starts_the_app(
    launches: list[Launch], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apply_passphrase(open_profile("amy"), "correct horse battery", CHEAP)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse")
    assert main(["--profile", "amy"]) == 1
    assert "wrong passphrase" in capsys.readouterr().err.lower()
    assert launches == []
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    assert main(["--profile", "amy"]) == 0
    (launch,) = launches
    monkeypatch.delenv(PASSPHRASE_ENV)  # the build never asks again: the profile is open
    assert launch.build().profile.store_key is not None
