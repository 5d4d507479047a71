"""Which way pictures are drawn: the terminal's graphics protocol, or half blocks.

``textual-image`` draws real pixels with the kitty graphics protocol (kitty, Ghostty)
or sixel (foot, WezTerm, Konsole, Windows Terminal, iTerm2 3.5+, xterm -ti vt340), and
colour half blocks anywhere else. It learns what the terminal supports by asking it
(escape sequences, each answer awaited at most 0.1 s) when it is imported, and that
only works before Textual starts reading the keyboard. So:

* :func:`detect` is called once by ``run_app`` before the app starts, only when both
  stdin and stdout are a terminal. The asking runs in a thread while the app's modules
  load, and start-up waits for it at most :data:`DETECT_DEADLINE`; without an answer by
  then, pictures are half blocks.
* Anything else (tests, ``run_test``, output to a pipe) never asks and always draws
  half blocks: :func:`protocol` is ``"halfcell"`` until :func:`detect` found better.
  ``P2PCHAT_GRAPHICS=halfcell`` forces half blocks in a terminal too.

textual-image only ever receives an already decoded, size-capped Pillow image (see
``ui.media``); untrusted bytes are decoded by ``node.images`` alone.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Literal, TextIO

Drawing = Literal["halfcell", "sixel", "tgp"]

#: Longest start-up may wait for the terminal's answers (three queries of 0.1 s each).
DETECT_DEADLINE = 0.5
ENV = "P2PCHAT_GRAPHICS"

_chosen: Drawing = "halfcell"


def protocol() -> Drawing:
    """How pictures are drawn in this run (``halfcell`` unless :func:`detect` found more)."""
    return _chosen


def wanted(env: Mapping[str, str], stdin: TextIO | None, stdout: TextIO | None) -> bool:
    """Whether to ask the terminal at all: a real terminal on both ends, not opted out."""
    if env.get(ENV, "").lower() in ("halfcell", "off", "0", "no"):
        return False
    if env.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return bool(stdin and stdout and stdin.isatty() and stdout.isatty())
    except (OSError, ValueError):  # closed or detached streams
        return False


def _ask_terminal(found: list[Drawing]) -> None:
    """Import textual-image (its import asks the terminal) and note what it chose.

    Any failure means half blocks: a terminal reporting a zero size, say, makes the
    library's cell-size arithmetic divide by zero.
    """
    try:
        from textual_image._terminal import get_cell_size
        from textual_image.renderable import Image, SixelImage, TGPImage

        get_cell_size()  # cached now, so textual_image.widget's import asks nothing later
    except Exception:  # whatever the terminal did, pictures fall back
        return
    found.append("sixel" if Image is SixelImage else "tgp" if Image is TGPImage else "halfcell")


class Detection:
    """Asking the terminal, in a thread started before the app's modules load."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.found: list[Drawing] = []
        self.thread = threading.Thread(
            target=_ask_terminal, args=(self.found,), daemon=True, name="graphics"
        )


def detect(deadline: float = DETECT_DEADLINE) -> Detection | None:
    """Start asking the terminal; :func:`finish_detection` collects the answer.

    Returns None (half blocks) when asking is not wanted (see :func:`wanted`).
    """
    if not wanted(os.environ, sys.__stdin__, sys.__stdout__):
        return None
    # Shared modules are imported here first, so the thread imports only its own.
    import PIL.Image  # noqa: F401
    import rich.console  # noqa: F401

    detection = Detection(deadline)
    detection.thread.start()
    return detection


def finish_detection(detection: Detection | None) -> Drawing:
    """Wait (at most the deadline) for :func:`detect`'s answer and use it for this run."""
    global _chosen  # noqa: PLW0603 - one answer for the whole run
    _chosen = "halfcell"
    if detection is not None:
        detection.thread.join(detection.deadline)
        if detection.found and not detection.thread.is_alive():
            _chosen = detection.found[0]
    return _chosen
