"""``p2pchat doctor``'s Tor checks: the binary, bootstrap, the published service, and a
round trip to our own onion service through tor (all bounded by the node's deadlines)."""

from __future__ import annotations

import subprocess
from typing import Any

from p2pchat.control.client import ControlClient
from p2pchat.node.tor import find_tor

# `tor --version` answers at once; a tor that hangs here must not hang the doctor.
VERSION_TIMEOUT = 10.0


def tor_version() -> str | None:
    """The installed tor's version line, or None when there is no tor on PATH."""
    binary = find_tor()
    if binary is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [binary, "--version"], capture_output=True, timeout=VERSION_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} (does not answer: {exc})"
    first = out.stdout.decode(errors="replace").strip().splitlines()
    return first[0] if first else binary


async def tor_report(client: ControlClient | None) -> dict[str, Any]:
    """What the doctor knows of Tor: version, the running node's status, a round trip."""
    report: dict[str, Any] = {"version": tor_version(), "status": None, "round_trip": None}
    if client is None:
        return report
    status = await client.call("tor_status")
    report["status"] = status
    if status.get("state") == "ready":
        try:
            report["round_trip"] = await client.call("tor_round_trip")
        except Exception as exc:  # the API's error says what failed
            report["round_trip"] = {"error": str(exc)}
    return report


def tor_findings(report: dict[str, Any]) -> list[dict[str, str]]:
    """The doctor's findings about Tor, each with a hint."""
    findings: list[dict[str, str]] = []
    status = report.get("status")
    enabled = bool(status and status.get("enabled"))
    if report["version"] is None:
        if enabled:
            findings.append(
                {
                    "level": "error",
                    "title": "Tor is on for this profile but the tor program is not installed",
                    "hint": "Install it (Debian/Ubuntu: `sudo apt install tor`), then restart.",
                }
            )
        return findings
    if status is None or not enabled:
        return findings
    state = status.get("state")
    if state == "ready":
        trip = report.get("round_trip") or {}
        if "seconds" in trip:
            findings.append(
                {
                    "level": "ok",
                    "title": f"Tor works: reached our own onion service in {trip['seconds']} s",
                    "hint": "",
                }
            )
        else:
            findings.append(
                {
                    "level": "error",
                    "title": "Our onion service is published but could not be reached",
                    "hint": f"{trip.get('error', 'no answer')}. Try again in a minute: a "
                    "fresh service takes a moment to be found.",
                }
            )
    elif state == "failed":
        findings.append(
            {
                "level": "error",
                "title": "Tor failed",
                "hint": f"{status.get('detail') or 'no detail'}; p2pchat tries again by itself.",
            }
        )
    else:
        findings.append(
            {
                "level": "warn",
                "title": f"Tor is {state} ({status.get('percent', 0)} %)",
                "hint": "Contacts beyond the LAN become reachable once it is ready.",
            }
        )
    return findings
