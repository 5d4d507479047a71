"""Validation of DNS-SD records into PeerSeen, without any network."""

from __future__ import annotations

import pytest
from zeroconf import ServiceInfo

from p2pchat.discovery import SERVICE_TYPE, PeerSeen, instance_name, sanitize_name
from p2pchat.discovery.mdns import parse_service_info
from tests.discovery.helpers import random_peer_id


def make_info(
    peer_id: str | None = None,
    *,
    label: str | None = None,
    port: int = 5000,
    props: dict[bytes, bytes] | None = None,
    addresses: list[str] | None = None,
) -> ServiceInfo:
    pid = peer_id or random_peer_id()
    properties = {b"id": pid.encode(), b"name": "Zoë".encode(), b"v": b"1"}
    properties.update(props or {})
    return ServiceInfo(
        SERVICE_TYPE,
        f"{label}.{SERVICE_TYPE}" if label else instance_name(pid),
        port=port,
        properties={k: v for k, v in properties.items() if v != b"<drop>"},
        server="h.local.",
        parsed_addresses=addresses if addresses is not None else ["192.168.1.5", "fd00::5"],
    )


def test_good_record() -> None:
    pid = random_peer_id()
    event = parse_service_info(make_info(pid))
    assert event == PeerSeen(pid, "Zoë", (("192.168.1.5", 5000), ("fd00::5", 5000)), 1)


def test_ipv4_first_and_link_local_ipv6_skipped() -> None:
    info = make_info(addresses=["fe80::1", "fd00::7", "10.0.0.7"])
    event = parse_service_info(info)
    assert event is not None
    assert [h for h, _ in event.addresses] == ["10.0.0.7", "fd00::7"]


@pytest.mark.parametrize(
    "props",
    [
        {b"id": b"<drop>"},
        {b"id": b"A" * 52},
        {b"id": b"a" * 51},
        {b"id": b"\xff" * 52},
        {b"name": b"<drop>"},
        {b"name": b"\xc3"},
        {b"name": b""},
        {b"name": b"a\x1b[31mred"},
        {b"name": b"n" * 64},
        {b"v": b"<drop>"},
        {b"v": b"0"},
        {b"v": b"-1"},
        {b"v": b"99999999"},
        {b"v": "\u0661".encode()},  # an Arabic-Indic digit: isdigit() but not ASCII
    ],
)
def test_bad_txt_is_ignored(props: dict[bytes, bytes]) -> None:
    assert parse_service_info(make_info(props=props)) is None


def test_id_must_match_instance_name() -> None:
    assert parse_service_info(make_info(label="someoneelse")) is None


@pytest.mark.parametrize("port", [0])
def test_absurd_port_is_ignored(port: int) -> None:
    assert parse_service_info(make_info(port=port)) is None


def test_too_many_or_no_addresses_is_ignored() -> None:
    many = [f"10.0.0.{i}" for i in range(1, 18)]
    assert parse_service_info(make_info(addresses=many)) is None
    assert parse_service_info(make_info(addresses=[])) is None
    assert parse_service_info(make_info(addresses=["fe80::1"])) is None


def test_empty_txt_is_ignored() -> None:
    pid = random_peer_id()
    info = ServiceInfo(
        SERVICE_TYPE, instance_name(pid), port=1, properties=b"", parsed_addresses=["10.0.0.1"]
    )
    assert parse_service_info(info) is None


def test_sanitize_name_cuts_at_a_character_boundary() -> None:
    name = sanitize_name("é" * 40)  # 80 bytes of UTF-8
    assert name == "é" * 31
    assert len(name.encode()) == 62
    assert sanitize_name("a\x00b\x1bc\n") == "abc"
    assert sanitize_name("🎉" * 20) == "🎉" * 15
