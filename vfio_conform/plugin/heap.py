"""The collected session kept out of the garbage collector's full scans.

A full collection walks every tracked object; after collection that is mostly pytest's items,
fixture definitions, marks and the suites' modules, which live until the session ends. Each test
allocates enough (records, reports, output objects) to trigger a full scan every few dozen tests,
and writing a run's reports afterwards triggers several more, each walking the whole session
(a tenth of a second each on the sim's 2000 tests). Once collection is done, the objects alive are
moved to the permanent generation (`gc.freeze`): the scans then cover only what was made since.

They return to the collector when pytest unconfigures, or, in a process that goes on to write
the run's reports from the session (`vfio-conform run`, inside `reports_after_session()`), when
those are written.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: How many reports_after_session() blocks are open (pytest's end then leaves the heap frozen).
_HELD = 0


class FrozenCollection:
    """pytest plugin: freeze what collection left alive; unfreeze at the end."""

    frozen = False

    def pytest_collection_finish(self, session) -> None:
        gc.collect()
        gc.freeze()
        self.frozen = True

    def pytest_unconfigure(self, config) -> None:
        if self.frozen and not _HELD:
            gc.unfreeze()
        self.frozen = False


@contextlib.contextmanager
def reports_after_session() -> Iterator[None]:
    """Around a pytest session and the report writing that follows it in the same process: what
    collection froze stays frozen until the block ends."""
    global _HELD
    _HELD += 1
    try:
        yield
    finally:
        _HELD -= 1
        if not _HELD and gc.get_freeze_count():
            gc.unfreeze()
