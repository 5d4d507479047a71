"""The private Tor network, built once per test session for every Tor test.

Building it takes 20-35 s here, nearly all of it waiting for the authorities' votes
(the tors use under a second of CPU each). So when collection shows that Tor tests
will run, it is built in a background thread while the tests before them run (from the
first test past ``tests/adversary``, whose flood tests hold latency bounds), and the
``tor_network`` fixture only waits for what is left. Tor tests are skipped
(with the reason printed) only where the ``tor`` binary is not installed; CI installs
it (.ci/run).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest

from tests.tor_network import READY_TIMEOUT, TorNetwork, tor_binaries

_HERE = Path(__file__).parent


class _Builder:
    """The network being built in a thread; ``result()`` waits for it (bounded)."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="p2pchat-tor-network-")
        self.network = TorNetwork(Path(self._tmp.name))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, name="tor-network", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        try:
            self.network.start()
        except BaseException as exc:  # handed to the fixture, which fails with it
            self.error = exc

    def result(self) -> TorNetwork:
        self._thread.join(READY_TIMEOUT + 30)
        if self._thread.is_alive():
            raise TimeoutError("the private Tor network was not built in time")
        if self.error is not None:
            raise self.error
        return self.network

    def stop(self) -> None:
        self.network.cancel()  # a build still waiting for votes gives up at once
        self._thread.join(READY_TIMEOUT + 30)
        self.network.stop()
        self._tmp.cleanup()


#: The session's one builder, once started.
_BUILDERS: list[_Builder] = []
#: Whether the collected tests include Tor tests that need the network.
_WANTED: list[bool] = []
#: Tests with latency bounds (floods measured against p99 limits): the network's start
#: (six tors generating keys and voting) is not built while these run.
_QUIET_FOR = ("adversary",)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note whether any Tor test that needs the network was collected."""
    _WANTED[:] = [
        any(
            "tor_network" in getattr(item, "fixturenames", ()) and _HERE in Path(item.path).parents
            for item in session.items
        )
    ]


def start_build_for(item: pytest.Item) -> None:
    """Start building the network with the first test past the latency-bound ones.

    Called from the root conftest's ``pytest_runtest_setup``: a runtest hook in this
    folder's conftest would only see the Tor tests themselves.
    """
    if not (_WANTED and _WANTED[0]) or _BUILDERS or tor_binaries() is None:
        return
    if not any(part in _QUIET_FOR for part in Path(item.path).parts):
        _BUILDERS.append(_Builder())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """End every tor of the network, whether or not a test used it."""
    while _BUILDERS:
        _BUILDERS.pop().stop()


@pytest.fixture(scope="session")
def tor_network() -> TorNetwork:
    """A running private Tor network on 127.0.0.1 (ready: every relay is an HSDir)."""
    if tor_binaries() is None:
        pytest.skip("tor and tor-gencert are not installed (apt-get install tor)")
    if not _BUILDERS:  # collected some other way: build it now
        _BUILDERS.append(_Builder())
    return _BUILDERS[0].result()
