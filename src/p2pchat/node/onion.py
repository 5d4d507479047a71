"""Contacts beyond the LAN: our onion service, theirs, and invite codes.

Turned on per profile (``p2pchat --tor``, remembered in the store's settings). When on,
the node runs tor (``node/tor.py``) in the background, never holding up its start:
tor's progress is an event (``TorStatus``), and a tor that fails is retried with
backoff. Once our onion service is published:

- every contact we are linked to gets our address in a signed ``onion`` frame (signed
  by the identity key over ``wire.onion.onion_signing_bytes``, so no link in between can
  swap it); a stranger's frame is checked and held in memory until the person accepts
  them (bounded), never stored;
- every contact's stored onion address is a dial target, reached through tor's SOCKS
  port whenever the contact is not linked: the same Noise XX handshake runs inside, so
  messages, receipts, groups and files work as on the LAN;
- ``invite_code()`` gives a one-line code (peer id + onion address + check) and
  ``add_invite(code)`` makes its owner a contact and dials them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from p2pchat.identity import short_id, verify_signature
from p2pchat.node.errors import NodeError
from p2pchat.node.events import TorStatus
from p2pchat.node.tor import (
    ONION_PORT,
    TorError,
    TorProgress,
    TorRunner,
    onion_address_of,
    onion_seed,
)
from p2pchat.store import Store, now_ms
from p2pchat.store.onions import OnionRow, contact_onions, put_onion
from p2pchat.transport import LocalHello, TransportError, connect
from p2pchat.wire import OnionAddress
from p2pchat.wire.invite import decode_invite, encode_invite
from p2pchat.wire.onion import onion_signing_bytes

if TYPE_CHECKING:
    from p2pchat.node.facade import NodeFacade

log = logging.getLogger(__name__)

#: The profile setting that remembers ``--tor``.
SETTING_TOR: Final = "tor"
#: Signed onion frames kept from peers not (yet) accepted, newest last.
MAX_HELD_ONIONS: Final = 64
#: A contact's address is stored at most once in this many seconds.
MIN_CHANGE_INTERVAL: Final = 10.0
# Restarting a tor that failed: first pause, and the longest.
RETRY_FIRST: Final = 1.0
RETRY_MAX: Final = 300.0


class OnionService:
    """Tor for one node; see the module docstring."""

    def __init__(self, node: NodeFacade) -> None:
        self.node = node
        self.enabled = False
        self.runner: TorRunner | None = None
        self.status = TorStatus("off")
        self._frame: OnionAddress | None = None
        self._held: OrderedDict[bytes, OnionAddress] = OrderedDict()
        # Per contact, the ts of the last address kept and when: at most one store
        # write per MIN_CHANGE_INTERVAL, whatever a contact sends.
        self._kept: dict[bytes, tuple[int, float]] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Decide whether tor runs (flag, else the remembered setting) and start it."""
        node = self.node
        wanted = node.config.tor
        if wanted is None:
            wanted = await self.remembered()
        else:
            value = "1" if wanted else "0"
            await node.db_run(lambda s: s.set_setting(SETTING_TOR, value))
        if wanted:
            await self._begin()

    async def remembered(self) -> bool:
        """Whether this profile runs with tor (its setting; a store-only node runs none)."""
        return await self.node.db_run(lambda s: s.get_setting(SETTING_TOR, "0")) == "1"

    async def set_enabled(self, on: bool) -> None:
        """Turn tor on or off now (the settings switch); remembered for the next start."""
        await self.node.db_run(lambda s: s.set_setting(SETTING_TOR, "1" if on else "0"))
        if on and not self.enabled:
            await self._begin()
        elif not on and self.enabled:
            await self.stop()
            self.node.links.forget_onions()
            self._frame = None
            self._set_status(TorStatus("off"))

    async def _begin(self) -> None:
        node = self.node
        self.enabled = True
        for row in await node.db_run(contact_onions):
            node.links.add_target(f"{row.addr}.onion", row.port, "onion", row.peer_id)
        port = await node.links.listen_for_tor()
        self.runner = TorRunner(
            node.profile.directory / "tor",
            node.identity,
            on_progress=self._on_progress,
            control=node.config.tor_control,
            torrc=node.config.tor_torrc,
            binary=node.config.tor_binary,
            bootstrap_timeout=node.config.tor_bootstrap_timeout,
            publish_timeout=node.config.tor_publish_timeout,
        )
        self._set_status(TorStatus("starting", onion=self.runner.onion))
        self._task = asyncio.ensure_future(self._run(port))

    async def stop(self) -> None:
        """Stop tor (if ours) and the task that runs it."""
        self.enabled = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None
        self.node.links.proxy = None

    async def _run(self, port: int) -> None:
        """Keep tor running: start it, and after a failure or a crash start it again
        (backoff: RETRY_FIRST doubling to RETRY_MAX; a tor that stayed up a while
        starts over from RETRY_FIRST)."""
        runner = self.runner
        assert runner is not None
        failures = 0
        while True:
            try:
                await runner.start(port)
            except TorError as exc:
                failures += 1
                delay = min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures - 1, 10))
                delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
                log.warning("tor failed (%s); trying again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._ready()
            up_since = time.monotonic()
            reason = await runner.wait_stopped()
            self.node.links.proxy = None
            await runner.stop()
            log.warning("tor stopped (%s); starting it again", reason)
            self._set_status(TorStatus("failed", 0, f"tor stopped: {reason}", runner.onion))
            if time.monotonic() - up_since > RETRY_MAX:
                failures = 0
            failures += 1
            await asyncio.sleep(min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures - 1, 10)))

    def _ready(self) -> None:
        """Our service is published: use tor's SOCKS port, tell contacts, dial theirs."""
        assert self.runner is not None
        self.node.links.proxy = self.runner.socks
        self._frame = self._sign()
        for peer in list(self.node.links.links):
            if self.node.is_contact(peer):
                self.node.links.write(peer, self._frame)
        self.node.links.redial_onions()

    def _sign(self) -> OnionAddress:
        assert self.runner is not None
        addr, ts = self.runner.onion, now_ms()
        sig = self.node.identity.sign(onion_signing_bytes(self.node.me, addr, ONION_PORT, ts))
        return OnionAddress(addr=addr, port=ONION_PORT, ts=ts, sig=sig)

    def _on_progress(self, progress: TorProgress) -> None:
        onion = self.runner.onion if self.runner is not None else ""
        self._set_status(TorStatus(progress.state, progress.percent, progress.detail, onion))

    def _set_status(self, status: TorStatus) -> None:
        self.status = status
        self.node.hub.emit(status)

    # ------------------------------------------------------------------ links and frames

    async def on_link_up(self, peer: bytes) -> None:
        """Tell a contact where to find us through tor (once we are published)."""
        if self._frame is not None and self.node.is_contact(peer):
            self.node.links.write(peer, self._frame)

    async def on_frame(self, peer: bytes, frame: OnionAddress) -> None:
        """A peer's onion address: checked, then stored (contact) or held (stranger)."""
        signed = onion_signing_bytes(peer, frame.addr, frame.port, frame.ts)
        if not verify_signature(peer, signed, frame.sig):
            log.warning("onion address from %s: bad signature; ignored", short_id(peer))
            return
        if not self.node.is_contact(peer):
            # Kept in memory only, bounded: a stranger cannot make us store anything.
            if peer in self._held and self._held[peer].ts >= frame.ts:
                return
            self._held.pop(peer, None)
            self._held[peer] = frame
            while len(self._held) > MAX_HELD_ONIONS:
                self._held.popitem(last=False)
            return
        kept = self._kept.get(peer)
        if kept is not None and (
            frame.ts <= kept[0] or time.monotonic() - kept[1] < MIN_CHANGE_INTERVAL
        ):
            return  # a replay, or a contact changing its address in a loop: no write
        await self._keep(peer, frame)

    async def on_contact(self, peer: bytes) -> None:
        """``peer`` was accepted: keep the address they sent meanwhile, send ours."""
        held = self._held.pop(peer, None)
        if held is not None:
            await self._keep(peer, held)
        await self.on_link_up(peer)

    async def _keep(self, peer: bytes, frame: OnionAddress) -> None:
        self._kept[peer] = (frame.ts, time.monotonic())
        row = OnionRow(peer, frame.addr, frame.port, frame.ts, frame.sig)
        if await self.node.db_run(lambda s: put_onion(s, row)) and self.enabled:
            self.node.links.add_target(f"{frame.addr}.onion", frame.port, "onion", peer)

    # ------------------------------------------------------------------ invites

    @property
    def onion(self) -> str:
        """Our onion address (derived from the identity key, so known before tor runs)."""
        return onion_address_of(onion_seed(self.node.identity))

    def invite_code(self) -> str:
        """Our invite code: it works once this profile runs with tor (``--tor``)."""
        return encode_invite(self.node.me, self.onion)

    async def add_invite(self, code: str) -> bytes:
        """Make the owner of ``code`` a contact and dial them through tor; return their id.

        Raises NodeError for a bad code, our own code, or a blocked peer.
        """
        try:
            invite = decode_invite(code)
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        peer = invite.peer_id
        if peer == self.node.me:
            raise NodeError("that is your own invite code")
        row = OnionRow(peer, invite.onion, ONION_PORT, 0, None)

        def work(store: Store) -> bool:
            peer_row = store.upsert_peer(peer)
            if peer_row.state == "blocked":
                return False
            put_onion(store, row)
            return True

        if not await self.node.db_run(work):
            raise NodeError("that person is blocked; unblock them first")
        await self.node.accept(peer)
        self.node.links.add_target(f"{invite.onion}.onion", ONION_PORT, "onion", peer)
        return peer

    async def round_trip(self) -> float:
        """Dial our own onion service through tor; return the seconds the handshake took.

        What ``p2pchat doctor`` checks: tor's SOCKS port, the published descriptor,
        circuits, and our own listener, all at once. Raises NodeError saying what failed.
        """
        links = self.node.links
        if links.proxy is None:
            raise NodeError(f"tor is not ready ({self.status.state})")
        host = f"{self.onion}.onion"
        local = LocalHello(identity=self.node.identity, name="")
        started = time.monotonic()
        try:
            conn = await connect(
                host, ONION_PORT, local, expected_peer=self.node.me, **links.dial_options(host)
            )
        except TransportError as exc:
            raise NodeError(f"cannot reach our own onion service: {exc}") from None
        took = time.monotonic() - started
        await conn.close("round trip done")
        return took

    def via(self, peer: bytes) -> str | None:
        """ "tor" or "lan" for a linked peer, None when not linked."""
        return self.node.links.via(peer)
