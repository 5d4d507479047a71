"""Start the chat app for a profile: ``p2pchat`` with no subcommand lands here."""

from __future__ import annotations

from p2pchat.node import Node, NodeConfig
from p2pchat.profile import Profile


def run_app(profile: Profile, config: NodeConfig) -> int:
    """Run the app until the person quits; return the process exit code."""
    from p2pchat.ui import graphics

    # Ask the terminal about pictures while Textual loads: it must be answered before
    # the app starts reading the keyboard, and it never holds start-up past a deadline.
    detection = graphics.detect()
    from p2pchat.ui.app import ChatApp  # Textual loads only when the app is wanted

    app = ChatApp(Node(profile, config))
    graphics.finish_detection(detection)
    code = app.run()
    return 0 if code is None else int(code)
