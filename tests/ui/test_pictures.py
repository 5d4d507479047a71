"""Image previews through textual-image: half blocks headless, real pixels when detected.

Tests never ask a terminal anything: ``graphics.protocol()`` is ``halfcell`` unless
``run_app`` ran the detection. The graphics path is shown by choosing kitty's protocol
by hand; its pictures are Unicode placeholder cells (U+10EEEE) on screen, so the test
can see where the picture lands. The terminal's slowness is the one test double.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import sys
import termios
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from p2pchat.node import Node
from p2pchat.ui import graphics
from p2pchat.ui.media import MAX_THUMB_PIXELS, decode_preview
from p2pchat.ui.widgets.message_list import MessageList
from tests.nodes import make_node
from tests.ui.helpers import (
    app_for,
    befriend,
    file_state,
    items,
    open_chat_with,
    screen_text,
    until,
)

BIG = (120, 36)
KITTY_PLACEHOLDER = "\U0010eeee"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    alice, bob = make_node("alice"), make_node("bob")
    await alice.start()
    await bob.start()
    await alice.transfers.set_auto_accept_max(0)
    yield alice, bob
    await alice.stop()
    await bob.stop()


@pytest.fixture
def kitty() -> Iterator[None]:
    """Pretend detection found the kitty graphics protocol (and undo it)."""
    before = graphics.protocol()
    graphics._chosen = "tgp"
    yield
    graphics._chosen = before


def _picture(path: Path) -> Path:
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 50, 200, 100))
    img.save(path)
    return path


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_headless_runs_never_ask_the_terminal() -> None:
    assert graphics.protocol() == "halfcell"
    pipe = io.StringIO()
    tty = _Tty()
    assert not graphics.wanted({"TERM": "xterm-kitty"}, pipe, pipe)
    assert not graphics.wanted({"TERM": "xterm-kitty"}, tty, pipe)
    assert not graphics.wanted({"TERM": "dumb"}, tty, tty)
    assert not graphics.wanted({"TERM": "xterm-kitty", "P2PCHAT_GRAPHICS": "halfcell"}, tty, tty)
    assert graphics.wanted({"TERM": "xterm-kitty"}, tty, tty)
    assert graphics.finish_detection(None) == "halfcell"


def test_a_slow_terminal_never_holds_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = threading.Event()

    def silent_terminal(found: list[graphics.Drawing]) -> None:
        answered.wait(5)  # a terminal that does not answer (bounded, so the thread ends)
        found.append("tgp")

    monkeypatch.setattr(graphics, "_ask_terminal", silent_terminal)
    monkeypatch.setattr(graphics, "wanted", lambda *_: True)
    start = time.monotonic()
    detection = graphics.detect(deadline=0.2)
    assert detection is not None
    assert graphics.finish_detection(detection) == "halfcell"
    assert time.monotonic() - start < 2
    answered.set()
    detection.thread.join(5)


_CHILD = """
import time
from p2pchat.ui import graphics
start = time.monotonic()
drawing = graphics.finish_detection(graphics.detect())
print("RESULT", drawing, round(time.monotonic() - start, 3))
"""


def _run_in_a_terminal(
    answer: bytes | None, size: tuple[int, int, int, int] = (40, 120, 1200, 800)
) -> tuple[str, float]:
    """Run detection in a child on a real pseudo-terminal; ``answer`` DA1 if given."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal on stdin and stdout
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-c", _CHILD])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size))
    out = b""
    deadline = time.monotonic() + 60
    try:
        while b"RESULT" not in out or not out.endswith(b"\n"):
            assert time.monotonic() < deadline, out
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            out += chunk
            if answer is not None and b"\x1b[c" in chunk:
                os.write(fd, answer)
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    assert b"Traceback" not in out, out
    _, drawing, seconds = out[out.index(b"RESULT") :].decode().split()
    return drawing, float(seconds)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_detection_in_a_real_terminal() -> None:
    # A terminal that says it does sixel (DA1 attribute 4) gets real pixels ...
    drawing, _ = _run_in_a_terminal(b"\x1b[?62;4;22c")
    assert drawing == "sixel"
    # ... one that answers nothing gets half blocks, and start-up waits at most the deadline.
    drawing, seconds = _run_in_a_terminal(None)
    assert drawing == "halfcell"
    assert seconds < graphics.DETECT_DEADLINE + 0.5
    # A terminal reporting a zero size (textual-image would divide by zero): half blocks.
    drawing, _ = _run_in_a_terminal(b"\x1b[?62;4;22c", size=(0, 0, 0, 0))
    assert drawing == "halfcell"


def test_preview_is_decoded_and_capped_before_textual_image_sees_it() -> None:
    preview = decode_preview(_png(300, 150))
    assert isinstance(preview.picture, Image.Image)
    assert preview.picture.mode == "RGB"
    assert preview.picture.width * preview.picture.height <= MAX_THUMB_PIXELS
    assert (preview.columns, preview.rows) == (32, 8)
    assert preview.halfcell.plain.split("\n") == ["▀" * 32] * 8
    with pytest.raises(ValueError, match=r"."):
        decode_preview(_png(1000, 1000))  # more pixels than the cap: never decoded


async def test_headless_preview_is_half_blocks_without_a_picture_widget(
    pair: tuple[Node, Node], tmp_path: Path
) -> None:
    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.transfers.send_file(alice.me, _picture(tmp_path / "sunset.png"))
        await until(pilot, lambda: file_state(app) == "offered")
        item = items(app)[-1]
        listing = app.chat.query_one(MessageList)
        await until(pilot, lambda: "▀" * 16 in "\n".join(listing.lines_of(item)))
        assert not listing.pictures.widgets


async def test_kitty_picture_is_laid_over_the_preview_rows(
    pair: tuple[Node, Node], tmp_path: Path, kitty: None
) -> None:
    from textual_image.widget import TGPImage

    from p2pchat.ui.widgets.message_item import GUTTER

    alice, bob = pair
    await befriend(alice, bob)
    app = app_for(alice)
    async with app.run_test(size=BIG) as pilot:
        await open_chat_with(pilot, app, bob.me)
        await bob.transfers.send_file(alice.me, _picture(tmp_path / "sunset.png"))
        await until(pilot, lambda: file_state(app) == "offered")
        item = items(app)[-1]
        listing = app.chat.query_one(MessageList)
        await until(pilot, lambda: bool(app.chat.query(TGPImage)))
        picture = app.chat.query_one(TGPImage)
        assert isinstance(picture.image, Image.Image)  # decoded by us, never raw bytes
        lines = listing.lines_of(item)
        # Behind the message gutter (no body line looks like a header): "│ " then blanks.
        row = next(i for i, line in enumerate(lines) if line.startswith(GUTTER + " " * 32))
        assert "▀" not in "".join(lines)  # the card keeps blank rows, no half blocks
        await until(pilot, lambda: picture.region.height == 8)
        view = listing.scrollable_content_region
        assert picture.region.y == view.y + item.top + item.gap + row - round(listing.scroll_y)
        assert picture.region.x == view.x + len(GUTTER)
        assert picture.region.width == 32
        await until(pilot, lambda: KITTY_PLACEHOLDER in screen_text(app))
        shown = screen_text(app).split("\n")[picture.region.y]
        assert shown[picture.region.x] == KITTY_PLACEHOLDER
