"""Cut a normalised file into parts Leanplum's import job accepts, one user never split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

#: Leanplum's documented limit is "100 MB" per file; we read it as binary megabytes but
#: callers should keep a margin (the ingest function may pass a smaller limit).
LEANPLUM_MAX_FILE_BYTES = 100 * 1024 * 1024


class UserTooLargeError(ValueError):
    """One user's rows alone (plus the header) are larger than a part may be."""


@dataclass(frozen=True)
class PartInfo:
    """One written part: its 0-based index, size in bytes and number of data rows."""

    index: int
    bytes: int
    rows: int


def split_by_user(
    normalized: BinaryIO,
    max_part_bytes: int,
    open_part: Callable[[int], BinaryIO],
) -> list[PartInfo]:
    """Split a normalised file (rows grouped by ``userId``) into parts of <= ``max_part_bytes``.

    Each part starts with the header. The file is read record by record (a record may span
    several physical lines when a quoted field holds a newline), so memory holds one user's
    rows at most. ``open_part(i)`` returns a writable binary stream for part ``i``; the caller
    owns and closes it.
    """
    from functions.validation.records import iter_user_groups

    header, groups = iter_user_groups(normalized)
    if len(header) >= max_part_bytes:
        raise UserTooLargeError(f"the header alone is {len(header)} bytes, over {max_part_bytes}")
    parts: list[PartInfo] = []
    current: BinaryIO | None = None
    size = rows = 0
    for user, chunk, count in groups:
        if len(header) + len(chunk) > max_part_bytes:
            raise UserTooLargeError(
                f"the rows of user {user!r} alone take {len(chunk)} bytes;"
                f" a part may hold at most {max_part_bytes} bytes including the header"
            )
        if current is None or size + len(chunk) > max_part_bytes:
            if current is not None:
                parts.append(PartInfo(len(parts), size, rows))
            current = open_part(len(parts))
            current.write(header)
            size, rows = len(header), 0
        current.write(chunk)
        size += len(chunk)
        rows += count
    if current is not None:
        parts.append(PartInfo(len(parts), size, rows))
    return parts
