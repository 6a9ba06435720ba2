"""split_by_user: parts under the limit, header in each, users never split."""

from __future__ import annotations

import io

import pytest

from functions.validation import LEANPLUM_MAX_FILE_BYTES, UserTooLargeError, split_by_user
from tests.unit._validation_helpers import rows_of, run

T = 1748600000


def normalised(users: int, per_user: int) -> bytes:
    lines = [f'user{u},e,{T + i},"note\nline {i}"' for u in range(users) for i in range(per_user)]
    _, out, _ = run("userId,event,time,note\n" + "\n".join(lines) + "\n")
    return out


def test_limit_constant_is_explicit() -> None:
    assert LEANPLUM_MAX_FILE_BYTES == 100 * 1024 * 1024


def test_parts_hold_whole_users_and_reassemble() -> None:
    data = normalised(20, 7)
    parts: list[io.BytesIO] = []

    def open_part(index: int) -> io.BytesIO:
        assert index == len(parts)
        parts.append(io.BytesIO())
        return parts[-1]

    infos = split_by_user(io.BytesIO(data), 600, open_part)
    header = data.split(b"\n", 1)[0] + b"\n"
    assert len(infos) == len(parts) > 1
    seen: dict[str, int] = {}
    for info, part in zip(infos, parts, strict=True):
        body = part.getvalue()
        assert body.startswith(header) and len(body) == info.bytes <= 600
        part_rows = rows_of(body)[1:]
        assert len(part_rows) == info.rows
        for user in {row[0] for row in part_rows}:
            assert user not in seen
            seen[user] = info.index
    assert b"".join(p.getvalue()[len(header) :] for p in parts) == data[len(header) :]
    assert sum(i.rows for i in infos) == 140


def test_user_larger_than_limit_raises() -> None:
    with pytest.raises(UserTooLargeError, match="user0"):
        split_by_user(io.BytesIO(normalised(1, 50)), 300, lambda _: io.BytesIO())
