"""Choose a file to send: a directory tree with a filter.

Typing in the filter keeps only files whose name contains the text (folders stay, so
you can still walk into them); typing a path (``~/Pictures``, ``/tmp/cat``) moves the
tree to its folder and filters by the rest. Enter on a file sends it, escape cancels.
Hidden files stay hidden unless the filter starts with a dot.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Static


class FilteredTree(DirectoryTree):
    """A DirectoryTree that hides files not matching ``needle`` (and hidden entries)."""

    needle = ""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        """Folders (not hidden) and the files whose name contains the filter text."""
        needle = self.needle.casefold()
        show_hidden = needle.startswith(".")
        out = []
        for path in paths:
            if path.name.startswith(".") and not show_hidden:
                continue
            try:
                is_dir = path.is_dir()
            except OSError:
                continue
            if is_dir or needle in path.name.casefold():
                out.append(path)
        return out


class FilePickerScreen(ModalScreen[Path | None]):
    """Dismisses with the chosen file, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "to_tree", "Files", show=False),
    ]

    def __init__(self, start: Path, to: str = "") -> None:
        super().__init__()
        self.start = start
        self.to = to

    def compose(self) -> ComposeResult:
        """Title, filter, tree, help."""
        with Vertical(classes="dialog picker"):
            title = Text("Send a file", "bold")
            if self.to:
                title.append(" to ")
                title.append(self.to, "bold")
            yield Static(title, classes="dialog-title")
            yield Input(placeholder="filter by name, or a folder like ~/Pictures", id="filter")
            yield FilteredTree(self.start, id="tree")
            yield Static(
                Text("↓ to the list · enter sends the file · escape cancels", "grey62"),
                classes="dialog-text",
            )

    def on_mount(self) -> None:
        """Type to filter at once."""
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        tree = self.query_one(FilteredTree)
        text = event.value.strip()
        needle = text
        if text.startswith(("/", "~")):
            # A path: show its folder, filtered by the part after the last slash
            # (``~/Pictures/cat`` lists ~/Pictures, files with "cat" in the name).
            path = Path(text).expanduser()
            folder, needle = (path, "") if text.endswith("/") else (path.parent, path.name)
            if path.is_dir() and not text.endswith("/"):
                folder, needle = path, ""
            if not folder.is_dir():
                return
            if folder != tree.path:
                tree.needle = needle
                tree.path = folder  # reloads, with the new needle
                return
        if needle != tree.needle:
            tree.needle = needle
            tree.reload()

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text.startswith(("/", "~")) and Path(text).expanduser().is_file():
            self.dismiss(Path(text).expanduser())
            return
        self.action_to_tree()

    def action_to_tree(self) -> None:
        """Move from the filter to the list."""
        tree = self.query_one(FilteredTree)
        tree.focus()
        tree.cursor_line = max(tree.cursor_line, 0)

    @on(DirectoryTree.FileSelected)
    def _chosen(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(event.path)

    def action_cancel(self) -> None:
        """Close without sending."""
        self.dismiss(None)
