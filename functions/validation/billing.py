"""Count Leanplum's billed user lookups: unique users in each 50-action batch of the job."""

from __future__ import annotations

from collections.abc import Iterable

#: The import job processes the file this many actions at a time.
BATCH_ACTIONS = 50


class LookupCounter:
    """Streams users in file order and sums the distinct users of each 50-row batch."""

    def __init__(self, batch: int = BATCH_ACTIONS) -> None:
        self._batch = batch
        self._pending: list[str] = []
        self.lookups = 0

    def feed(self, users: Iterable[str]) -> None:
        """Add users in the order their rows appear in the file."""
        pending = self._pending
        pending.extend(users)
        size = self._batch
        full = len(pending) - len(pending) % size
        # One C-level pass: the distinct users of each full batch.
        batches = map(slice, range(0, full, size), range(size, full + size, size))
        self.lookups += sum(map(len, map(set, map(pending.__getitem__, batches))))
        del pending[:full]

    def finish(self) -> int:
        """Count the last, partial batch and return the total."""
        if self._pending:
            self.lookups += len(set(self._pending))
            self._pending.clear()
        return self.lookups
