"""Keep Python's cyclic garbage collector from stalling the screen.

A running app holds about 80,000 long-lived objects the collector tracks (Textual's
widgets and styles, Rich, the node, every imported module and its dictionaries).
CPython's full (generation 2) collection walks all of them and their references:
measured at 40-50 ms of CPU (55-110 ms on the clock in the middle of a burst of live
messages), one frozen frame in which nothing is drawn and no key is handled. What lives
once the app is up lives until it quits, so it is moved out of the collector's sight
(``gc.freeze``); a full collection then walks only what was made since (about 16,000
objects, 2-4 ms), which is what a burst makes and drops. Done once per process (tests
run many apps in one process, and each freeze keeps what it froze until the process
ends; only cyclic garbage frozen with it is never freed, as objects are still freed
when their last reference goes).
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
