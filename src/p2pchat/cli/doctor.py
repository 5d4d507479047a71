"""``p2pchat doctor``: why can't I see anyone? Plain-language network diagnosis.

Discovery failing silently is the top complaint about LAN apps (AP isolation, VPNs,
firewalls). This prints the interfaces and addresses in use, whether multicast works on
each, the listening port and whether it accepts connections, peers seen, and a hint for
every problem found.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from p2pchat.cli.common import load_profile
from p2pchat.cli.doctor_tor import tor_findings, tor_report
from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.control.client import ControlClient
from p2pchat.control.server import socket_is_live
from p2pchat.discovery import Discovery, PeerSeen, list_interfaces
from p2pchat.discovery.diagnose import diagnose

BROWSE_SECONDS = 3.0
MARKS = {"ok": "✔", "warn": "!", "error": "✘"}


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add ``doctor`` to the parser."""
    p = subs.add_parser("doctor", parents=[common], help="diagnose network and discovery problems")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_doctor)


async def _running_node(
    args: argparse.Namespace,
) -> tuple[dict[str, Any] | None, list[Any], dict[str, Any]]:
    profile = load_profile(args)
    if not socket_is_live(profile.control_path):
        return None, [], await tor_report(None)
    try:
        async with await ControlClient.connect(profile.control_path) as client:
            info, peers = await client.call("info"), await client.call("peers")
            return info, peers, await tor_report(client)
    except OSError:
        return None, [], await tor_report(None)


async def _browse(own_id: str) -> list[PeerSeen]:
    seen: dict[str, PeerSeen] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, PeerSeen) and event.peer_id != own_id:
            seen[event.peer_id] = event

    disc = Discovery(peer_id=own_id, name="doctor", port=9, announce=False, on_event=on_event)
    try:
        await disc.start()
    except OSError:
        return []
    try:
        await asyncio.sleep(BROWSE_SECONDS)  # a fixed listening window is the point here
    finally:
        await disc.stop()
    return list(seen.values())


async def _doctor(args: argparse.Namespace) -> dict[str, Any]:
    profile = load_profile(args)
    info, peers, tor = await _running_node(args)
    port = info["port"] if info else None
    diagnosis, browsed = await asyncio.gather(
        diagnose(port=port, interfaces=list_interfaces()), _browse(profile.identity.peer_id_text)
    )
    findings = [{"level": f.level, "title": f.title, "hint": f.hint} for f in diagnosis.findings]
    if info is None:
        findings.append(
            {
                "level": "warn",
                "title": "No p2pchat is running for this profile",
                "hint": "Start the app (`p2pchat`) or `p2pchat serve`; then others can see you "
                "and you can check your port here.",
            }
        )
    if not browsed:
        findings.append(
            {
                "level": "warn",
                "title": f"No other p2pchat seen over mDNS in {BROWSE_SECONDS:g} s",
                "hint": "Is p2pchat running on another machine of this network? If it is and "
                "multicast works, the Wi-Fi may isolate clients: connect by address with "
                "`p2pchat add HOST:PORT`.",
            }
        )
    findings.extend(tor_findings(tor))
    return {
        "tor": tor,
        "interfaces": [
            {"name": i.name, "ipv4": list(i.ipv4), "ipv6": list(i.ipv6), "loopback": i.is_loopback}
            for i in diagnosis.interfaces
        ],
        "multicast": [
            {"interface": m.interface, "address": m.address, "ok": m.ok, "detail": m.detail}
            for m in diagnosis.multicast
        ],
        "port": port,
        "port_checks": [
            {"host": p.host, "port": p.port, "ok": p.ok, "detail": p.detail}
            for p in diagnosis.ports
        ],
        "peers_seen_mdns": [
            {"id": p.peer_id, "name": p.name, "addresses": [f"{h}:{pt}" for h, pt in p.addresses]}
            for p in browsed
        ],
        "peers_connected": [p for p in peers if p.get("online")],
        "findings": findings,
    }


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the diagnosis."""
    report = asyncio.run(_doctor(args))
    if args.json:
        print_json(report)
        return 0
    say("Interfaces")
    for i in report["interfaces"]:
        addrs = ", ".join(i["ipv4"] + i["ipv6"]) or "no address"
        say(f"  {i['name']:<12} {addrs}{' (loopback)' if i['loopback'] else ''}")
    say("Multicast (mDNS)")
    for m in report["multicast"]:
        mark = MARKS["ok" if m["ok"] else "error"]
        say(f"  {mark} {m['interface']} {m['address']}: {m['detail']}")
    say(f"Listening port: {report['port'] if report['port'] else 'no node running'}")
    for c in report["port_checks"]:
        say(f"  {MARKS['ok' if c['ok'] else 'error']} {c['host']}:{c['port']} {c['detail']}")
    say(f"Peers seen over mDNS: {len(report['peers_seen_mdns'])}")
    for p in report["peers_seen_mdns"]:
        name = safe_text(p["name"])
        say(f"  {name} ({p['id'][:8]}) at {', '.join(p['addresses'])}")
    if report["peers_connected"]:
        say(f"Peers connected: {len(report['peers_connected'])}")
    say(f"Tor: {report['tor']['version'] or 'not installed'}")
    say("")
    for f in report["findings"]:
        say(f"{MARKS[f['level']]} {f['title']}")
        if f["level"] != "ok":
            say(f"    {f['hint']}")
    return 0
