"""Group the kept rows by user in the reference's order, drop exact repeats, write the lines.

The order is the reference's (``sorting``): bucket (CRC-32 of the userId), userId, time,
input order; bucket and userId together are one integer, the user's rank
(``users.UserTable.order``). Rows are dealt to groups of neighbouring buckets as blocks arrive;
past ``budget_bytes`` the buffered groups are spilled, compressed (Arrow IPC, Zstandard), to one
temporary file, since ``/tmp`` is memory in Cloud Functions. At the end each group alone is
read back, sorted natively and written, so memory holds about one group.

Rows wait with their user's id and the line without its userId field (``tail``); the
line is whole again when written.

Repeats (``duplicates``): two rows are the same when userId, output line and time as read
are; after the sort the first of each kind is the earliest in the input, the one the
reference keeps.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import polars as pl

from functions.validation.columnar.ahead import ahead
from functions.validation.columnar.lookups import NativeLookups
from functions.validation.columnar.users import UserTable
from functions.validation.sorting import NUM_BUCKETS, open_spill

#: Groups: at least ``MIN_GROUPS`` (fewer, bigger pieces to compress and read back are
#: faster), more for big inputs, so that one group of about ``GROUP_INPUT_BYTES`` of input
#: is held at a time when writing; at most ``MAX_GROUPS``.
MIN_GROUPS, MAX_GROUPS = 16, 64
GROUP_INPUT_BYTES = 16 << 20
DEFAULT_BUDGET_BYTES = 12 * 1024 * 1024
#: Rough bytes a kept row costs besides its line's tail (id, two times, order, offsets).
ROW_OVERHEAD = 32


def groups_for(input_bytes: int) -> int:
    """How many groups an input of this size is dealt to (a power of two)."""
    groups = MIN_GROUPS
    while groups < MAX_GROUPS and groups * GROUP_INPUT_BYTES < input_bytes:
        groups *= 2
    return groups


class Written:
    """What writing the groups found: bytes, repeats dropped, lookups in output order."""

    def __init__(self) -> None:
        self.bytes = 0
        self.dropped = 0
        self.dropped_before = 0
        self.dropped_moved = 0
        self.lookups = 0


class ColumnarGrouper:
    """Collects kept rows block by block and writes them grouped and sorted."""

    def __init__(
        self,
        budget_bytes: int | None = None,
        temp_dir: str | None = None,
        groups: int = MIN_GROUPS,
    ) -> None:
        if NUM_BUCKETS % groups:
            raise ValueError(f"ColumnarGrouper: {groups} groups do not divide the buckets")
        self._budget = DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes
        self._temp_dir = temp_dir
        self._groups = groups
        self._buffers: list[list[pl.DataFrame]] = [[] for _ in range(groups)]
        self._buffered = 0
        self._spill: BinaryIO | None = None
        self._pieces: list[list[tuple[int, int]]] = [[] for _ in range(groups)]

    def add(self, kept: pl.DataFrame) -> None:
        """Deal one block's kept rows to their groups (spilling past the budget)."""
        if not kept.height:
            return
        # Stored lean (``/tmp`` is memory): the user's id, and the line without the userId
        # field it starts with, unless that field is quoted (``whole``: only for userIds
        # that need quoting, so all rows of a user are alike); the time as read only where
        # it was moved; the input order as UInt32.
        keyed = kept.select(
            "id",
            "secs",
            pl.when(pl.col("origin") != pl.col("secs")).then(pl.col("origin")).alias("origin"),
            "tail",
            "whole",
            pl.col("seq").cast(pl.UInt32, strict=True),
            (pl.col("bucket") // (NUM_BUCKETS // self._groups)).alias("__group"),
        )
        for (group,), part in keyed.partition_by("__group", as_dict=True).items():
            self._buffers[int(group)].append(part.drop("__group"))
        self._buffered += int(keyed["tail"].str.len_bytes().sum())
        self._buffered += ROW_OVERHEAD * kept.height
        if self._buffered > self._budget:
            self._flush()

    def _flush(self) -> None:
        if self._spill is None:
            self._spill = open_spill(self._temp_dir)  # closed in close()
        spill = self._spill
        for group, frames in enumerate(self._buffers):
            if not frames:
                continue
            buffer = io.BytesIO()
            # The oldest Arrow layout (offsets, not 16-byte views) compresses 10% smaller.
            pl.concat(frames, rechunk=False).write_ipc(
                buffer, compression="zstd", compat_level=pl.CompatLevel.oldest()
            )
            data = buffer.getvalue()
            spill.seek(0, 2)
            self._pieces[group].append((spill.tell(), len(data)))
            spill.write(data)
            self._buffers[group] = []
        self._buffered = 0

    def _group(self, group: int, ranks: pl.Series, texts: pl.Series) -> pl.DataFrame | None:
        """One group's rows, spilled pieces first, then the buffered ones, with each user's
        ``rank`` and the whole ``line``."""
        frames: list[pl.DataFrame] = []
        if self._pieces[group]:
            spill = self._spill
            if spill is None:
                raise RuntimeError("ColumnarGrouper: a spilled piece without a spill file")
            for offset, length in self._pieces[group]:
                spill.seek(offset)
                frames.append(pl.read_ipc(io.BytesIO(spill.read(length))))
        frames += self._buffers[group]
        self._buffers[group] = []
        if not frames:
            return None
        frame = pl.concat(frames)
        ids = frame["id"]
        return frame.with_columns(
            ranks.gather(ids).alias("rank"),
            pl.when("whole")
            .then(pl.col("tail"))
            .otherwise(pl.concat_str([pl.lit(texts.gather(ids)), pl.lit(","), pl.col("tail")]))
            .alias("line"),
            pl.coalesce("origin", "secs"),
        ).drop("tail", "whole", "id")

    def write(
        self,
        output: BinaryIO,
        users: UserTable,
        *,
        drop_repeats: bool,
        analytics_limit: float,
    ) -> Written:
        """Write every group's lines in final order (each followed by ``"\\n"``).

        Groups are read back and sorted one step ahead, in a thread, while the previous one
        is written (Polars releases the GIL).
        """
        written = Written()
        lookups = NativeLookups()
        ranks, texts = users.order()
        sorted_groups = (self._sorted(group, ranks, texts) for group in range(self._groups))
        for ready in ahead(sorted_groups):
            if ready is None:
                continue
            frame = ready
            if drop_repeats:
                keep = _first_of_each_kind(frame)
                if keep is not None:
                    dropped = frame.filter(~keep)
                    written.dropped += dropped.height
                    written.dropped_before += int((dropped["secs"] < analytics_limit).sum())
                    written.dropped_moved += int((dropped["origin"] != dropped["secs"]).sum())
                    frame = frame.filter(keep)
            lookups.feed(frame["rank"])
            lines = frame.select("line")
            written.bytes += int(lines["line"].str.len_bytes().sum()) + lines.height
            lines.write_csv(output, include_header=False, quote_style="never")
            del frame, ready, lines
        written.lookups = lookups.finish()
        return written

    def _sorted(self, group: int, ranks: pl.Series, texts: pl.Series) -> pl.DataFrame | None:
        """One group in final order (the input order ``seq`` breaks ties, as in the
        reference; a stable sort alone is not enough: partitioning may reorder rows)."""
        frame = self._group(group, ranks, texts)
        if frame is None:
            return None
        return frame.sort(["rank", "secs", "seq"])

    def close(self) -> None:
        """Remove the spill file."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None


def _first_of_each_kind(frame: pl.DataFrame) -> pl.Series | None:
    """Which rows to keep (None: all): the first of rows with the same line and time as read.

    Such rows share userId and time, so after the sort they lie in one run of neighbours
    with the same userId and time; only rows in such runs are compared.
    """
    user, secs = pl.col("rank"), pl.col("secs")
    same_as_previous = (user == user.shift(1)) & (secs == secs.shift(1))
    same_as_next = (user == user.shift(-1)) & (secs == secs.shift(-1))
    in_run = frame.select((same_as_previous | same_as_next).fill_null(False)).to_series()
    if not in_run.any():
        return None
    runs = frame.filter(in_run).select(pl.struct("line", "origin").is_first_distinct())
    repeated = ~runs.to_series()
    if not repeated.any():
        return None
    drop = in_run.arg_true().filter(repeated)
    keep = pl.repeat(True, frame.height, eager=True)
    return keep.scatter(drop, False)
