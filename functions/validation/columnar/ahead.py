"""Run an iterator one step ahead in a thread, so that two stages of the columnar path
overlap: checking block n + 1 (Polars, which releases the GIL) while block n is being
compressed and spilled.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
#: How often a producer blocked on a full queue looks whether the consumer has gone.
_POLL_SECONDS = 0.1


def ahead(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield ``items`` as produced by a background thread, at most ``depth`` ahead.

    An exception in the producer is raised here, in the consumer, at the same point of the
    sequence. When the consumer stops early (an exception, ``close``) the producer stops at
    its next item and is joined before this generator returns.
    """
    handoff: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _DONE))
        except BaseException as error:  # handed to the consumer, which re-raises it
            put((False, error))

    thread = threading.Thread(target=produce, name="columnar-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = handoff.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
