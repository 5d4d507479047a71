"""``p2pchat invite``, ``p2pchat add CODE`` and ``p2pchat tor`` (no tor needed: the onion
address follows from the identity key, and adding a code only stores it)."""

from __future__ import annotations

import json

import pytest

from p2pchat.cli import main


def invite_of(profile: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--profile", profile, "invite"]) == 0
    out = capsys.readouterr()
    assert "tor is off for this profile" in out.err
    return out.out.strip()


def test_add_code_makes_a_contact_reached_through_tor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = invite_of("bob", capsys)
    assert invite_of("bob", capsys) == code  # stable: derived from the identity key
    assert main(["--profile", "alice", "add", code]) == 0
    assert "now a contact" in capsys.readouterr().out
    assert main(["--profile", "alice", "tor", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["enabled"] is False
    assert [c["id"] for c in status["contacts"]] == [code.split(":")[1].split(".")[0]]
    assert status["contacts"][0]["link"] is None


def test_mistyped_code_is_refused_and_nothing_is_added(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = invite_of("bob", capsys)
    bad = code[:-1] + ("a" if code[-1] != "a" else "b")
    assert main(["--profile", "alice", "add", bad]) == 1
    assert "check does not match" in capsys.readouterr().err
    assert main(["--profile", "alice", "tor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["contacts"] == []


def test_own_code_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = invite_of("alice", capsys)
    assert main(["--profile", "alice", "add", code]) == 1
    assert "your own invite code" in capsys.readouterr().err


def test_invite_qr_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "alice", "invite", "--qr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("p2pchat:")
    assert "▀" in out or "▄" in out


def test_tor_status_without_a_running_node_tells_the_remembered_choice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from p2pchat.profile import open_profile
    from p2pchat.store import Store

    profile = open_profile("alice")
    with Store.open(profile.store_path) as store:
        store.set_setting("tor", "1")
    profile.mark_store_created()
    assert main(["--profile", "alice", "tor"]) == 0
    assert "tor is on for this profile" in capsys.readouterr().out
    assert main(["--profile", "alice", "invite"]) == 0
    assert "tor is off" not in capsys.readouterr().err
