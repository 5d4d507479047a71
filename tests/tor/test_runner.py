"""A profile's own tor on the private network: bootstrap, publish, reach itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pchat.identity import Identity
from p2pchat.node.tor import TorProgress, TorRunner
from p2pchat.wire.onion import check_onion_address
from tests.tor_network import TorNetwork


async def test_own_tor_bootstraps_and_publishes_the_derived_onion(
    tor_network: TorNetwork, tmp_path: Path
) -> None:
    seen: list[TorProgress] = []
    runner = TorRunner(
        tmp_path / "tor",
        Identity.generate(),
        on_progress=seen.append,
        torrc=tuple(tor_network.client_torrc()),
        bootstrap_timeout=60,
        publish_timeout=60,
    )
    accepted = asyncio.Event()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await runner.start(port)
        assert check_onion_address(runner.onion) == runner.onion
        assert runner.socks is not None
        assert seen[-1].state == "ready"
        assert any(p.state == "bootstrapping" for p in seen)
        # Our own service through our own SOCKS port: the round trip `doctor` makes.
        from p2pchat.node.tor import ONION_PORT
        from p2pchat.transport.socks import socks5_connect

        async with asyncio.timeout(60):
            reader, writer = await asyncio.open_connection(*runner.socks)
            await socks5_connect(reader, writer, f"{runner.onion}.onion", ONION_PORT)
            await accepted.wait()
        writer.close()
    finally:
        await runner.stop()
        server.close()
    assert runner.socks is None
