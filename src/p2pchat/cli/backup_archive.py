"""The backup file: a profile's key file, profile.json and store snapshot in one file.

Layout (all lengths 4-byte big-endian)::

    MAGIC (16 bytes) | header length | header JSON | frame | frame | ...
    frame = length | body

The header says whether the file is sealed and, if so, the Argon2id parameters and salt
(the same derivation as the key file's, :func:`p2pchat.identity.passphrase_key`).
Each frame's plaintext is ``index (8 bytes) | last (1 byte) | data (at most CHUNK)``;
sealed, the body is that plaintext in a SecretBox (XSalsa20-Poly1305, random nonce), so
a frame cannot be altered, reordered, dropped or cut off without the reader noticing.
The frames' data, joined, is ``manifest length | manifest JSON | file | file | ...``; the
manifest names each file (only the three known names are accepted), its size and its
SHA-256, which the reader checks before anything is kept. An unsealed file has the same
checks, which catch damage and truncation but not a deliberate edit.

The contents of files sent and received are not in a backup: their records are, and
they can be fetched again from anyone in the conversation who still has them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from p2pchat.identity import KdfParams, passphrase_key

MAGIC: Final = b"P2PCHAT-BACKUP\n\x01"
FORMAT: Final = 1
CHUNK: Final = 1 << 20
_MAX_HEADER: Final = 64 * 1024
_MAX_MANIFEST: Final = 64 * 1024
_SEAL_OVERHEAD: Final = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES
_FRAME_HEAD: Final = struct.Struct(">QB")
_LEN: Final = struct.Struct(">I")
#: The only files a backup may hold, and the only names a restore writes.
FILE_NAMES: Final = ("identity.key", "profile.json", "store.sqlite3")


class BackupError(Exception):
    """A backup cannot be written or read; the message is meant for people."""


class BackupPassphraseRequiredError(BackupError):
    """The backup is sealed and no passphrase was given."""


@dataclass(frozen=True)
class Manifest:
    """What a backup says about itself (inside the seal when sealed)."""

    peer_id: str
    profile: str
    created_at: str
    files: dict[str, int]  # name -> size


def write_backup(
    dest: Path,
    files: dict[str, Path],
    *,
    peer_id: str,
    profile: str,
    created_at: str,
    passphrase: str | None,
    kdf: KdfParams | None = None,
) -> None:
    """Write the backup file ``dest`` (0600, atomically: a crash leaves no half file)."""
    unknown = set(files) - set(FILE_NAMES)
    if unknown:
        raise ValueError(f"not a backup file name: {sorted(unknown)}")
    header: dict[str, Any] = {"format": FORMAT, "sealed": bool(passphrase)}
    box = None
    if passphrase:
        params = kdf or KdfParams()
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(passphrase_key(passphrase, salt, params))
        header["kdf"] = {
            "name": "argon2id",
            "opslimit": params.opslimit,
            "memlimit": params.memlimit,
            "salt": salt.hex(),
        }
    entries = [
        {"name": name, "size": path.stat().st_size, "sha256": _sha256(path)}
        for name, path in files.items()
    ]
    manifest = {
        "format": FORMAT,
        "peer_id": peer_id,
        "profile": profile,
        "created_at": created_at,
        "files": entries,
        "not_included": "the contents of files sent and received",
    }
    tmp = dest.with_name(dest.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            head = json.dumps(header).encode()
            out.write(MAGIC + _LEN.pack(len(head)) + head)
            for index, (last, data) in enumerate(_chunks(_plain_stream(manifest, files))):
                body = _FRAME_HEAD.pack(index, last) + data
                if box is not None:
                    body = bytes(box.encrypt(body))
                out.write(_LEN.pack(len(body)) + body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _plain_stream(manifest: dict[str, Any], files: dict[str, Path]) -> Iterator[bytes]:
    encoded = json.dumps(manifest).encode()
    yield _LEN.pack(len(encoded)) + encoded
    for path in files.values():
        with path.open("rb") as f:
            while block := f.read(CHUNK):
                yield block


def _chunks(stream: Iterator[bytes]) -> Iterator[tuple[bool, bytes]]:
    """Re-cut ``stream`` into CHUNK-sized pieces, flagging the last one."""
    buffer = b""
    pending: bytes | None = None
    for block in stream:
        buffer += block
        while len(buffer) >= CHUNK:
            if pending is not None:
                yield False, pending
            pending, buffer = buffer[:CHUNK], buffer[CHUNK:]
    if buffer:
        if pending is not None:
            yield False, pending
        pending = buffer
    yield True, pending or b""


# ------------------------------------------------------------------------ reading


def is_sealed(path: Path) -> bool:
    """Whether the backup at ``path`` needs a passphrase (raises BackupError if not one)."""
    with _open(path) as f:
        return bool(_read_header(f, path).get("sealed"))


def read_backup(path: Path, target: Path, passphrase: str | None) -> Manifest:
    """Check the backup and write its files into the existing, empty folder ``target``.

    Raises BackupError (not a backup, truncated, damaged or tampered with, wrong
    passphrase) or BackupPassphraseRequiredError. On error, files already written into
    ``target`` must be thrown away by the caller (it owns the folder).
    """
    with _open(path) as f:
        header = _read_header(f, path)
        box = _box(header, passphrase)
        plain = _PlainReader(_frames(f, box))
        manifest = _read_manifest(plain)
        for name, size, digest in _manifest_entries(manifest):
            _extract(plain, target / name, size, digest)
        if plain.read(1):
            raise BackupError("the backup holds more data than its manifest lists: damaged")
    return Manifest(
        peer_id=str(manifest.get("peer_id", "")),
        profile=str(manifest.get("profile", "")),
        created_at=str(manifest.get("created_at", "")),
        files={name: size for name, size, _ in _manifest_entries(manifest)},
    )


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        yield f


def _read_exact(f: IO[bytes], n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BackupError(f"the backup is truncated (cut short in {what}); it cannot be restored")
    return data


def _read_header(f: IO[bytes], path: Path) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise BackupError(f"{path} is not a p2pchat backup (or one from a newer p2pchat)")
    (length,) = _LEN.unpack(_read_exact(f, _LEN.size, "its header"))
    if length > _MAX_HEADER:
        raise BackupError("the backup's header is damaged (impossible length)")
    try:
        header = json.loads(_read_exact(f, length, "its header"))
    except ValueError:
        raise BackupError("the backup's header is damaged (not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("the backup has an unknown format version")
    return header


def _box(header: dict[str, Any], passphrase: str | None) -> nacl.secret.SecretBox | None:
    if not header.get("sealed"):
        return None
    if not passphrase:
        raise BackupPassphraseRequiredError(
            "this backup is sealed with a passphrase; enter it when asked or set P2PCHAT_PASSPHRASE"
        )
    try:
        kdf = header["kdf"]
        if kdf["name"] != "argon2id":
            raise ValueError(kdf["name"])
        params = KdfParams(opslimit=int(kdf["opslimit"]), memlimit=int(kdf["memlimit"]))
        salt = bytes.fromhex(kdf["salt"])
        if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
            raise ValueError("salt")
        # Bounds before Argon2id runs: a tampered header must not ask for 100 GiB.
        if not (
            1 <= params.opslimit <= nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
            and 8192 <= params.memlimit <= nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
        ):
            raise ValueError("cost")
    except (KeyError, TypeError, ValueError):
        raise BackupError("the backup's header is damaged (sealing parameters)") from None
    return nacl.secret.SecretBox(passphrase_key(passphrase, salt, params))


def _frames(f: IO[bytes], box: nacl.secret.SecretBox | None) -> Iterator[bytes]:
    """Each frame's data, checked: in order, none missing, nothing after the last."""
    index = 0
    limit = CHUNK + _FRAME_HEAD.size + (_SEAL_OVERHEAD if box is not None else 0)
    while True:
        raw_len = f.read(_LEN.size)
        if len(raw_len) != _LEN.size:
            raise BackupError("the backup is truncated (its end is missing); it cannot be restored")
        (length,) = _LEN.unpack(raw_len)
        if length > limit or length < _FRAME_HEAD.size:
            raise BackupError("the backup is damaged (a frame has an impossible length)")
        body = _read_exact(f, length, "a frame")
        if box is not None:
            try:
                body = box.decrypt(body)
            except nacl.exceptions.CryptoError:
                if index == 0:
                    raise BackupError(
                        "wrong passphrase (or the backup was tampered with)"
                    ) from None
                raise BackupError(
                    "the backup was tampered with or damaged (a frame does not open)"
                ) from None
        got, last = _FRAME_HEAD.unpack(body[: _FRAME_HEAD.size])
        if got != index or last not in (0, 1):
            raise BackupError("the backup was tampered with or damaged (frames out of order)")
        yield body[_FRAME_HEAD.size :]
        if last:
            if f.read(1):
                raise BackupError("the backup has data after its end: tampered with or damaged")
            return
        index += 1


class _PlainReader:
    """Reads the joined frame data as a byte stream."""

    def __init__(self, frames: Iterator[bytes]) -> None:
        self._frames = frames
        self._buffer = b""
        self._done = False

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n and not self._done:
            try:
                self._buffer += next(self._frames)
            except StopIteration:
                self._done = True
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def exact(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise BackupError(f"the backup is truncated (cut short in {what})")
        return data


def _read_manifest(plain: _PlainReader) -> dict[str, Any]:
    (length,) = _LEN.unpack(plain.exact(_LEN.size, "its manifest"))
    if length > _MAX_MANIFEST:
        raise BackupError("the backup's manifest is damaged (impossible length)")
    try:
        manifest = json.loads(plain.exact(length, "its manifest"))
    except ValueError:
        raise BackupError("the backup's manifest is damaged (not valid JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("the backup's manifest has an unknown format")
    return manifest


def _manifest_entries(manifest: dict[str, Any]) -> list[tuple[str, int, str]]:
    entries: list[tuple[str, int, str]] = []
    files = manifest.get("files")
    if not isinstance(files, list):
        raise BackupError("the backup's manifest is damaged (no file list)")
    for entry in files:
        try:
            name, size, digest = str(entry["name"]), int(entry["size"]), str(entry["sha256"])
        except (KeyError, TypeError, ValueError):
            raise BackupError("the backup's manifest is damaged (a file entry)") from None
        # Only known names ever reach the filesystem: never a path from the file.
        if name not in FILE_NAMES or size < 0 or any(e[0] == name for e in entries):
            raise BackupError(f"the backup's manifest lists an unexpected file {name[:40]!r}")
        entries.append((name, size, digest))
    if "identity.key" not in {e[0] for e in entries}:
        raise BackupError("the backup holds no identity key")
    return entries


def _extract(plain: _PlainReader, dest: Path, size: int, digest: str) -> None:
    sha = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left:
            block = plain.read(min(left, CHUNK))
            if not block:
                raise BackupError(f"the backup is truncated (cut short in {dest.name})")
            sha.update(block)
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    if sha.hexdigest() != digest:
        raise BackupError(f"the backup is damaged or was altered ({dest.name} does not match)")


__all__ = [
    "FILE_NAMES",
    "BackupError",
    "BackupPassphraseRequiredError",
    "Manifest",
    "is_sealed",
    "read_backup",
    "write_backup",
]
