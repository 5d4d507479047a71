"""Tor for one profile: start (or join) a tor, bootstrap it, publish our onion service.

The node reaches contacts beyond the LAN through Tor onion services, as Briar, Cwtch and
OnionShare do: no server of ours, no port forwarding, and no IP address shown to the
other side. This module is the only one that talks to tor. It drives tor's control
port with ``stem`` (a well-kept controller library: authentication, reply parsing and
events are its job, not ours); stem's calls block, so each runs in a worker thread and
every wait is bounded here (a stuck tor never freezes the node).

The onion service key is derived from the identity key (``onion_seed``), never stored:
it is exactly as safe as the identity key (sealed when a passphrase is set), and the
service is added with ``ADD_ONION`` for the life of our control connection only, so tor
writes no key to its data folder either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.signing

from p2pchat.identity import Identity
from p2pchat.wire.onion import onion_address

log = logging.getLogger(__name__)

#: The port our onion service offers (the "virtual port"); it leads to the node's
#: loopback listener for tor. Sent in the onion frame, so it could change one day.
ONION_PORT: Final = 7373
_SEED_CONTEXT: Final = b"p2pchat/onion-service-key/v1"
# How long tor may take to write its control port file after it starts.
_CONTROL_FILE_TIMEOUT: Final = 30.0
# One control-port request (they answer in milliseconds; a hung tor must not hang us).
_REQUEST_TIMEOUT: Final = 15.0
_POLL: Final = 0.25
_WATCH_INTERVAL: Final = 5.0
_PROGRESS = re.compile(r"PROGRESS=(\d+)")
_SUMMARY = re.compile(r'SUMMARY="([^"]*)"')


class TorError(Exception):
    """Tor could not be started, reached, bootstrapped or asked to publish; says why."""


@dataclass(frozen=True, slots=True)
class TorProgress:
    """Where tor is: ``state`` is starting, bootstrapping, publishing, ready or failed."""

    state: str
    percent: int = 0
    detail: str = ""


# ------------------------------------------------------------------ keys (pure)


def onion_seed(identity: Identity) -> bytes:
    """The onion service's Ed25519 seed, derived from (and as secret as) the identity key.

    A keyed BLAKE2b with a context string: knowing the onion key reveals nothing about
    the identity key, and the same profile always has the same onion address.
    """
    return hashlib.blake2b(_SEED_CONTEXT, key=identity.signing_seed, digest_size=32).digest()


def onion_key_blob(seed: bytes) -> str:
    """``ADD_ONION``'s ED25519-V3 key: base64 of tor's 64-byte expanded secret key."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return base64.b64encode(bytes(h)).decode("ascii")


def onion_address_of(seed: bytes) -> str:
    """The 56-character onion address of the service key with ``seed``."""
    public = nacl.signing.SigningKey(seed).verify_key.encode()
    return onion_address(bytes(public))


# ------------------------------------------------------------------ the tor we run

#: Where packages install tor when it is not on PATH (Debian puts it in /usr/sbin, which
#: is not on a normal user's PATH).
TOR_PLACES: Final = (
    "/usr/sbin/tor",
    "/usr/local/sbin/tor",
    "/usr/local/bin/tor",
    "/opt/homebrew/bin/tor",
)


def find_tor() -> str | None:
    """The tor program: on PATH, or where packages put it; None when not installed."""
    found = shutil.which("tor")
    if found is not None:
        return found
    return next((p for p in TOR_PLACES if os.access(p, os.X_OK)), None)


def _torrc(folder: Path, extra: tuple[str, ...]) -> str:
    lines = [
        f"DataDirectory {folder / 'data'}",
        "SocksPort 127.0.0.1:auto",
        "ControlPort 127.0.0.1:auto",
        f"ControlPortWriteToFile {folder / 'control-port'}",
        "CookieAuthentication 1",
        f"CookieAuthFile {folder / 'control-cookie'}",
        f"__OwningControllerProcess {os.getpid()}",
        f"Log notice file {folder / 'notice.log'}",
        "ShutdownWaitLength 0",
        "RunAsDaemon 0",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def _log_tail(folder: Path, lines: int = 5) -> str:
    try:
        text = (folder / "notice.log").read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.splitlines()[-lines:])


class TorRunner:
    """One tor for one profile: ``await start(port)``, then ``socks`` and ``onion``; ``stop()``.

    ``control`` ("HOST:PORT") joins a running tor instead of starting one; otherwise the
    system's ``tor`` runs with its data folder in ``folder`` (inside the profile) and
    exits with us: it is owned by our control connection and by our process id.
    """

    def __init__(
        self,
        folder: Path,
        identity: Identity,
        *,
        on_progress: Callable[[TorProgress], None],
        control: str | None = None,
        torrc: tuple[str, ...] = (),
        binary: str | None = None,
        bootstrap_timeout: float = 180.0,
        publish_timeout: float = 120.0,
    ) -> None:
        self.folder = folder
        self._seed = onion_seed(identity)
        self.onion = onion_address_of(self._seed)
        self._on_progress = on_progress
        self._control_address = control
        self._torrc = torrc
        self._binary = binary
        self._bootstrap_timeout = bootstrap_timeout
        self._publish_timeout = publish_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._controller: Any = None  # stem.control.Controller (untyped library)
        self.socks: tuple[str, int] | None = None
        self.progress = TorProgress("starting")

    def _report(self, progress: TorProgress) -> None:
        if progress != self.progress:
            self.progress = progress
            self._on_progress(progress)

    async def start(self, service_port: int) -> None:
        """Start tor, bootstrap, publish the service leading to ``service_port``.

        Raises TorError (after reporting "failed") when any step fails or runs out of
        time; what was started is stopped again then.
        """
        try:
            host, port = await self._control_port()
            self._controller = await _bounded(_connect, host, port, self._process is not None)
            await self._bootstrap()
            listeners = await _bounded(self._controller.get_listeners, _socks_kind())
            if not listeners:
                raise TorError("tor has no SOCKS port")
            self.socks = (str(listeners[0][0]), int(listeners[0][1]))
            await self._publish(service_port)
        except TorError as exc:
            self._report(TorProgress("failed", self.progress.percent, str(exc)))
            await self.stop()
            raise
        except Exception as exc:  # stem raises its own hierarchy, and OSError
            self._report(TorProgress("failed", self.progress.percent, str(exc)))
            await self.stop()
            raise TorError(f"tor: {exc}") from exc
        self._report(TorProgress("ready", 100, f"{self.onion}.onion"))

    async def _control_port(self) -> tuple[str, int]:
        if self._control_address is not None:
            host, _, port = self._control_address.rpartition(":")
            return host or "127.0.0.1", int(port)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        port_file = self.folder / "control-port"
        with contextlib.suppress(FileNotFoundError):
            port_file.unlink()
        torrc = self.folder / "torrc"
        torrc.write_text(_torrc(self.folder, self._torrc))
        binary = self._binary or find_tor()
        if binary is None:
            raise TorError("the tor program is not installed (Debian/Ubuntu: apt install tor)")
        try:
            self._process = await asyncio.create_subprocess_exec(
                binary,
                "-f",
                str(torrc),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise TorError(f"cannot run {binary!r}: {exc.strerror or exc}") from None
        wait = min(_CONTROL_FILE_TIMEOUT, self._bootstrap_timeout)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise TorError(f"tor exited at start: {_log_tail(self.folder)}")
            with contextlib.suppress(OSError):
                text = port_file.read_text()  # "PORT=127.0.0.1:9151\n" once written
                match = re.search(r"PORT=([\d.]+):(\d+)", text)
                if match:
                    return match.group(1), int(match.group(2))
            await asyncio.sleep(0.1)
        raise TorError(f"tor did not open its control port in {wait:g} s")

    async def _bootstrap(self) -> None:
        deadline = time.monotonic() + self._bootstrap_timeout
        while True:
            phase = str(await _bounded(self._controller.get_info, "status/bootstrap-phase"))
            found = _PROGRESS.search(phase)
            percent = int(found.group(1)) if found else 0
            summary = _SUMMARY.search(phase)
            self._report(TorProgress("bootstrapping", percent, summary.group(1) if summary else ""))
            if percent >= 100:
                return
            if time.monotonic() > deadline:
                raise TorError(
                    f"tor did not finish bootstrapping in {self._bootstrap_timeout:g} s "
                    f"(stuck at {percent} %)"
                )
            await asyncio.sleep(_POLL)

    async def _publish(self, service_port: int) -> None:
        """Add the onion service and wait until tor uploaded its descriptor once."""
        from stem.control import EventType

        self._report(TorProgress("publishing", 100))
        loop = asyncio.get_running_loop()
        uploaded = asyncio.Event()

        def on_desc(event: Any) -> None:  # stem's event thread
            if event.action == "UPLOADED" and event.address == self.onion:
                loop.call_soon_threadsafe(uploaded.set)

        await _bounded(self._controller.add_event_listener, on_desc, EventType.HS_DESC)
        ports = {ONION_PORT: f"127.0.0.1:{service_port}"}
        blob = onion_key_blob(self._seed)

        def add() -> Any:
            return self._controller.create_ephemeral_hidden_service(
                ports, key_type="ED25519-V3", key_content=blob, await_publication=False
            )

        try:
            await _bounded(add)
        except Exception as exc:
            if "collision" not in str(exc).lower():
                raise
            # Left behind by an earlier run on the same (shared) tor: replace it.
            await _bounded(self._controller.remove_ephemeral_hidden_service, self.onion)
            await _bounded(add)
        try:
            async with asyncio.timeout(self._publish_timeout):
                await uploaded.wait()
        except TimeoutError:
            raise TorError(
                f"tor did not publish the onion service in {self._publish_timeout:g} s"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await _bounded(self._controller.remove_event_listener, on_desc)

    async def wait_stopped(self) -> str:
        """Return (with the reason) once tor has exited or stopped answering.

        The tor we started is watched through its process; a tor we joined through its
        control port, through that connection (checked every few seconds).
        """
        while True:
            process = self._process
            if process is not None:
                code = await process.wait()
                return f"exit code {code}: {_log_tail(self.folder, 2)}"
            controller = self._controller
            if controller is None or not controller.is_alive():
                return "the control connection closed"
            await asyncio.sleep(_WATCH_INTERVAL)

    async def stop(self) -> None:
        """Close the control connection and end the tor we started (TERM, then KILL)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            with contextlib.suppress(Exception):
                await _bounded(controller.close)
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.socks = None


def _socks_kind() -> Any:
    from stem.control import Listener

    return Listener.SOCKS


def _connect(host: str, port: int, own: bool) -> Any:
    """Open and authenticate a control connection (cookie or none, as tor offers)."""
    from stem.control import Controller

    # stem sets its own logger to TRACE when imported and logs every command sent to
    # tor there, ADD_ONION with the service's private key included; and at INFO every
    # control connection we close on purpose. Only its warnings may reach our logs.
    logging.getLogger("stem").setLevel(logging.WARNING)
    controller = Controller.from_port(address=host, port=port)
    try:
        controller.authenticate()
        if own:  # tor exits when this connection closes: no orphan after a crash
            controller.msg("TAKEOWNERSHIP")
    except BaseException:
        controller.close()
        raise
    return controller


async def _bounded(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking stem call in a thread, giving up after ``_REQUEST_TIMEOUT``."""
    try:
        async with asyncio.timeout(_REQUEST_TIMEOUT):
            return await asyncio.to_thread(fn, *args)
    except TimeoutError:
        raise TorError(f"tor did not answer within {_REQUEST_TIMEOUT:g} s") from None
