"""Command line: ``python -m functions validate INPUT.csv`` — a dry run of the ingest checks.

Exit codes: 0 the file is accepted (even with some rows rejected), 1 it is refused, 2 usage
error. It never calls Leanplum; it runs exactly ``validate_csv``, the code the function runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from functions.validation import ValidationOptions, ValidationReport, validate_csv
from functions.validation.options import OLD_EVENT_POLICIES

EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: Print progress on stderr only for inputs at least this large.
PROGRESS_MIN_BYTES = 20 * 1024 * 1024


def _parse_now(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(prog="python -m functions")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a CSV file without importing it")
    validate.add_argument("input", type=Path, help="the CSV file to check")
    validate.add_argument("--now", type=_parse_now, help="import time, ISO 8601 (default: now)")
    validate.add_argument("--output", type=Path, help="write the normalised CSV here")
    validate.add_argument("--report", type=Path, help="write the JSON report here")
    validate.add_argument("--rejected", type=Path, help="write the rejected rows CSV here")
    validate.add_argument("--old-event-policy", choices=OLD_EVENT_POLICIES, default="move")
    validate.add_argument("--max-future-seconds", type=int, default=600)
    validate.add_argument("--max-rejected-fraction", type=float, default=0.10)
    validate.add_argument("--naive-timezone", default="UTC")
    return parser


def _summary(report: ValidationReport, stream: TextIO) -> None:
    verdict = "ACCEPTED" if report.accepted else "REFUSED"
    print(
        f"{verdict}: {report.rows_total} rows, {report.rows_written} valid,"
        f" {report.rows_rejected} rejected, {report.rows_time_clamped} moved in time,"
        f" {report.rows_hidden_from_analytics} hidden from Analytics",
        file=stream,
    )
    if report.refusal_reason:
        print(f"reason: {report.refusal_reason}", file=stream)
    for reason, count in sorted(report.rejections_by_reason.items(), key=lambda i: -i[1]):
        print(f"  {count:>8}  {reason}", file=stream)
    print(
        f"user lookups (50-row batches): {report.user_lookups_before} before,"
        f" {report.user_lookups_after} after",
        file=stream,
    )
    for warning in report.warnings:
        print(f"warning: {warning}", file=stream)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = stdout or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_ACCEPTED if exit_.code == 0 else EXIT_USAGE
    try:
        options = ValidationOptions(
            now=args.now or datetime.now(UTC),
            old_event_policy=args.old_event_policy,
            max_future_seconds=args.max_future_seconds,
            max_rejected_fraction=args.max_rejected_fraction,
            naive_timezone=args.naive_timezone,
        )
        from functions.validation.timeparse import zone_for

        zone_for(options.naive_timezone)
    except ValueError as error:
        print(f"python -m functions validate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not args.input.is_file():
        print(f"python -m functions validate: error: no such file: {args.input}", file=sys.stderr)
        return EXIT_USAGE
    size = args.input.stat().st_size

    def progress(done: int) -> None:
        print(f"\r{done / 1e6:,.0f} / {size / 1e6:,.0f} MB", end="", file=sys.stderr)

    with contextlib.ExitStack() as stack:
        source = stack.enter_context(args.input.open("rb"))
        output: BinaryIO = stack.enter_context(
            args.output.open("wb") if args.output else open(os.devnull, "wb")  # noqa: SIM115
        )
        rejected: BinaryIO = stack.enter_context(
            args.rejected.open("wb") if args.rejected else open(os.devnull, "wb")  # noqa: SIM115
        )
        report = validate_csv(
            source,
            output,
            rejected,
            options,
            progress if size >= PROGRESS_MIN_BYTES else None,
        )
    if size >= PROGRESS_MIN_BYTES:
        print(file=sys.stderr)
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    _summary(report, out)
    return EXIT_ACCEPTED if report.accepted else EXIT_REFUSED
