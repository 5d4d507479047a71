"""``p2pchat files`` and ``p2pchat get``: file transfers from the command line."""

from __future__ import annotations

import argparse
from typing import Any


def register(subs: Any, common: argparse.ArgumentParser) -> None:
    """Add the file-transfer subcommands to the parser (none until the engine lands)."""
    del subs, common
