"""``billing.LookupCounter`` on native columns: distinct users of each 50-row batch."""

from __future__ import annotations

import polars as pl

from functions.validation.billing import BATCH_ACTIONS


class NativeLookups:
    """Streams user ids (``users.UserTable``) in file order; the same sum as
    ``LookupCounter`` without a Python loop.

    The rows of the last, partial batch are carried to the next ``feed`` (at most 49).
    """

    def __init__(self, batch: int = BATCH_ACTIONS) -> None:
        self._batch = batch
        self._pending = pl.Series("user", [], dtype=pl.UInt32)
        self.lookups = 0

    def feed(self, users: pl.Series) -> None:
        """Add user ids in the order their rows appear in the file."""
        pending = pl.concat([self._pending, users.rename("user")]) if len(self._pending) else users
        size = self._batch
        full = len(pending) - len(pending) % size
        if full:
            # One integer key per (batch, user).
            codes = pending[:full].cast(pl.Int64)
            batches = pl.int_range(0, full, eager=True, dtype=pl.Int64) // size
            self.lookups += (batches * (1 << 32) + codes).n_unique()
        self._pending = pending[full:].rename("user")

    def finish(self) -> int:
        """Count the last, partial batch and return the total."""
        if len(self._pending):
            self.lookups += self._pending.n_unique()
            self._pending = self._pending.clear()
        return self.lookups
