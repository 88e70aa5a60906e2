"""The garbage collector in a long-running process: start-up objects are left alone.

A full (generation 2) collection walks every object the process holds, and most of them
are there from start-up on and never become garbage: modules, classes, the app with its
routes, models and validators. In `tracewire serve` such a walk took 85 to 115 ms, and it
fell inside whichever request happened to allocate at the time (bench/RESULTS.md,
section 10: the one slow page in fifty). `gc.freeze()` moves what start-up made into a
permanent generation the collector no longer walks; later garbage is collected as before.
"""

from __future__ import annotations

import gc

_frozen = {"done": False}


def freeze_start_up_objects() -> None:
    """Collect once, then keep every object alive now out of later collections (once)."""
    if _frozen["done"]:
        return
    gc.collect()
    gc.freeze()
    _frozen["done"] = True
