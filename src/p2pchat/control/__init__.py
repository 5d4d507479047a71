"""Local control socket: a running node's API for the CLI and scripts."""
