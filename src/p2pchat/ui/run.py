"""Start the chat app for a profile (placeholder until the Textual app lands)."""

from __future__ import annotations

from p2pchat.node import NodeConfig
from p2pchat.profile import Profile


def run_app(profile: Profile, config: NodeConfig) -> int:
    """Run the app until the person quits; return the process exit code."""
    print(f"The chat app is not built yet; use `p2pchat --profile {profile.name} serve`.")
    del config
    return 0
