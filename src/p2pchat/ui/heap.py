"""Keep Python's cyclic garbage collector from stalling the screen.

A running app holds a few hundred thousand long-lived objects (Textual's widgets and
styles, Rich, the node, every imported module). CPython's full (generation 2)
collection walks all of them: measured at 55-110 ms in the middle of a burst of live
messages, one frozen frame in which nothing is drawn and no key is handled. What lives
once the app is up lives until it quits, so it is moved out of the collector's sight
(``gc.freeze``); collections then walk only what was made since, which is what a burst
makes and drops. Done once per process (tests run many apps in one process, and each
freeze keeps what it froze until the process ends).
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_long_lived() -> bool:
    """Exempt every object alive now from later collections (once per process); whether
    this call did it."""
    global _frozen  # noqa: PLW0603 - once per process, by design
    if _frozen:
        return False
    _frozen = True
    gc.freeze()
    return True
