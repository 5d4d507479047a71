"""Where the person writes: enter sends, ctrl+j (or shift+enter) adds a line.

``:smi`` shows matching emoji in a list above the composer (↑/↓ to choose, tab or
enter to insert, escape to close); a finished ``:smile:`` turns into 😄 on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.message import Message as TextualMessage
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from p2pchat.ui.emoji import complete, lookup, partial_shortcode, replace_shortcodes

MAX_CANDIDATES = 8
#: What an empty composer says when writing is possible (a closed one says why not).
COMPOSER_PLACEHOLDER = "Message · enter sends · ctrl+j new line · :name: emoji"


def pasted_path(text: str) -> Path | None:
    """The file a paste names, when it is one absolute path to an existing file.

    Terminals paste dropped files as ``/a/b.jpg``, ``'/a/my file.jpg'``,
    ``/a/my\\ file.jpg`` or ``file:///a/my%20file.jpg``; ``~/`` counts too.
    """
    raw = text.strip()
    if not raw or "\n" in raw or len(raw) > 4096 or raw[0] not in "/~'\"f":
        return None
    import shlex  # only for pastes that may be paths
    from urllib.parse import unquote, urlparse

    if raw.startswith("file://"):
        raw = unquote(urlparse(raw).path)
    elif raw[0] in "'\"" or "\\" in raw:
        try:
            parts = shlex.split(raw)
        except ValueError:
            return None
        if len(parts) != 1:
            return None
        raw = parts[0]
    if not raw.startswith(("/", "~/")):
        return None
    path = Path(raw).expanduser()
    try:
        return path if path.is_file() else None
    except OSError:
        return None


class Composer(TextArea):
    """A multi-line message box with ``:shortcode:`` completion."""

    class Submitted(TextualMessage):
        """The person pressed enter: send ``text``."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Edited(TextualMessage):
        """The text changed (drives the typing indicator)."""

        def __init__(self, empty: bool) -> None:
            super().__init__()
            self.empty = empty

    class Escape(TextualMessage):
        """Escape with nothing to close (cancel a reply)."""

    class Up(TextualMessage):
        """↑ in an empty composer: select the last message."""

    class PastedFile(TextualMessage):
        """A path to an existing file was pasted (a dropped file): offer to send it."""

        def __init__(self, path: Path, text: str) -> None:
            super().__init__()
            self.path = path
            self.text = text

    #: The keys ``_on_key`` gives a meaning of its own (the help screen lists them).
    HELP_KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("enter", "Send"),
        ("ctrl+j / shift+enter", "New line"),
        (":name", "Emoji by name (↑/↓ choose, tab or enter insert)"),
        ("escape", "Cancel the reply"),
        ("↑ (empty)", "Select the newest message"),
    )

    def __init__(self, completions: OptionList, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            highlight_cursor_line=False,
            placeholder=COMPOSER_PLACEHOLDER,
        )
        self.completions = completions
        self._prefix: str | None = None

    # ------------------------------------------------------------------ keys

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if self.completions.display and key in ("up", "down", "tab", "enter", "escape"):
            event.stop()
            event.prevent_default()
            if key == "up":
                self.completions.action_cursor_up()
            elif key == "down":
                self.completions.action_cursor_down()
            elif key == "escape":
                self.close_completions()
            else:
                self.accept_completion()
            return
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if key in ("ctrl+j", "shift+enter"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        if key == "escape":
            event.stop()
            event.prevent_default()
            self.post_message(self.Escape())
            return
        if key == "up" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.Up())
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        """A pasted file path becomes an offer to send the file; other text is pasted.

        Textual calls every class's ``_on_paste`` along the MRO until one prevents the
        default, so ``TextArea._on_paste`` inserts ordinary text after this returns:
        calling it here as well would paste everything twice.
        """
        path = pasted_path(event.text)
        if path is not None:
            event.stop()
            event.prevent_default()
            self.post_message(self.PastedFile(path, event.text))

    def submit(self) -> None:
        """Send what is written (shortcodes turned into emoji) and clear the box."""
        text = replace_shortcodes(self.text).strip("\n")
        if self.disabled or not text.strip():  # closed: keep the text, never lose it
            return
        self.clear()
        self.close_completions()
        self.post_message(self.Submitted(text))

    # ------------------------------------------------------------------ completion

    def _before_cursor(self) -> tuple[int, int, str]:
        row, col = self.cursor_location
        return row, col, self.document.get_line(row)[:col]

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Update completions, replace a finished ``:name:``, report typing."""
        self.post_message(self.Edited(empty=not self.text.strip()))
        row, col, before = self._before_cursor()
        if before.endswith(":") and len(before) > 2:
            start = before.rfind(":", 0, len(before) - 1)
            name = before[start + 1 : -1]
            emoji = lookup(name) if start >= 0 and name and " " not in name else None
            if emoji is not None:
                self.replace(emoji, (row, start), (row, col))
                self.close_completions()
                return
        prefix = partial_shortcode(before)
        if prefix is None:
            self.close_completions()
            return
        self._prefix = prefix
        found = complete(prefix, MAX_CANDIDATES)
        if not found:
            self.close_completions()
            return
        self.completions.clear_options()
        self.completions.add_options(
            Option(Text.assemble(f"{e}  ", (f":{n}:", "bold")), id=n) for n, e in found
        )
        self.completions.highlighted = 0
        self.completions.display = True

    def close_completions(self) -> None:
        """Hide the completion list."""
        self._prefix = None
        self.completions.display = False

    def accept_completion(self, name: str | None = None) -> None:
        """Put the chosen emoji in place of the ``:prefix`` being typed."""
        if name is None:
            index = self.completions.highlighted
            if index is None:
                self.close_completions()
                return
            name = self.completions.get_option_at_index(index).id
        emoji = lookup(name or "")
        row, col, before = self._before_cursor()
        prefix = partial_shortcode(before)
        if emoji is None or prefix is None:
            self.close_completions()
            return
        start = col - len(prefix) - 1
        self.replace(emoji, (row, start), (row, col))
        self.close_completions()
        self.focus()
