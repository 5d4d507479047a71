"""``p2pchat doctor``'s Tor findings, from what the running node reports."""

from __future__ import annotations

from typing import Any

from p2pchat.cli.doctor_tor import tor_findings


def status(state: str, enabled: bool = True, **extra: Any) -> dict[str, Any]:
    return {"enabled": enabled, "state": state, "percent": 45, "detail": "", **extra}


def test_tor_on_but_not_installed_is_an_error_with_the_fix() -> None:
    findings = tor_findings({"version": None, "status": status("failed")})
    assert [f["level"] for f in findings] == ["error"]
    assert "apt install tor" in findings[0]["hint"]


def test_nothing_to_say_when_tor_is_off() -> None:
    assert tor_findings({"version": "Tor version 0.4.9", "status": status("off", False)}) == []
    assert tor_findings({"version": None, "status": None}) == []


def test_round_trip_is_reported_with_its_time_or_its_failure() -> None:
    ok = tor_findings(
        {"version": "Tor 0.4.9", "status": status("ready"), "round_trip": {"seconds": 1.2}}
    )
    assert ok[0]["level"] == "ok"
    assert "1.2 s" in ok[0]["title"]
    bad = tor_findings(
        {"version": "Tor 0.4.9", "status": status("ready"), "round_trip": {"error": "timed out"}}
    )
    assert bad[0]["level"] == "error"
    assert "timed out" in bad[0]["hint"]


def test_bootstrapping_and_failed_states() -> None:
    starting = tor_findings({"version": "Tor", "status": status("bootstrapping")})
    assert starting[0]["level"] == "warn"
    assert "45 %" in starting[0]["title"]
    failed = tor_findings({"version": "Tor", "status": status("failed", detail="no network")})
    assert failed[0]["level"] == "error"
    assert "no network" in failed[0]["hint"]
