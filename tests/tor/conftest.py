"""The private Tor network, built once per test session for every Tor test.

Tor tests are skipped (with the reason printed) only where the ``tor`` binary is not
installed; CI installs it (.ci/run). Building the network takes about 20-35 s here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tor_network import TorNetwork, tor_binaries


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNetwork]:
    """A running private Tor network on 127.0.0.1 (ready: every relay is an HSDir)."""
    if tor_binaries() is None:
        pytest.skip("tor and tor-gencert are not installed (apt-get install tor)")
    network = TorNetwork(tmp_path_factory.mktemp("tor-network"))
    network.start()
    try:
        yield network
    finally:
        network.stop()
