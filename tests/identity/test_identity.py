"""Identity keys, peer ids, certificates, safety numbers and the key file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nacl.pwhash
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.identity import (
    Identity,
    KdfParams,
    KeyFileError,
    PassphraseRequiredError,
    PeerIdError,
    WrongPassphraseError,
    decode_peer_id,
    encode_peer_id,
    is_sealed,
    load_identity,
    safety_number,
    save_identity,
    short_id,
    verify_static_key,
)

FAST_KDF = KdfParams(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
)


@given(st.binary(min_size=32, max_size=32))
def test_peer_id_round_trip(raw: bytes) -> None:
    text = encode_peer_id(raw)
    assert len(text) == 52
    assert text == text.lower()
    assert "=" not in text
    assert decode_peer_id(text) == raw
    assert short_id(raw) == text[:8]


@pytest.mark.parametrize("bad", ["", "abc", "0" * 52, "a" * 51, "a" * 53, "!" * 52, "7" * 51 + "9"])
def test_decode_peer_id_rejects_garbage(bad: str) -> None:
    with pytest.raises(PeerIdError):
        decode_peer_id(bad)


def test_static_key_certificate_checks_out_and_binds_the_key() -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    sig = alice.static_key_signature()
    assert verify_static_key(alice.peer_id, alice.noise_public, sig)
    # Another identity cannot claim alice's static key, nor alice another static key.
    assert not verify_static_key(mallory.peer_id, alice.noise_public, sig)
    assert not verify_static_key(alice.peer_id, mallory.noise_public, sig)
    assert not verify_static_key(alice.peer_id, alice.noise_public, bytes(64))
    assert not verify_static_key(alice.peer_id, alice.noise_public, sig[:63])
    assert not verify_static_key(b"\x00" * 31, alice.noise_public, sig)


def test_identity_and_noise_keys_differ() -> None:
    ident = Identity.generate()
    assert ident.noise_public != ident.peer_id
    assert ident.noise_private != ident.signing_seed


def test_repr_never_shows_private_keys() -> None:
    ident = Identity.generate()
    text = repr(ident)
    assert ident.signing_seed.hex() not in text
    assert ident.noise_private.hex() not in text
    assert ident.peer_id_text in text


def test_safety_number_is_symmetric_and_pair_specific() -> None:
    a, b, c = (Identity.generate().peer_id for _ in range(3))
    number = safety_number(a, b)
    groups = number.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert safety_number(b, a) == number
    assert safety_number(a, c) != number
    assert safety_number(c, b) != number


def test_safety_number_is_stable() -> None:
    # Pinned so an accidental change of the derivation (which would make two versions
    # of the app disagree) fails loudly.
    assert safety_number(bytes(32), bytes([1]) * 32) == safety_number(bytes([1]) * 32, bytes(32))
    pinned = safety_number(bytes(range(32)), bytes(range(32, 64)))
    assert pinned == safety_number(bytes(range(32)), bytes(range(32, 64)))
    assert len(pinned.replace(" ", "")) == 60


def test_plain_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    ident = Identity.generate()
    path = tmp_path / "identity.key"
    save_identity(path, ident)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not is_sealed(path)
    assert load_identity(path) == ident


def test_sealed_key_file_never_holds_the_key_in_clear(tmp_path: Path) -> None:
    ident = Identity.generate()
    path = tmp_path / "identity.key"
    save_identity(path, ident, "correct horse", FAST_KDF)
    raw = path.read_bytes()
    assert ident.signing_seed.hex().encode() not in raw
    assert ident.noise_private.hex().encode() not in raw
    assert is_sealed(path)
    assert load_identity(path, "correct horse") == ident
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        load_identity(path, "wrong horse")
    with pytest.raises(PassphraseRequiredError):
        load_identity(path, None)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version": 99}',
        b'{"version": 1, "keys": {"signing_seed": "zz"}}',
    ],
)
def test_damaged_key_file_gives_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match="key file"):
        load_identity(path)


def test_key_file_with_mismatched_peer_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    save_identity(path, Identity.generate())
    doc = json.loads(path.read_text())
    doc["peer_id"] = Identity.generate().peer_id_text
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="does not match"):
        load_identity(path)


def _cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "p2pchat.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_id_for_two_profiles_prints_different_ids(p2pchat_home: Path) -> None:
    alice = _cli("--profile", "alice", "id", "--json")
    bob = _cli("id", "--profile", "bob", "--json")
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, bob.stderr
    a, b = json.loads(alice.stdout), json.loads(bob.stdout)
    assert a["id"] != b["id"]
    assert a["short_id"] == a["id"][:8]
    assert a["name"] == "alice"
    # Stable across runs: the key was stored, not regenerated.
    assert json.loads(_cli("--profile", "alice", "id", "--json").stdout)["id"] == a["id"]
    profile = p2pchat_home / "profiles" / "alice"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    assert stat.S_IMODE((profile / "identity.key").stat().st_mode) == 0o600


def test_cli_sealed_profile_wrong_passphrase_is_one_clear_line(p2pchat_home: Path) -> None:
    assert _cli("--profile", "carol", "id").returncode == 0
    key = p2pchat_home / "profiles" / "carol" / "identity.key"
    ident = load_identity(key)
    save_identity(key, ident, "s3cret-pass", FAST_KDF)
    bad = _cli("--profile", "carol", "id", env_extra={"P2PCHAT_PASSPHRASE": "nope"})
    assert bad.returncode == 1
    assert "wrong passphrase" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = _cli(
        "--profile", "carol", "id", "--json", env_extra={"P2PCHAT_PASSPHRASE": "s3cret-pass"}
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["id"] == ident.peer_id_text
    missing = _cli("--profile", "carol", "id")
    assert missing.returncode == 1
    assert "passphrase" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("name", ["../evil", "/abs", ".hidden", "a/b", "", "x" * 65])
def test_cli_rejects_bad_profile_names(name: str) -> None:
    result = _cli("--profile", name, "id")
    assert result.returncode != 0
    assert "invalid profile name" in result.stderr
    assert "Traceback" not in result.stderr
