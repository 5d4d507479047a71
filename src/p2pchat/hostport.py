"""``HOST:PORT`` as people type it (``--peer``, "Connect to an address").

Its own module, free of the node, so the command line can check ``--peer`` before the
app has loaded anything of the node (issue 12: the first frame comes first).
"""

from __future__ import annotations


def parse_host_port(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6); raise ValueError with a reason."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: port must be a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be between 1 and 65535")
    return host, port
