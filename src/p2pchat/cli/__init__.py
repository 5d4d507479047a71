"""The ``p2pchat`` command line: argument parsing and dispatch to subcommands.

Every subcommand accepts ``--profile`` (before or after its name). Errors a person can
fix are printed as one plain sentence on stderr with a non-zero exit, never a traceback.

``p2pchat`` alone (the app) is parsed without importing any subcommand: their modules
load the node, and the app's first frame must not wait for that (issue 12).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from p2pchat import __version__
from p2pchat.cli.common import CliError, add_common, add_node_options

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render ``--help``)."""
    from p2pchat.cli import (
        backup_cmds,
        change_cmds,
        chat_cmds,
        doctor,
        file_cmds,
        identity_cmds,
        manage_cmds,
        passphrase_cmds,
        repair_cmds,
        room_cmds,
        serve,
        sticker_cmds,
        tor_cmds,
    )

    common = argparse.ArgumentParser(add_help=False)
    add_common(common, suppress_defaults=True)
    parser = argparse.ArgumentParser(
        prog="p2pchat",
        description="Peer-to-peer, end-to-end encrypted chat on your local network.",
        epilog=(
            "Run without a subcommand to open the chat app. Environment: P2PCHAT_HOME "
            "(where profiles live), P2PCHAT_PASSPHRASE (the passphrase of a sealed key "
            "file, for scripts; otherwise it is asked for on the terminal, 3 tries)."
        ),
    )
    add_common(parser, suppress_defaults=False)
    add_node_options(parser, suppress_defaults=False)
    parser.add_argument("--version", action="version", version=f"p2pchat {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    identity_cmds.register(subs, common)
    passphrase_cmds.register(subs, common)
    serve.register(subs, common)
    chat_cmds.register(subs, common)
    change_cmds.register(subs, common)
    room_cmds.register(subs, common)
    file_cmds.register(subs, common)
    doctor.register(subs, common)
    repair_cmds.register(subs, common)
    backup_cmds.register(subs, common)
    manage_cmds.register(subs, common)
    tor_cmds.register(subs, common)
    sticker_cmds.register(subs, common)
    return parser


class _NotTheAppError(Exception):
    """The command line is not a plain ``p2pchat [options]``."""


class _AppParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotTheAppError(message)


def app_args(argv: Sequence[str] | None) -> argparse.Namespace | None:
    """The options of a command line that opens the app (no subcommand), parsed with
    the app's options only; None for anything else (the full parser then parses it,
    and explains any mistake, ``--help`` and ``--version``)."""
    parser = _AppParser(prog="p2pchat", add_help=False)
    add_common(parser, suppress_defaults=False)
    add_node_options(parser, suppress_defaults=False)
    try:
        args, rest = parser.parse_known_args(argv)
    except _NotTheAppError:
        return None
    return None if rest else args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``p2pchat`` console script."""
    args = app_args(argv)
    if args is None:
        args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from p2pchat.cli.app import cmd_app

        handler = cmd_app
    else:
        from p2pchat.cli.output import log_to_stderr

        log_to_stderr()  # the app keeps its own screen; commands print on the terminal
    try:
        result = handler(args)
        sys.stdout.flush()  # here, so a closed pipe is handled below, not at exit
    except CliError as exc:
        from p2pchat.cli.output import say

        # Errors can quote what peers chose (names, room names): never raw escapes.
        say(f"p2pchat: {exc}", *exc.details, err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`p2pchat files | head -1`): not an error of ours. Point
        # stdout at nothing so the interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
