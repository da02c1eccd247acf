"""Importing torch, scikit-learn, pydantic and matplotlib with the garbage collector paused.

Together they create about a million objects, which the cyclic collector would walk over and over
while they import. Once imported they are moved to its oldest generation in one go (freeze, then
unfreeze) instead of being walked through the younger ones.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(keep_frozen: bool = False) -> Iterator[None]:
    """The body (imports, as a rule) runs with the garbage collector paused; it is left as it was.

    ``keep_frozen``: leave the objects made meanwhile frozen, out of its sight for good, as the
    ``trainlab`` command does with its libraries, which live as long as it does: its full
    collections then do not walk them. Otherwise nothing stays frozen, and a caller's own frozen
    objects stay frozen."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep_frozen:
            gc.freeze()
        elif not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        if collecting:
            gc.enable()
