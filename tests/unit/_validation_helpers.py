"""Shared helpers for the validation tests (not a test module)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from functions.validation import ValidationOptions, ValidationReport, validate_csv

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())


def run(data: bytes | str, **options: object) -> tuple[ValidationReport, bytes, bytes]:
    """Validate ``data``; return the report, the output bytes and the rejected bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    output, rejected = io.BytesIO(), io.BytesIO()
    settings = {"now": NOW, **options}
    report = validate_csv(
        io.BytesIO(raw),
        output,
        rejected,
        ValidationOptions(**settings),  # type: ignore[arg-type]
    )
    return report, output.getvalue(), rejected.getvalue()


def rows_of(data: bytes) -> list[list[str]]:
    """Parse CSV bytes."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
