"""The p2pchat app: runs the node in Textual's asyncio loop and shows its chats.

The app owns the node's lifetime when it started it (``p2pchat``, which hands it a
``Launch``: the node is built after the first frame) and leaves it alone when it was
handed a running one (tests); nothing of the node is imported at the top of this
module. Node events come in through one worker that reads the node's event stream into
a list, posting one ``NodeEvents`` for it; start-up failures become a clear screen,
never a traceback; ctrl+q stops the node cleanly (its pending writes reach the disk)
before the app exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.color import ColorSystem
from rich.console import COLOR_SYSTEMS
from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from p2pchat.ui.commands import ChatCommands, Command, safe_title
from p2pchat.ui.context import ChatContext
from p2pchat.ui.contrast import ContrastFilter
from p2pchat.ui.launch import Launch, LaunchError
from p2pchat.ui.notify import DesktopNotifier
from p2pchat.ui.opener import Opener
from p2pchat.ui.prefs import UiPrefs
from p2pchat.ui.screens.confirm import ConfirmScreen
from p2pchat.ui.screens.help import HelpScreen, Section, binding_rows
from p2pchat.ui.screens.invite import InviteScreen, tor_line
from p2pchat.ui.screens.prompt import PromptScreen
from p2pchat.ui.screens.shell import ShellScreen
from p2pchat.ui.screens.startup_error import StartupErrorScreen
from p2pchat.ui.text import literal, one_line

# Everything below loads the node's modules (PyNaCl, zeroconf, SQLite, ...): imported
# where it is used, which is after the first frame when the app builds its own node
# (ui/launch.py; tests/ui/test_startup_imports.py checks it).
if TYPE_CHECKING:
    from textual.worker import Worker

    from p2pchat.control.server import ControlServer
    from p2pchat.node import Event, EventStream, Node
    from p2pchat.ui.events import NodeEvent, NodeEvents
    from p2pchat.ui.screens.chat import ChatScreen
    from p2pchat.ui.widgets.sidebar import Entry

EADDRINUSE = 98


def start_failure(exc: BaseException, port: int) -> str:
    """Words for a node that could not be built or started."""
    if isinstance(exc, LaunchError):
        return str(exc)
    from p2pchat.node import StoreError, StoreLockedError  # loaded by now: the node failed

    if isinstance(exc, StoreLockedError):
        return (
            "This profile is already open in another p2pchat (the app or `p2pchat serve`).\n"
            "Close that one first, or start this one with another --profile."
        )
    if isinstance(exc, StoreError):
        return f"The message store could not be opened:\n{exc}"
    if isinstance(exc, OSError):
        if exc.errno == EADDRINUSE:
            return (
                f"Port {port} is already in use by another program.\n"
                "Start p2pchat with another --port, or leave it out to pick a free one."
            )
        return f"The network could not be set up: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _load_chat_modules() -> None:
    """Import what the chat screen and the node's start need (in the build thread, so
    the loop never waits on these imports)."""
    import p2pchat.control.api
    import p2pchat.control.server
    import p2pchat.ui.chat_manage
    import p2pchat.ui.events
    import p2pchat.ui.screens.chat  # noqa: F401


class ChatApp(App[int]):
    """The chat app for one node.

    Given a running or ready ``Node`` (tests), it shows the chat screen at once. Given
    a :class:`Launch` (``p2pchat``), its first frame is the chat screen's empty frame
    (``ShellScreen``); the node is built in a worker thread, then the chat screen is
    pushed over the shell (docs/ui.md, "Start-up") and the node starts. Until then
    only quitting does anything (``check_action``), and quitting waits for the build
    and the start to settle, so the store is always closed cleanly.
    """

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "p2pchat"
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+f", "search", "Search", priority=True, show=False),
    ]
    #: Actions that work before the node is built (the rest wait for it, see check_action).
    EARLY_ACTIONS = frozenset({"quit"})

    def __init__(
        self,
        node: Node | Launch,
        *,
        owns_node: bool = True,
        serve_control: bool = True,
        now: Callable[[], float] = time.time,
        desktop: DesktopNotifier | None = None,
        opener: Opener | None = None,
    ) -> None:
        super().__init__()
        self._launch = node if isinstance(node, Launch) else None
        self._node: Node | None = None
        self._now = now
        self.owns_node = owns_node or self._launch is not None
        self.serve_control = serve_control
        directory = node.directory if isinstance(node, Launch) else node.profile.directory
        self.prefs = UiPrefs.load_file(directory)  # until the store is read
        self.desktop = desktop if desktop is not None else DesktopNotifier()
        self.opener = opener if opener is not None else Opener()
        self.control: ControlServer | None = None
        self.failed: str | None = None
        self.started = False
        self._stopped = False
        self._start_begun = False  # _start ran: shutdown must wait for _settled
        self._settled = asyncio.Event()  # the node's build and start are over, either way
        self._chat: ChatScreen | None = None
        self._events: EventStream | None = None
        # Judged in the colours the terminal shows (a 256-colour one rounds them).
        system = COLOR_SYSTEMS.get(self.console.color_system or "", ColorSystem.TRUECOLOR)
        self._contrast = ContrastFilter(enabled=not self.current_theme.dark, system=system)
        self._filters.append(self._contrast)
        self._prefs_loaded = False
        self._waiting: list[Event] = []  # node events not handled yet (see NodeEvents)
        if not isinstance(node, Launch):
            self._adopt(node)

    @property
    def node(self) -> Node:
        """The node (built: ``node_built``; before that, only quitting reaches for it)."""
        if self._node is None:
            raise RuntimeError("the node is not built yet")
        return self._node

    @property
    def stopping(self) -> bool:
        """Whether the app is shutting down: a node built from now on is never started."""
        return self._stopped

    @property
    def node_built(self) -> bool:
        """Whether the node exists (it may still be starting)."""
        return self._node is not None

    @property
    def chat(self) -> ChatScreen:
        """The main screen."""
        if self._chat is None:
            from p2pchat.ui.screens.chat import ChatScreen

            self._chat = ChatScreen()
        return self._chat

    def get_default_screen(self) -> Screen[Any]:
        """The chat screen is the base of the screen stack (its frame until the node
        is built)."""
        return ShellScreen() if self._node is None else self.chat

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Before the node is built, keys other than quit do nothing (shown disabled)."""
        if self._node is None and action not in self.EARLY_ACTIONS:
            return None
        return super().check_action(action, parameters)

    # ================================================================ start and stop

    def _adopt(self, node: Node) -> None:
        """Take ``node`` as the app's node (before it starts, so no event is missed)."""
        self._node = node
        self.ctx = ChatContext(node, self._now)

    def on_mount(self) -> None:
        """Subscribe before starting, so no event is missed; then start the node (a
        node still to build: once the shell is on screen, so nothing competes with
        the first frame)."""
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._node is not None:
            self._subscribe()
            self._begin_start()
        else:
            self.call_after_refresh(self._begin_start)

    def _begin_start(self) -> None:
        # The method, not a coroutine: a worker cancelled before it runs (quit at once)
        # leaves no coroutine that was never awaited.
        self._starter: Worker[None] = self.run_worker(
            self._start, group="node-start", exit_on_error=False
        )

    def _subscribe(self) -> None:
        self._events = self.node.subscribe()
        self.run_worker(self._pump(), group="node-events", exit_on_error=False)

    async def _pump(self) -> None:
        from p2pchat.ui.events import NodeEvents

        assert self._events is not None
        async for event in self._events:
            self._waiting.append(event)
            if len(self._waiting) == 1:  # the list was empty: nobody is coming for it yet
                self.post_message(NodeEvents())

    def _build(self) -> Node:
        """In the worker thread: the node and the modules the chat screen needs."""
        assert self._launch is not None
        node = self._launch.build()
        _load_chat_modules()
        return node

    async def _build_node(self) -> bool:
        """Build the node off the loop and put the chat screen over the shell;
        False when that failed (the error is on screen) or the person quit meanwhile."""
        try:
            node = await asyncio.to_thread(self._build)
        except Exception as exc:  # shown to the person, never a traceback
            if not self._stopped:  # (nobody is left to read it after a quit)
                await self._fail(exc, 0)
            return False
        if self._stopped:
            return False  # quit while it was built: never start it
        self._adopt(node)
        self._subscribe()
        await self.push_screen(self.chat)
        self.refresh_bindings()
        return True

    async def _fail(self, exc: BaseException, port: int) -> None:
        self.failed = start_failure(exc, port)
        await self.push_screen(StartupErrorScreen(self.failed))

    async def _start(self) -> None:
        if self._stopped:  # quit before the start began: nothing to build or stop
            return
        self._start_begun = True  # from here on, shutdown waits for _settled
        try:
            if self._launch is not None and not await self._build_node():
                return
            if self.owns_node and not self._stopped:
                try:
                    await self.node.start()
                except Exception as exc:  # shown to the person, never a traceback
                    await self._fail(exc, self.node.config.port)
                    return
                self.started = True
                if self.serve_control:
                    await self._serve_control()
        finally:
            self._settled.set()
        if self._stopped:
            return
        await self._node_started()

    async def _serve_control(self) -> None:
        from p2pchat.control.api import NodeApi
        from p2pchat.control.server import ControlServer, ControlServerError

        control = ControlServer(NodeApi(self.node), self.node.profile.control_path)
        try:
            await control.start()
            self.control = control
        except ControlServerError as exc:
            self.notify(str(exc), title="Control socket", severity="warning")

    async def _node_started(self) -> None:
        from p2pchat.node import NodeError, StoreError

        try:
            self.prefs = await UiPrefs.load(self.node, self.node.profile.directory)
        except (NodeError, StoreError, ValueError) as exc:
            self.notify(str(exc), title="App settings", severity="warning", markup=False)
        if self.prefs.theme in self.available_themes and self.prefs.theme != self.theme:
            self.theme = self.prefs.theme
        self._prefs_loaded = True
        await self.chat.node_started()
        if not self.node.profile.has_display_name:
            self.ask_name(first_run=True)

    async def on_node_event(self, message: NodeEvent) -> None:
        """Route a node event to the chat screen."""
        if self._chat is not None and self.chat.is_mounted:
            await self.chat.handle(message.event)

    async def on_node_events(self, message: NodeEvents) -> None:
        """Route every waiting node event to the chat screen, in order."""
        from p2pchat.ui.events import coalesce

        waiting, self._waiting = self._waiting, []
        if self._chat is not None and self.chat.is_mounted:
            for event in coalesce(waiting):
                await self.chat.handle(event)

    async def shutdown(self) -> None:
        """Stop typing, the control socket and (if ours) the node; safe to call twice.

        A node still being built or started is waited for first (quitting at once
        must not leave its store half open), then stopped."""
        if self._stopped:
            return
        self._stopped = True
        if self._start_begun:
            with contextlib.suppress(asyncio.CancelledError):
                await self._settled.wait()
        if self.control is not None:
            with contextlib.suppress(Exception):
                await self.control.stop()
        if self.owns_node and self.started:
            await self.node.stop()
        if self._events is not None:
            self._events.close()
        await self.desktop.close()
        await self.opener.close()

    async def on_unmount(self) -> None:
        """However the app ends (ctrl+q, a signal, a test), the node stops cleanly."""
        await self.shutdown()

    async def action_quit(self) -> None:
        """ctrl+q: stop the node cleanly, then exit."""
        await self.shutdown()
        code = 1 if self.failed else 0
        self.exit(code, return_code=code)

    # ================================================================ notifications

    def notify_message(self, author: str, body: str) -> None:
        """A new message in a room not on screen: toast, bell and desktop notification."""
        self.notify(one_line(body, 120), title=one_line(author, 80), markup=False)
        if self.prefs.bell:
            self.bell()
        if self.prefs.desktop:
            self.desktop.send(author, body)

    # ================================================================ theme

    def _theme_changed(self, theme: Theme) -> None:
        """Light themes get the contrast guard; the choice is kept for the next start."""
        self._contrast.enabled = not theme.dark
        self.refresh(repaint=True, layout=True)
        if self._prefs_loaded and theme.name != self.prefs.theme:
            self.run_worker(self._save_theme(theme.name), group="theme", exit_on_error=False)

    async def _save_theme(self, name: str) -> None:
        from p2pchat.node import NodeError, StoreError

        try:
            await self.prefs.save_theme(self.node, name)
        except (NodeError, StoreError) as exc:
            self.notify(str(exc), title="Theme not saved", severity="warning", markup=False)

    # ================================================================ help

    def help_sections(self) -> list[Section]:
        """The app's keys, read from the bindings (the help screen cannot go stale)."""
        from p2pchat.ui.screens.chat import ChatScreen
        from p2pchat.ui.widgets.composer import Composer
        from p2pchat.ui.widgets.message_item import MESSAGE_BINDINGS

        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands, by name")
        return [
            ("Everywhere", binding_rows([palette, *self.BINDINGS, *ChatScreen.BINDINGS])),
            ("Writing a message", list(Composer.HELP_KEYS)),
            (
                "A selected message (↑ from an empty composer)",
                binding_rows(MESSAGE_BINDINGS),
            ),
            ("Dialogs and lists", [("escape", "Close or cancel"), ("tab", "Next field or button")]),
        ]

    def action_help(self) -> None:
        """f1: the help screen (a second f1 closes it)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands, with its generic "Keys" panel replaced by our help."""
        for command in super().get_system_commands(screen):
            if command.title != "Keys":
                yield command
        yield SystemCommand("Keys", "Every key of p2pchat (f1)", self.action_help)

    # ================================================================ dialogs

    def ask_name(self, *, first_run: bool = False) -> None:
        """Ask for a display name (required on the first run)."""
        from p2pchat.profile import MAX_DISPLAY_NAME

        title = "Welcome to p2pchat" if first_run else "Your display name"
        explanation = (
            "What should people on your network call you? You can change it later (f2)."
            if first_run
            else "The name other people see."
        )

        async def done(name: str | None) -> None:
            if name:
                await self._rename(name)

        self.push_screen(
            PromptScreen(
                title,
                explanation,
                value="" if first_run else self.node.profile.display_name,
                placeholder="your name",
                ok="Continue" if first_run else "Rename",
                can_cancel=not first_run,
                max_length=MAX_DISPLAY_NAME,
            ),
            done,
        )

    async def _rename(self, name: str) -> None:
        from p2pchat.node import NodeError

        try:
            shown = await self.node.rename(name)
        except (NodeError, ValueError, OSError) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"You are now {one_line(shown, 60)}", markup=False, timeout=3)
        self.chat.update_topbar()

    def action_settings(self) -> None:
        """Open the settings screen."""
        from p2pchat.node import (
            SETTING_ANNOUNCE,
            SETTING_DOWNLOAD_DIR,
            SETTING_READ_RECEIPTS,
            SETTING_TYPING,
            NodeError,
            StoreError,
        )
        from p2pchat.ui.screens.settings import SettingsScreen, SettingsValues  # not at start

        node = self.node
        values = SettingsValues(
            display_name=node.profile.display_name,
            read_receipts=node.setting(SETTING_READ_RECEIPTS),
            typing=node.setting(SETTING_TYPING),
            announce=node.setting(SETTING_ANNOUNCE),
            bell=self.prefs.bell,
            desktop=self.prefs.desktop,
            download_dir=node.text_setting(SETTING_DOWNLOAD_DIR),
            desktop_available=self.desktop.available,
            tor=node.onions.enabled,
        )

        async def save(new: SettingsValues | None) -> None:
            if new is None:
                return
            try:
                if new.display_name != node.profile.display_name:
                    await self._rename(new.display_name)
                for key, value in (
                    (SETTING_READ_RECEIPTS, new.read_receipts),
                    (SETTING_TYPING, new.typing),
                    (SETTING_ANNOUNCE, new.announce),
                ):
                    if node.setting(key) != value:
                        await node.set_setting(key, value)
                if new.download_dir != node.text_setting(SETTING_DOWNLOAD_DIR):
                    await node.set_text_setting(SETTING_DOWNLOAD_DIR, new.download_dir)
                if new.tor != node.onions.enabled:
                    await node.onions.set_enabled(new.tor)
                    self.chat.update_topbar()
                self.prefs.bell, self.prefs.desktop = new.bell, new.desktop
                await self.prefs.save(node)
            except (NodeError, StoreError, OSError) as exc:
                self.notify(str(exc), title="Settings not saved", severity="error", markup=False)
                return
            self.notify("Settings saved", timeout=2)

        self.push_screen(SettingsScreen(values), save)

    def action_verify_peer(self, peer: bytes) -> None:
        """Show the safety number shared with ``peer``."""

        async def done(verified: bool | None) -> None:
            if verified is None:
                return
            await self.node.set_verified(peer, verified)
            self.notify("Marked as verified" if verified else "Marked as not verified")
            await self.chat.refresh_peer()
            await self.chat.reload_sidebar()

        from p2pchat.ui.screens.verify import VerifyScreen  # rarely opened: not at start-up

        info_verified = self.ctx.verified.get(peer, False)
        self.push_screen(
            VerifyScreen(
                self.ctx.name(peer),
                self.chat.peer_info.peer_id_text if self.chat.peer_info else peer.hex(),
                self.node.peer_id_text,
                self.node.safety_number(peer),
                info_verified,
            ),
            done,
        )

    def action_connect(self) -> None:
        """Ask for HOST:PORT and dial it (for networks without multicast)."""
        from p2pchat.node import parse_host_port

        async def done(answer: str | None) -> None:
            if not answer:
                return
            try:
                host, port = parse_host_port(answer)
            except ValueError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            await self.node.add_address(host, port)
            self.notify(f"Connecting to {host}:{port}…", markup=False, timeout=3)

        self.push_screen(
            PromptScreen(
                "Connect to an address",
                "The other p2pchat's address and port, e.g. 192.168.1.20:7102. "
                "It is remembered and dialled again after restarts.",
                placeholder="HOST:PORT",
                ok="Connect",
            ),
            done,
        )

    def action_invite(self) -> None:
        """Show our invite code with its QR code and tor's state."""
        onions = self.node.onions
        status = tor_line(onions.status.state, onions.status.percent, onions.enabled)
        self.push_screen(InviteScreen(onions.invite_code(), status))

    def action_add_invite(self) -> None:
        """Ask for an invite code; its owner becomes a contact, reached through tor."""
        from p2pchat.node import NodeError

        async def done(answer: str | None) -> None:
            if not answer:
                return
            try:
                peer = await self.node.onions.add_invite(answer)
            except NodeError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            note = "" if self.node.onions.enabled else " (Tor is off: turn it on in settings, f2)"
            self.notify(f"Added {self.node.peer_name(peer)}{note}", markup=False, timeout=4)

        self.push_screen(
            PromptScreen(
                "Add a contact by invite code",
                "The code they got from “Show my invite code” or `p2pchat invite`. "
                "They become your contact; p2pchat reaches them through Tor.",
                placeholder="p2pchat:…",
                ok="Add",
            ),
            done,
        )

    def action_send_file(self) -> None:
        """Choose a file (tree with a filter) and offer it in the open conversation."""
        self.chat.action_attach()

    # ================================================================ groups

    def action_create_group(self) -> None:
        """Ask for a name, create the group and open it."""
        from p2pchat.node import NodeError, StoreError

        async def done(name: str | None) -> None:
            if not name:
                return
            try:
                room = await self.node.groups.create_room(name)
            except (NodeError, StoreError, ValueError) as exc:
                self.notify(str(exc), title="No group", severity="error", markup=False)
                return
            await self.chat.reload_sidebar()
            await self.chat.open_room(room)
            self.notify("Group created. ctrl+p → Invite … to add people.", timeout=6)

        self.push_screen(
            PromptScreen(
                "Create a group",
                "A name everyone in it sees. You invite people next (ctrl+p → Invite).",
                placeholder="group name",
                ok="Create",
            ),
            done,
        )

    def _rename_group(self, room: bytes, current: str) -> None:
        def done(name: str | None) -> None:
            if name and name != current:
                self.chat.run_node(self.node.groups.rename(room, name), "Group renamed")

        self.push_screen(
            PromptScreen("Rename the group", "Everyone in it sees the new name.", value=current),
            done,
        )

    def _set_topic(self, room: bytes) -> None:
        def done(topic: str | None) -> None:
            if topic:
                self.chat.run_node(self.node.groups.set_topic(room, topic), "Topic set")

        self.push_screen(PromptScreen("Group topic", "A line about what the group is for."), done)

    def _leave_group(self, room: bytes, name: str) -> None:
        def done(leave: bool | None) -> None:
            if leave:
                self.chat.run_node(self.node.groups.leave(room), "You left the group")

        question = Text("Leave ")
        question.append_text(literal(name, "bold", multiline=False))
        question.append("? You stop getting its messages; someone must invite you to return.")
        self.push_screen(ConfirmScreen("Leave the group", question, "Leave"), done)

    def _run_later(
        self, said: str, call: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> None:
        """Run ``call(*args)`` on the node when a palette command is chosen; say ``said``."""
        self.chat.run_node(call(*args), said)

    def _remove_member(self, room: bytes, peer: bytes, name: str) -> None:
        """Ask first (removing cannot be undone by us alone), then say who left."""
        group = self.chat.room_name or "the group"

        def done(remove: bool | None) -> None:
            if remove:
                said = f"{one_line(name, 40)} was removed from {one_line(group, 40)}"
                self.chat.run_node(self.node.groups.remove(room, peer), said)

        question = Text("Remove ")
        question.append_text(literal(name, "bold", multiline=False))
        question.append(" from ")
        question.append_text(literal(group, "bold", multiline=False))
        question.append("? They stop getting its messages until someone invites them again.")
        self.push_screen(ConfirmScreen("Remove a member", question, "Remove"), done)

    def _promote_member(self, room: bytes, peer: bytes, name: str) -> None:
        group = self.chat.room_name or "the group"
        said = f"{one_line(name, 40)} is now an admin of {one_line(group, 40)}"
        self.chat.run_node(self.node.groups.promote(room, peer), said)

    def _group_commands(self) -> list[Command]:
        """Commands for the open group: invite, members, rename, leave, roles."""
        chat = self.chat
        room = chat.room
        if room is None or chat.peer is not None:
            return []
        group = safe_title(chat.room_name or "this group")
        cmds: list[Command] = [
            ("Show or hide members", f"Members of {group} (f5)", chat.action_toggle_members),
        ]
        if chat.my_state != "joined":
            return cmds
        me = self.node.me
        role = next((m.role for m in chat.members if m.peer_id == me), "member")
        in_room = {m.peer_id for m in chat.members if m.state in ("joined", "invited")}
        groups = self.node.groups
        for peer_id, state in self.ctx.states.items():
            if state == "contact" and peer_id not in in_room and peer_id != me:
                name = safe_title(self.ctx.name(peer_id))
                said = f"{one_line(self.ctx.name(peer_id), 40)} is invited; they choose to join"
                call = functools.partial(self._run_later, said, groups.invite, room, peer_id)
                cmds.append((f"Invite {name} to {group}", "They choose to join", call))
        cmds += [
            (
                f"Rename group {group}",
                "",
                functools.partial(self._rename_group, room, chat.room_name),
            ),
            (f"Set the topic of {group}", "", functools.partial(self._set_topic, room)),
            (
                f"Leave group {group}",
                "",
                functools.partial(self._leave_group, room, chat.room_name),
            ),
            ("Who has read the selected message", "i on a message", self._receipts_selected),
        ]
        if role in ("owner", "admin"):
            for m in chat.members:
                if m.peer_id == me or m.state != "joined":
                    continue
                name = safe_title(m.name)
                remove = functools.partial(self._remove_member, room, m.peer_id, m.name)
                cmds.append((f"Remove {name} from {group}", "You confirm first", remove))
                if m.role == "member":
                    promote = functools.partial(self._promote_member, room, m.peer_id, m.name)
                    cmds.append((f"Make {name} an admin of {group}", "", promote))
        return cmds

    def _receipts_selected(self) -> None:
        self._act_on_selected("receipts")

    # ================================================================ palette

    def action_search(self) -> None:
        """Search messages in every chat (ctrl+f)."""
        from p2pchat.ui import chat_manage

        chat_manage.open_search(self)

    def palette_commands(self) -> list[Command]:
        """Everything the palette offers now (depends on the open conversation)."""
        from p2pchat.ui import chat_manage

        chat = self.chat
        cmds: list[Command] = [
            ("Settings", "Name, read receipts, announce, notifications (f2)", self.action_settings),
            ("Rename yourself", "Change the name others see", self.ask_name),
            ("Connect to an address", "Dial HOST:PORT of another p2pchat", self.action_connect),
            ("Show my invite code", "For someone beyond the LAN (Tor)", self.action_invite),
            ("Add a contact by invite code", "Reach them through Tor", self.action_add_invite),
            ("Copy my peer id", self.node.peer_id_text, self._copy_id),
            ("Create a group", "A room for several people", self.action_create_group),
        ]
        cmds += chat_manage.commands(self)
        if chat.room is not None:
            cmds += [
                ("Insert emoji", "Searchable emoji picker (ctrl+e)", chat.action_emoji),
                ("Send a sticker", "Pick one of your stickers (ctrl+t)", chat.action_sticker),
                ("Reply to the selected message", "ctrl+r", chat.action_reply),
                ("React to the selected message", "Pick an emoji", self._react_selected),
                (
                    "Edit the selected message",
                    "Your own text: E on a message",
                    functools.partial(self._act_on_selected, "edit"),
                ),
                (
                    "Delete the selected message",
                    "For everyone (you confirm first): delete on a message",
                    functools.partial(self._act_on_selected, "delete"),
                ),
                ("Send a file", "Pick a file to offer here (ctrl+o)", self.action_send_file),
            ]
            cmds += self._group_commands()
            cmds += chat_manage.sticker_commands(self)
        if chat.peer is not None and chat.peer_info is not None:
            name = safe_title(self.ctx.name(chat.peer))
            peer = chat.peer
            cmds.append((f"Verify {name}", "Compare safety numbers (f3)", chat.action_verify))
            state = chat.peer_info.state
            if state == "request":
                cmds.append((f"Accept contact request from {name}", "", chat.action_accept))
            if state != "blocked":
                cmds.append((f"Block {name}", "Refuse their messages", chat.action_block))
            else:
                cmds.append((f"Unblock {name}", "", lambda: chat.unblock(peer)))
        held = self.node.requests_held_back
        if held.requests or held.messages or any(e.state == "request" for e in chat.entries()):
            cmds.append(
                (
                    "Clear all contact requests",
                    f"{held.requests} held back; senders are not blocked",
                    chat.clear_requests,
                )
            )
        for entry in chat.entries():
            title = f"Open chat with {safe_title(entry.name)}"
            if entry.state == "request":
                title = f"Open contact request from {safe_title(entry.name)}"
            cmds.append(
                (
                    title,
                    f"{entry.unread} unread" if entry.unread else "",
                    functools.partial(self._open_entry, entry),
                )
            )
        for room, invite in list(chat.invitations.items()):
            group = safe_title(invite.name)
            answer = chat.answer_invitation
            cmds.append((f"Join group {group}", "", functools.partial(answer, room, True)))
            cmds.append((f"Decline group {group}", "", functools.partial(answer, room, False)))
        for peer_id, state in self.ctx.states.items():
            if state == "blocked":
                name = safe_title(self.ctx.name(peer_id))
                cmds.append((f"Unblock {name}", "", functools.partial(chat.unblock, peer_id)))
        return cmds

    def _open_entry(self, entry: Entry) -> None:
        self.run_worker(self.chat.open_entry(entry), exit_on_error=False)

    def _copy_id(self) -> None:
        self.copy_to_clipboard(self.node.peer_id_text)
        self.notify("Your peer id was copied", timeout=2)

    def _act_on_selected(self, action: str) -> None:
        from p2pchat.ui.widgets.message_list import MessageList

        item = self.chat.selected_item()
        if item is not None:
            self.chat.post_message(MessageList.Action(item, action))

    def _react_selected(self) -> None:
        self._act_on_selected("react")
