"""Start the chat app: ``p2pchat`` with no subcommand lands here.

Nothing of the node is imported here: the app paints its first frame, then builds the
node with ``launch.build`` in a worker thread (see ``ui/launch.py``).
"""

from __future__ import annotations

from p2pchat.ui.launch import Launch


def run_app(launch: Launch) -> int:
    """Run the app until the person quits; return the process exit code."""
    from p2pchat.ui import graphics

    # Ask the terminal about pictures while Textual loads: it must be answered before
    # the app starts reading the keyboard, and it never holds start-up past a deadline.
    detection = graphics.detect()
    from p2pchat.ui.app import ChatApp  # Textual loads only when the app is wanted

    app = ChatApp(launch)
    graphics.finish_detection(detection)
    code = app.run()
    return 0 if code is None else int(code)
