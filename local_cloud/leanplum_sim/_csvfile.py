"""Turn the bytes of an import CSV into one action per data row (or a reason the file fails)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

UTF8_BOM = b"\xef\xbb\xbf"
NESTED_PREFIXES = ("params.", "userAttributes.")


class FileRejected(ValueError):
    """The whole file is unusable: the job ends FAILED with this message."""


@dataclass(frozen=True)
class CsvRow:
    """One data row: an action to run, or the reason it cannot become one."""

    line: int
    action: dict[str, Any] | None
    error: str | None = None


def decode(data: bytes) -> str:
    """[DOC] plain UTF-8 without BOM. [INFER] Anything else fails the whole job."""
    if data.startswith(UTF8_BOM):
        raise FileRejected("File starts with a UTF-8 byte order mark (BOM); save it without BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected(f"File is not valid UTF-8 (byte offset {exc.start})") from None


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if name == "":
            raise FileRejected(f"Header column {index} has no name")
        if name in seen:
            raise FileRejected(f"Header names column {name!r} twice")
        seen.add(name)


def _row_action(header: list[str], cells: list[str], default_action: str | None) -> dict[str, Any]:
    action: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):
        if cell == "":
            continue  # [INFER] an empty cell is an absent argument
        prefix = next((p for p in NESTED_PREFIXES if name.startswith(p)), None)
        if prefix:
            action.setdefault(prefix[:-1], {})[name[len(prefix) :]] = cell
        else:
            action[name] = cell
    if not action.get("action") and default_action:
        action["action"] = default_action
    return action


def rows(text: str, default_action: str | None) -> Iterator[CsvRow]:
    """Yield the data rows in file order. Blank lines are not rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise FileRejected("File is empty: expected a header row of API argument names")
        _check_header(header)
        for cells in reader:
            if not cells:
                continue
            line = reader.line_num
            if len(cells) > len(header):
                message = f"Row has {len(cells)} fields but the header has {len(header)}"
                yield CsvRow(line, None, message)
                continue
            yield CsvRow(line, _row_action(header, cells, default_action))
    except csv.Error as exc:
        raise FileRejected(f"Malformed CSV near line {reader.line_num}: {exc}") from None
