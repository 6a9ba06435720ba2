"""Command line: ``python -m functions validate INPUT.csv`` — a dry run of the ingest checks.

Exit codes: 0 the file is accepted (even with some rows rejected), 1 it is refused, 2 usage
error. It never calls Leanplum; it runs exactly ``validate_csv``, the code the function runs.

Gzip input is recognised by its first two bytes (``1f 8b``), not by its name: exporters write
``.csv.gz``, ``.csv`` holding gzip bytes, or ``Content-Encoding: gzip`` objects downloaded raw,
and all three must be checked the same way. It is decompressed as it is read (``gzip.open``),
never whole; the command line sets no ceiling on the decompressed size, since a person runs it
on a file they chose, on their own machine. The options mirror the ingest settings:
``--naive-time-zone`` (NAIVE_TIME_ZONE), ``--map`` (COLUMN_MAP), ``--drop`` (DROP_COLUMNS),
``--duplicate-rows`` (DUPLICATE_ROWS).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import sys
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO, cast

from functions import imports_cli
from functions.validation import ValidationOptions, ValidationReport, validate_csv
from functions.validation.options import (
    DUPLICATE_ROW_POLICIES,
    OLD_EVENT_POLICIES,
    parse_column_map,
)
from functions.validation.timeparse import FORMATS

EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: Print progress on stderr only for inputs at least this large.
PROGRESS_MIN_BYTES = 20 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


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
    imports_cli.add_parser(commands)
    validate = commands.add_parser("validate", help="check a CSV file without importing it")
    validate.add_argument("input", type=Path, help="the CSV file to check")
    validate.add_argument("--now", type=_parse_now, help="import time, ISO 8601 (default: now)")
    validate.add_argument("--output", type=Path, help="write the normalised CSV here")
    validate.add_argument("--report", type=Path, help="write the JSON report here")
    validate.add_argument("--rejected", type=Path, help="write the rejected rows CSV here")
    validate.add_argument("--old-event-policy", choices=OLD_EVENT_POLICIES, default="move")
    validate.add_argument("--max-future-seconds", type=int, default=600)
    validate.add_argument("--max-rejected-fraction", type=float, default=0.10)
    validate.add_argument(
        "--naive-time-zone",
        "--naive-timezone",
        dest="naive_time_zone",
        metavar="ZONE",
        help="IANA zone of times written without any zone (default: reject such rows)",
    )
    validate.add_argument(
        "--map",
        action="append",
        default=[],
        type=_parse_mapping,
        metavar="ARG=COLUMN",
        help="take track argument ARG from COLUMN, e.g. userId=user_pseudo_id (repeatable)",
    )
    validate.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="COLUMN",
        help="leave COLUMN out of the output (repeatable)",
    )
    validate.add_argument("--duplicate-rows", choices=DUPLICATE_ROW_POLICIES, default="drop")
    return parser


def _parse_mapping(text: str) -> tuple[str, str]:
    """One ``--map ARG=COLUMN``, read by the parser of the COLUMN_MAP setting."""
    try:
        mapping = parse_column_map(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if len(mapping) != 1:
        raise argparse.ArgumentTypeError(f"expected one ARG=COLUMN, got {text!r}")
    return next(iter(mapping.items()))


def _open_input(path: Path, stack: contextlib.ExitStack) -> tuple[BinaryIO, BinaryIO]:
    """The stream to validate and the raw file under it (whose position is the progress)."""
    raw: BinaryIO = stack.enter_context(path.open("rb"))
    if raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
        raw.seek(0)
        return cast(BinaryIO, stack.enter_context(gzip.open(raw, "rb"))), raw
    raw.seek(0)
    return raw, raw


def _summary(report: ValidationReport, stream: TextIO) -> None:
    verdict = "ACCEPTED" if report.accepted else "REFUSED"
    print(
        f"{verdict}: {report.rows_total} rows, {report.rows_written} valid,"
        f" {report.rows_rejected} rejected, {report.rows_duplicate_dropped} duplicates dropped,"
        f" {report.rows_time_clamped} moved in time,"
        f" {report.rows_hidden_from_analytics} hidden from Analytics",
        file=stream,
    )
    if report.time_formats:
        formats = ", ".join(
            f"{name} {report.time_formats[name]}" for name in FORMATS if name in report.time_formats
        )
        print(f"time formats: {formats}", file=stream)
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
    if args.command == "imports":
        return imports_cli.run(args, out)
    arguments = [argument for argument, _ in args.map]
    repeated = sorted({argument for argument in arguments if arguments.count(argument) > 1})
    if repeated:
        print(
            f"python -m functions validate: error: --map names {', '.join(repeated)} twice",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        options = ValidationOptions(
            now=args.now or datetime.now(UTC),
            old_event_policy=args.old_event_policy,
            max_future_seconds=args.max_future_seconds,
            max_rejected_fraction=args.max_rejected_fraction,
            naive_timezone=args.naive_time_zone,
            duplicate_rows=args.duplicate_rows,
            column_map=dict(args.map),
            drop_columns=frozenset(args.drop),
        )
    except ValueError as error:
        print(f"python -m functions validate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not args.input.is_file():
        print(f"python -m functions validate: error: no such file: {args.input}", file=sys.stderr)
        return EXIT_USAGE
    size = args.input.stat().st_size
    with contextlib.ExitStack() as stack:
        source, raw = _open_input(args.input, stack)

        def progress(_: int) -> None:
            print(f"\r{raw.tell() / 1e6:,.0f} / {size / 1e6:,.0f} MB", end="", file=sys.stderr)

        output: BinaryIO = stack.enter_context(
            args.output.open("wb") if args.output else open(os.devnull, "wb")  # noqa: SIM115
        )
        rejected: BinaryIO = stack.enter_context(
            args.rejected.open("wb") if args.rejected else open(os.devnull, "wb")  # noqa: SIM115
        )
        try:
            report = validate_csv(
                source,
                output,
                rejected,
                options,
                progress if size >= PROGRESS_MIN_BYTES else None,
            )
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            # A truncated or corrupt gzip stream: nothing to validate past that point.
            print(f"\nREFUSED: cannot read {args.input}: {error}", file=out)
            return EXIT_REFUSED
    if size >= PROGRESS_MIN_BYTES:
        print(file=sys.stderr)
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    _summary(report, out)
    return EXIT_ACCEPTED if report.accepted else EXIT_REFUSED
