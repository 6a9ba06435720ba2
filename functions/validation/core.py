"""Minimal pass-through validator (placeholder while the full rules are built)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import BinaryIO

from functions.validation.options import ValidationOptions
from functions.validation.report import ValidationReport

REQUIRED = ("userId", "event", "time")


def validate_csv(
    source: BinaryIO,
    output: BinaryIO,
    rejected: BinaryIO,
    options: ValidationOptions,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Check required columns and copy rows through (minimal version)."""
    report = ValidationReport()
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    out = io.TextIOWrapper(output, encoding="utf-8", newline="", write_through=True)
    try:
        reader = csv.reader(text)
        header = next(reader, [])
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            report.refusal_reason = (
                f"missing required column(s) {', '.join(missing)}; found: {', '.join(header)}"
            )
            return report
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in reader:
            if not any(row):
                continue
            report.rows_total += 1
            writer.writerow(row)
            report.rows_written += 1
        report.accepted = report.rows_written > 0
        if not report.accepted:
            report.refusal_reason = "no valid row"
        return report
    finally:
        out.detach()
        text.detach()
