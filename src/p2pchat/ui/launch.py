"""How the app builds its own node after its first frame (``p2pchat``, issue 12).

Importing the node (PyNaCl, zeroconf, SQLite, our store, wire, transport and service
modules) takes longer than Textual's own start-up. So ``p2pchat`` hands the app a
:class:`Launch` instead of a node: the app paints its shell first, then runs
``build`` in a worker thread (where those imports happen) and starts the node it
returns in its own loop. This module must stay light: it is imported before the first
frame, so it names the node only for the type checker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pchat.node import Node


class LaunchError(Exception):
    """A start-up failure ``build`` has already put in words: shown as it is."""


@dataclass(frozen=True)
class Launch:
    """What the app needs to build its node off the UI thread."""

    #: The profile's folder: the app's own preferences (its theme) are read from it
    #: for the first frame, before the store can be.
    directory: Path
    #: Imports the node's modules, opens the profile and returns a node that has not
    #: been started. Runs in a worker thread, so it must not touch the app or the loop.
    #: Raises LaunchError for failures it can explain (a damaged key file).
    build: Callable[[], Node]
