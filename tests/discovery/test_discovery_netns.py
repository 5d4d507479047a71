"""Real mDNS between two network namespaces joined by a veth pair (root only)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.discovery.helpers import random_peer_id
from tests.netns import LineReader, NetnsNetwork, namespaces_exist, netns_network

PEER_SCRIPT = Path(__file__).with_name("ns_peer.py")

pytestmark = pytest.mark.netns


def _wait_seen(reader: LineReader, peer_id: str, deadline: float) -> dict[str, object]:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"peer {peer_id} not seen in time")
        event = json.loads(reader.next_line(remaining))
        if event["event"] == "seen" and event["peer_id"] == peer_id:
            return event  # type: ignore[no-any-return]


def test_peers_in_two_namespaces_see_each_other(netns_pair: NetnsNetwork) -> None:
    a, b = netns_pair[0], netns_pair[1]
    ids = random_peer_id(), random_peer_id()
    procs = [
        ns.popen_python(None, pid, name, port, ns.interface, script=PEER_SCRIPT)
        for ns, pid, name, port in ((a, ids[0], "ann", "7001"), (b, ids[1], "ben", "7002"))
    ]
    readers = [LineReader(p) for p in procs]
    deadline = time.monotonic() + 20
    try:
        seen_by_a = _wait_seen(readers[0], ids[1], deadline)
        seen_by_b = _wait_seen(readers[1], ids[0], deadline)
    except TimeoutError:
        for p in procs:
            p.kill()
        errors = [p.communicate(timeout=5)[1][-2000:] for p in procs]
        pytest.fail(f"no mutual discovery; stderr: {errors}")
    assert seen_by_a["name"] == "ben"
    assert seen_by_a["addresses"] == [[b.address, 7002]]
    assert seen_by_b["name"] == "ann"
    assert seen_by_b["addresses"] == [[a.address, 7001]]
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()  # the peer stops cleanly on EOF
    for p in procs:
        assert p.wait(timeout=10) == 0, p.stderr.read() if p.stderr else ""


def _use_then_fail(names: list[str]) -> None:
    with netns_network(3) as net:
        names.extend(m.name for m in net.members)
        assert len(namespaces_exist(names)) == 3
        result = net[0].run_python("import socket; print(socket.if_nameindex())")
        assert "veth0" in result.stdout
        net[1].popen_python("import time; time.sleep(60)")
        raise RuntimeError("boom")


def test_harness_tears_down_even_on_failure() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        _use_then_fail(names)
    assert len(names) == 3
    assert namespaces_exist(names) == []


def test_harness_skips_with_reason_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.netns as harness

    monkeypatch.setattr(harness, "_cached_reason", [])
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root for ip netns"):
        harness.require_netns()
