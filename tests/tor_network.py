"""A private Tor network on 127.0.0.1 for the Tor tests and bench/tor.py.

Three directory authorities (keys made with ``tor-gencert``) and three relays, all with
``TestingTorNetwork 1``, 10-second voting and ``AssumeReachable 1``, every port bound to
127.0.0.1. The network is *ready* when two consecutive consensus documents list every
relay with the HSDir and Running flags: starting onion services before that made first
connections take minutes (issue 19, "Testing it offline").

Every wait is bounded and ``stop()`` ends every tor it started (each one is also owned by
this process through ``__OwningControllerProcess``, so a killed test run leaves none).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import free_port

# Measured here: 19-33 s to ready on 2 cores; the bound leaves room for a loaded machine.
READY_TIMEOUT = 150.0
#: Where packages install tor when it is not on PATH (as in src/p2pchat/node/tor.py).
TOR_PLACES = ("/usr/sbin/tor", "/usr/local/sbin/tor", "/usr/local/bin/tor")
VOTING_INTERVAL = 10

_COMMON = """\
TestingTorNetwork 1
UseDefaultFallbackDirs 0
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
AssumeReachable 1
DataDirectory {dir}
RunAsDaemon 0
ShutdownWaitLength 0
Nickname {nick}
Address 127.0.0.1
ContactInfo {nick}@test.invalid
SocksPort 0
ControlPort 0
ORPort 127.0.0.1:{orport}
Log notice file {dir}/notice.log
SafeLogging 0
ProtocolWarnings 1
DisableDebuggerAttachment 0
ExitPolicy reject *:*
__OwningControllerProcess {owner}
"""

_AUTHORITY = """\
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
DirPort 127.0.0.1:{dirport}
V3AuthVotingInterval {interval}
V3AuthVoteDelay 2
V3AuthDistDelay 2
TestingV3AuthInitialVotingInterval {interval}
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
"""


class TorNetworkError(RuntimeError):
    """The private network could not be built or did not become ready in time."""


def tor_binaries() -> tuple[str, str] | None:
    """Paths of ``tor`` and ``tor-gencert``, or None where tor is not installed."""
    tor = shutil.which("tor") or next((p for p in TOR_PLACES if os.access(p, os.X_OK)), None)
    gencert = shutil.which("tor-gencert") or (
        "/usr/bin/tor-gencert" if os.access("/usr/bin/tor-gencert", os.X_OK) else None
    )
    if tor is None or gencert is None:
        return None
    return tor, gencert


@dataclass
class TorNode:
    """One tor process of the network."""

    nick: str
    dir: Path
    orport: int
    dirport: int | None = None
    process: subprocess.Popen[bytes] | None = None
    fingerprint: str = ""
    v3ident: str = ""

    def log_tail(self, lines: int = 15) -> str:
        path = self.dir / "notice.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class TorNetwork:
    """The network: build with ``start()``, give nodes ``client_torrc()``, ``stop()``."""

    root: Path
    authorities: list[TorNode] = field(default_factory=list)
    relays: list[TorNode] = field(default_factory=list)
    ready_after: float = 0.0
    #: Set by ``cancel()`` (another thread): a ``start()`` in progress gives up.
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def nodes(self) -> list[TorNode]:
        return self.authorities + self.relays

    # ------------------------------------------------------------------ build

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Build, launch and wait until ready; on failure everything is stopped again."""
        found = tor_binaries()
        if found is None:
            raise TorNetworkError("tor or tor-gencert is not installed")
        tor, gencert = found
        began = time.monotonic()
        try:
            for i in range(3):
                node = TorNode(f"auth{i}", self.root / f"auth{i}", free_port(), free_port())
                self._make_authority_keys(node, tor, gencert)
                self.authorities.append(node)
            for i in range(3):
                self.relays.append(TorNode(f"relay{i}", self.root / f"relay{i}", free_port()))
            dir_lines = self.dir_authority_lines()
            for node in self.nodes:
                self._write_torrc(node, dir_lines)
                node.process = subprocess.Popen(
                    [tor, "-f", str(node.dir / "torrc")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                )
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_after = time.monotonic() - began

    def _make_authority_keys(self, node: TorNode, tor: str, gencert: str) -> None:
        keys = node.dir / "keys"
        node.dir.mkdir(parents=True, mode=0o700)
        keys.mkdir(mode=0o700)
        subprocess.run(
            [
                gencert,
                "--create-identity-key",
                "-m",
                "12",
                "-a",
                f"127.0.0.1:{node.dirport}",
                "-i",
                str(keys / "authority_identity_key"),
                "-s",
                str(keys / "authority_signing_key"),
                "-c",
                str(keys / "authority_certificate"),
                "--passphrase-fd",
                "0",
            ],
            input=b"\n",
            check=True,
            capture_output=True,
            timeout=60,
        )
        cert = (keys / "authority_certificate").read_text()
        match = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M)
        if match is None:
            raise TorNetworkError(f"no fingerprint in {node.nick}'s certificate")
        node.v3ident = match.group(1)
        # The relay identity key: --list-fingerprint creates it and prints its digest.
        # (without TestingTorNetwork, which needs DirAuthority lines we cannot write yet).
        empty = node.dir / "empty-torrc"  # tor refuses /dev/null: not a regular file
        empty.write_text("")
        out = subprocess.run(
            [
                tor,
                "--list-fingerprint",
                "-f",
                str(empty),
                "--DataDirectory",
                str(node.dir),
                "--ORPort",
                f"127.0.0.1:{node.orport}",
                "--SocksPort",
                "0",
                "--Log",
                "err stderr",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout.decode()
        match = re.search(r"([0-9A-F]{4}(?: [0-9A-F]{4}){9})", out)
        if match is None:
            raise TorNetworkError(f"no fingerprint for {node.nick}: {out!r}")
        node.fingerprint = match.group(1).replace(" ", "")

    def _write_torrc(self, node: TorNode, dir_lines: str) -> None:
        node.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(node.dir, 0o700)
        text = _COMMON.format(dir=node.dir, nick=node.nick, orport=node.orport, owner=os.getpid())
        if node.dirport is not None:
            text += _AUTHORITY.format(dirport=node.dirport, interval=VOTING_INTERVAL)
        (node.dir / "torrc").write_text(text + dir_lines)

    def dir_authority_lines(self) -> str:
        """The ``DirAuthority`` lines every tor of this network (and each node's) needs."""
        return "".join(
            f"DirAuthority {a.nick} orport={a.orport} no-v2 v3ident={a.v3ident} "
            f"127.0.0.1:{a.dirport} {a.fingerprint}\n"
            for a in self.authorities
        )

    def client_torrc(self) -> list[str]:
        """Torrc lines for a node's own tor so that it uses this network."""
        return [
            "TestingTorNetwork 1",
            # Only this network's authorities: never the public Tor network's fallbacks.
            "UseDefaultFallbackDirs 0",
            "PathsNeededToBuildCircuits 0.67",
            *self.dir_authority_lines().splitlines(),
        ]

    # ------------------------------------------------------------------ readiness

    def _consensus(self) -> str | None:
        auth = self.authorities[0]
        url = f"http://127.0.0.1:{auth.dirport}/tor/status-vote/current/consensus"
        try:
            # No proxy from the environment: the authority is on loopback.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=3) as resp:
                return str(resp.read().decode(errors="replace"))
        except OSError:
            return None

    def _complete(self, consensus: str) -> str | None:
        """The document's valid-after if every relay is listed HSDir and Running."""
        flags: dict[str, set[str]] = {}
        nick = None
        for line in consensus.splitlines():
            if line.startswith("r "):
                nick = line.split()[1]
            elif line.startswith("s ") and nick is not None:
                flags[nick] = set(line.split()[1:])
        for node in self.nodes:
            if not {"HSDir", "Running"} <= flags.get(node.nick, set()):
                return None
        match = re.search(r"^valid-after (.+)$", consensus, re.M)
        return match.group(1) if match else None

    def _wait_ready(self, deadline: float) -> None:
        seen: list[str] = []
        while time.monotonic() < deadline:
            if self.cancelled.is_set():
                raise TorNetworkError("cancelled")
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise TorNetworkError(f"{node.nick} exited:\n{node.log_tail()}")
            consensus = self._consensus()
            valid_after = self._complete(consensus) if consensus else None
            if valid_after is None:
                seen.clear()
            elif valid_after not in seen:
                seen.append(valid_after)
                if len(seen) >= 2:
                    return
            time.sleep(0.5)
        raise TorNetworkError(
            f"the private Tor network was not ready within the deadline; "
            f"auth0's log:\n{self.authorities[0].log_tail()}"
        )

    # ------------------------------------------------------------------ teardown

    def cancel(self) -> None:
        """Make a ``start()`` running in another thread give up (and stop) soon."""
        self.cancelled.set()

    def pids(self) -> list[int]:
        return [n.process.pid for n in self.nodes if n.process is not None]

    def stop(self) -> None:
        """Stop every tor of the network (TERM, then KILL after 10 s)."""
        running = [n.process for n in self.nodes if n.process is not None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
