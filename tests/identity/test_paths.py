"""Profile directories: P2PCHAT_HOME override, validation, private modes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from p2pchat.paths import ProfileNameError, data_root, profile_dir
from p2pchat.profile import clean_display_name, open_profile


def test_home_override_and_private_modes(p2pchat_home: Path) -> None:
    assert data_root() == p2pchat_home
    path = profile_dir("alice")
    assert path == p2pchat_home / "profiles" / "alice"
    for p in (p2pchat_home, p2pchat_home / "profiles", path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700


def test_existing_loose_directory_is_tightened(p2pchat_home: Path) -> None:
    loose = p2pchat_home / "profiles" / "bob"
    loose.mkdir(parents=True, mode=0o755)
    loose.chmod(0o755)
    profile_dir("bob")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".x", "x.", "", "a" * 65, "a b"])
def test_profile_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(ProfileNameError):
        profile_dir(name)


def test_open_profile_is_stable_and_keeps_display_name() -> None:
    first = open_profile("dora")
    assert first.created
    first.set_display_name("  Dora \x1b[2J Explorer\n")
    again = open_profile("dora")
    assert not again.created
    assert again.identity == first.identity
    assert again.display_name == "Dora [2J Explorer"


def test_display_name_needs_a_visible_character() -> None:
    with pytest.raises(ValueError, match="visible"):
        clean_display_name(" \n\t\x1b ")
