"""Dense integer ids for the userIds of one file, each with the reference's bucket and the
verdict on it.

Why ids: the kept rows wait in a compressed spill until every block is read; carrying a
4-byte id instead of the userId's text (a third of a typical line) makes the spill smaller
and faster to write, and the final sort, the repeat check and the lookup counts compare
integers instead of strings. The userId's text is put back once, when the line is written.

The ids come from a Polars categorical mapping private to this file (a ``Categories`` named
after a random token), kept alive by this table and dropped with it; casting a block's
userIds to it hashes each cell natively into one persistent map, with no table to rebuild
per block. Each distinct userId is hashed once in Python, for its bucket
(``sorting.buckets_of``: the reference's CRC-32), and judged once (``judge``), when first
seen: the rows then take both by id.

The table holds every distinct userId of the file (about its text plus 30 bytes each), in
memory, where the reference's spill holds them compressed: past ``MAX_USER_BYTES`` (a file of
mostly distinct userIds, millions of them) it gives up (``TooManyUsers``) and the reference
path runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import polars as pl

from functions.validation.sorting import buckets_of

#: Memory the table may take (userIds' bytes plus ``USER_OVERHEAD`` each) before giving up.
MAX_USER_BYTES = 128 << 20
USER_OVERHEAD = 32


class TooManyUsers(Exception):
    """More distinct userIds than the table holds in ``MAX_USER_BYTES``."""


class UserTable:
    """userId -> (id, bucket, verdict) for one file, and the final order of the ids.

    ``judge`` gives the verdict (an Int64 reason code, null: none) on each of a Series of
    distinct userIds; without one every verdict is null.
    """

    def __init__(self, judge: Callable[[pl.Series], pl.Series] | None = None) -> None:
        self._judge = judge
        self._categories = pl.Categories(f"lp-users-{uuid.uuid4().hex}")
        self._dtype = pl.Categorical(self._categories)
        # The mapping lives while a Series uses it (Polars frees it otherwise).
        self._keepalive = pl.Series([], dtype=self._dtype)
        self._buckets = pl.Series([], dtype=pl.UInt8)
        self._verdicts = pl.Series([], dtype=pl.Int64)
        self._bytes = 0

    def of(self, users: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
        """``__id`` (UInt32), ``__bucket`` (UInt8) and ``__ucode`` (Int64) of each of
        ``users`` (no nulls)."""
        ids = users.cast(self._dtype).to_physical().cast(pl.UInt32)
        known = len(self._buckets)
        new = ids >= known
        if new.any():
            found = pl.DataFrame({"user": users, "id": ids}).filter(new).unique("id")
            self._bytes += int(found["user"].str.len_bytes().sum())
            self._bytes += USER_OVERHEAD * found.height
            if self._bytes > MAX_USER_BYTES:
                raise TooManyUsers(f"more distinct userIds than fit in {MAX_USER_BYTES >> 20} MB")
            top = int(found["id"].max()) + 1  # type: ignore[arg-type]
            grown = pl.concat(
                [self._buckets, pl.repeat(0, top - known, dtype=pl.UInt8, eager=True)]
            )
            buckets = pl.Series(buckets_of(found["user"].to_list()), dtype=pl.UInt8)
            self._buckets = grown.scatter(found["id"], buckets)
            verdicts = pl.concat(
                [self._verdicts, pl.repeat(None, top - known, dtype=pl.Int64, eager=True)]
            )
            if self._judge is not None:
                verdicts = verdicts.scatter(found["id"], self._judge(found["user"]))
            self._verdicts = verdicts
        return (
            ids.alias("__id"),
            self._buckets.gather(ids).alias("__bucket"),
            self._verdicts.gather(ids).alias("__ucode"),
        )

    def order(self) -> tuple[pl.Series, pl.Series]:
        """(rank, text) of each id: ranks follow (bucket, userId), the reference's order of
        users (Polars compares strings by UTF-8 bytes, which is code point order)."""
        texts = self._categories.to_series().cast(pl.String)
        if len(texts) < len(self._buckets) or texts.head(len(self._buckets)).null_count():
            raise RuntimeError("UserTable: an id without its userId")
        texts = texts.head(len(self._buckets))
        # Only the permutation is built (no sorted copy of the userIds).
        frame = pl.DataFrame({"bucket": self._buckets, "user": texts})
        by_order = frame.select(pl.arg_sort_by("bucket", "user")).to_series()
        ranks = pl.repeat(0, len(texts), dtype=pl.UInt32, eager=True).scatter(
            by_order, pl.int_range(0, len(texts), dtype=pl.UInt32, eager=True)
        )
        return ranks, texts
