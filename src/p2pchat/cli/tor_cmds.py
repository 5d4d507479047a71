"""``p2pchat invite`` and ``p2pchat tor``: meeting people beyond the LAN through Tor.

(``p2pchat add CODE`` is ``add`` given an invite code: see chat_cmds.cmd_add.)
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import segno

from p2pchat.cli.common import command_hint
from p2pchat.cli.output import print_json, safe_text, say
from p2pchat.cli.session import call, open_session, run
from p2pchat.wire.invite import INVITE_PREFIX


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the Tor subcommands to the parser."""
    p = subs.add_parser(
        "invite",
        parents=[common],
        help="print your invite code (for someone not on your LAN; needs --tor)",
        description="Your invite code holds your peer id and your onion address. Whoever "
        "runs `p2pchat add CODE` becomes your contact and reaches you through Tor.",
    )
    p.add_argument("--qr", action="store_true", help="also draw it as a QR code")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_invite)

    p = subs.add_parser(
        "tor", parents=[common], help="Tor's state and how each contact is linked (LAN or Tor)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_tor)


async def _call(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    async with open_session(args, network=False) as session:
        return await call(session, method, params)


def qr_text(code: str) -> str:
    """``code`` as a QR code drawn with half blocks (two rows of modules per line)."""
    out = io.StringIO()
    segno.make(code.upper(), error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def cmd_invite(args: argparse.Namespace) -> int:
    """Print our invite code (and its QR code)."""
    result = run(_call(args, "invite", {}))
    if args.json:
        print_json(result)
        return 0
    say(result["code"])
    if args.qr:
        print(qr_text(result["code"]), end="")
    if not result["tor"]:
        say(
            "tor is off for this profile: nobody can reach you at this code until you run "
            f"`{command_hint(args.profile, '--tor')}` (remembered from then on)",
            err=True,
        )
    return 0


def cmd_tor(args: argparse.Namespace) -> int:
    """Print tor's state and each contact's link."""
    result = run(_call(args, "tor_status", {}))
    if args.json:
        print_json(result)
        return 0
    if not result["enabled"]:
        say(f"tor is off for this profile (turn it on: {command_hint(args.profile, '--tor')})")
        return 0
    if not result.get("running"):
        say("tor is on for this profile; it runs while p2pchat runs (the app or `serve`)")
        say(f"onion     {result['onion']}.onion")
        return 0
    state = result["state"]
    if state == "bootstrapping":
        state = f"bootstrapping {result['percent']} %"
    detail = f" ({safe_text(result['detail'])})" if result["detail"] else ""
    say(f"tor       {state}{detail}")
    say(f"onion     {result['onion']}.onion")
    for contact in result["contacts"]:
        link = {"tor": "Tor", "lan": "LAN"}.get(contact["link"] or "", "offline")
        say(f"  {contact['short_id']}  {safe_text(contact['name'] or '?')}  {link}")
    return 0


def is_invite(text: str) -> bool:
    """True if ``text`` looks like an invite code rather than HOST:PORT."""
    return text.strip().lower().startswith(INVITE_PREFIX)


def cmd_add_invite(args: argparse.Namespace) -> int:
    """``p2pchat add CODE``: make the code's owner a contact, to be reached through tor."""
    result = run(_call(args, "add_invite", {"code": args.address}))
    say(f"{safe_text(result['peer'])} is now a contact; p2pchat reaches them through Tor")
    if not result["tor"]:
        say(
            f"tor is off for this profile: turn it on with `{command_hint(args.profile, '--tor')}`",
            err=True,
        )
    return 0
