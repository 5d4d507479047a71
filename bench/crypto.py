"""Benchmark of p2pchat.crypto.noise: XX handshakes per second and transport throughput.

Run: ``.venv/bin/python bench/crypto.py [--seconds 2] [--rounds 5]``

Transport throughput encrypts and decrypts full frames (65519-byte plaintexts, i.e.
65535-byte ciphertexts) through our CipherState and, in the same run on the same data,
through the raw AEAD our CipherState is built on (``cryptography``'s ChaCha20Poly1305,
i.e. OpenSSL); the ratio ours/raw shows what the Noise layer costs on top of it. For
reference it also prints libsodium's (PyNaCl) figure for the same cipher, which the
transport used before (see docs/architecture.md). Each figure is the best of
``--rounds`` timed rounds, interleaved so machine noise hits all of them.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import cryptography
import nacl
import nacl.bindings
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from p2pchat.crypto.noise import MAX_MESSAGE_LEN, TAG_LEN, CipherState, HandshakeState, KeyPair

PLAINTEXT_LEN = MAX_MESSAGE_LEN - TAG_LEN


def _rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of ``fn`` (which returns how many units it did), over ~seconds."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        done += fn()
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def handshake_batch() -> int:
    init_s, resp_s = KeyPair.generate(), KeyPair.generate()
    for _ in range(20):
        init = HandshakeState("XX", initiator=True, prologue=b"p2pchat/1", s=init_s)
        resp = HandshakeState("XX", initiator=False, prologue=b"p2pchat/1", s=resp_s)
        resp.read_message(init.write_message())
        init.read_message(resp.write_message(b"hello from responder"))
        resp.read_message(init.write_message(b"hello from initiator"))
        init.split()
        resp.split()
    return 20


def make_ours(data: bytes) -> Callable[[], int]:
    key = bytes(range(32))
    send, recv = CipherState(key), CipherState(key)

    def batch() -> int:
        for _ in range(16):
            recv.decrypt(send.encrypt(data))
        return 16 * len(data)

    return batch


def make_raw(data: bytes) -> Callable[[], int]:
    aead = ChaCha20Poly1305(bytes(range(32)))
    nonce = bytes(12)  # fixed nonce: the cheapest possible caller, so the ratio is honest

    def batch() -> int:
        for _ in range(16):
            aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)
        return 16 * len(data)

    return batch


def make_libsodium(data: bytes) -> Callable[[], int]:
    key = bytes(range(32))
    nonce = bytes(12)  # fixed nonce: the cheapest possible caller, so the ratio is honest
    encrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt
    decrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt

    def batch() -> int:
        for _ in range(16):
            decrypt(encrypt(data, None, nonce, key), None, nonce, key)
        return 16 * len(data)

    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} on {platform.machine()}, PyNaCl {nacl.__version__}, "
        f"cryptography {cryptography.__version__}, "
        f"{args.rounds} rounds x {args.seconds:g} s, best round reported"
    )
    handshakes = max(_rate(handshake_batch, args.seconds) for _ in range(args.rounds))
    print(f"XX handshakes (3 messages, both sides, in-process): {handshakes:9.0f} /s")

    data = bytes(range(256)) * (PLAINTEXT_LEN // 256) + bytes(PLAINTEXT_LEN % 256)
    ours_batch, raw_batch, sodium_batch = make_ours(data), make_raw(data), make_libsodium(data)
    ours = raw = sodium = 0.0
    for _ in range(args.rounds):
        ours = max(ours, _rate(ours_batch, args.seconds))
        raw = max(raw, _rate(raw_batch, args.seconds))
        sodium = max(sodium, _rate(sodium_batch, args.seconds))
    mb = 1e6
    print(f"transport, {PLAINTEXT_LEN}-byte frames, encrypt+decrypt:")
    print(f"  ours (CipherState):  {ours / mb:8.1f} MB/s")
    print(f"  raw AEAD (OpenSSL):  {raw / mb:8.1f} MB/s")
    print(f"  ratio ours/raw:      {ours / raw:8.3f}")
    print(f"  libsodium (PyNaCl), for reference: {sodium / mb:8.1f} MB/s")


if __name__ == "__main__":
    main()
