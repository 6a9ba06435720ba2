"""The operator's command line: ``python -m functions imports list|show|retry|failed-rows``.

Why in the product: after an import, a data team looks into one file or re-runs it, and should
not have to read bucket paths by hand. The commands read the import records in the state bucket
(``--state-bucket`` or ``STATE_BUCKET``) with the same code the functions use, against real Cloud
Storage or, with ``STORAGE_EMULATOR_HOST`` set, the local emulator. Tables for people, ``--json``
for scripts.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from functions.config import RECORDS_PREFIX
from functions.gcs import GcsStore, make_storage_client
from functions.import_record import ImportRecord
from functions.lifecycle import State
from functions.naming import LONG_NAME_DIR, content_claim_name, is_content_claim
from functions.objects import ObjectStore, split_gs_uri
from functions.records import RecordStore

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def add_parser(commands: Any) -> None:
    """Register ``imports`` and its subcommands on the main parser's subparsers."""
    imports = commands.add_parser("imports", help="look into and re-run imports")
    imports.add_argument("--state-bucket", default=os.environ.get("STATE_BUCKET"))
    imports.add_argument("--json", action="store_true", help="machine-readable output")
    sub = imports.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="one line per file version")
    listing.add_argument("where", help="gs://BUCKET[/PREFIX] of the uploads")
    listing.add_argument("--status", help="a result status or a record state")
    listing.add_argument("--since", type=_duration, help="only newer than this: 30m, 24h, 7d")
    show = sub.add_parser("show", help="one file version's timeline, result and URIs")
    show.add_argument("file", help="gs://BUCKET/OBJECT[#GENERATION] (default: the newest)")
    retry = sub.add_parser("retry", help="import a FAILED or TIMED_OUT file again")
    retry.add_argument("file", help="gs://BUCKET/OBJECT#GENERATION")
    retry.add_argument(
        "--i-checked-leanplum",
        action="store_true",
        help="Leanplum was checked: the rows of this file are not there",
    )
    retry.add_argument(
        "--even-if-it-succeeded",
        action="store_true",
        help="re-import a file whose import succeeded (its rows twice)",
    )
    rows = sub.add_parser("failed-rows", help="write the rows that failed, ready to fix")
    rows.add_argument("file", help="gs://BUCKET/OBJECT#GENERATION")
    rows.add_argument("-o", "--output", type=Path, required=True)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 30m, 24h or 7d: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def run(args: argparse.Namespace, out: TextIO, objects: ObjectStore | None = None) -> int:
    """Run one ``imports`` subcommand; returns the exit code."""
    if not args.state_bucket:
        print("error: give --state-bucket or set STATE_BUCKET", file=out)
        return EXIT_USAGE
    objects = objects or GcsStore(make_storage_client())
    records = RecordStore(objects, args.state_bucket)
    action = {"list": _list, "show": _show, "retry": _retry, "failed-rows": _failed_rows}
    return action[args.action](args, records, out)


def _status(record: ImportRecord) -> str:
    return str(record.result["status"]) if record.result else record.state.value


def _age(record: ImportRecord, now: datetime) -> timedelta:
    return now - datetime.fromisoformat(record.timings.received_at)


def _records_under(records: RecordStore, bucket: str, prefix: str) -> list[ImportRecord]:
    found = []
    state = records.state_bucket
    for listed in (RECORDS_PREFIX + prefix, RECORDS_PREFIX + LONG_NAME_DIR):
        for info in records.objects.list(state, listed):
            if is_content_claim(info.name):
                continue
            data = records.objects.read(state, info.name)
            if data is None:
                continue
            record = ImportRecord.from_json(data[0], data[1].generation)
            if record.bucket == bucket and record.object.startswith(prefix):
                found.append(record)
    unique = {(r.object, r.generation): r for r in found}
    return sorted(unique.values(), key=lambda r: (r.timings.received_at, r.object))


def _list(args: argparse.Namespace, records: RecordStore, out: TextIO) -> int:
    bucket, prefix = split_gs_uri(args.where)
    now = datetime.now(UTC)
    chosen = [
        r
        for r in _records_under(records, bucket, prefix)
        if (args.status is None or args.status.upper() in (_status(r), r.state.value))
        and (args.since is None or _age(r, now) <= args.since)
    ]
    rows: list[dict[str, Any]] = [
        {
            "object": r.object,
            "generation": str(r.generation),
            "status": _status(r),
            "rows_sent": r.rows_sent,
            "rows_rejected": r.validation.rows_rejected,
            "job_ids": r.job_ids,
            "age_seconds": int(_age(r, now).total_seconds()),
        }
        for r in chosen
    ]
    if args.json:
        json.dump(rows, out, indent=1)
        out.write("\n")
        return EXIT_OK
    table = [["OBJECT", "GENERATION", "STATUS", "SENT", "REJECTED", "JOBS", "AGE"]]
    table += [
        [
            row["object"],
            row["generation"],
            row["status"],
            str(row["rows_sent"]),
            str(row["rows_rejected"]),
            ",".join(row["job_ids"]) or "-",
            _human(row["age_seconds"]),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        out.write("  ".join(cells).rstrip())
        out.write("\n")
    return EXIT_OK


def _human(seconds: int) -> str:
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _find(records: RecordStore, where: str) -> ImportRecord | None:
    location, _, generation = where.partition("#")
    bucket, name = split_gs_uri(location)
    if generation:
        return records.load(bucket, name, int(generation)) if generation.isdigit() else None
    versions = [r for r in _records_under(records, bucket, name) if r.object == name]
    return max(versions, key=lambda r: r.generation) if versions else None


def _show(args: argparse.Namespace, records: RecordStore, out: TextIO) -> int:
    record = _find(records, args.file)
    if record is None:
        print(f"no import record for {args.file}", file=out)
        return EXIT_REFUSED
    if args.json:
        json.dump(record.to_dict(), out, indent=1, sort_keys=True)
        out.write("\n")
        return EXIT_OK
    out.write(f"{record.object}#{record.generation}: {_status(record)}\n")
    if record.reason:
        out.write(f"reason: {record.reason}\n")
    out.write("timeline:\n")
    for step in record.history:
        out.write(f"  {step.at}  {step.state.value}\n")
    counts = (record.result or {}).get("counts", {})
    if counts:
        out.write(
            "counts: "
            + ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict))
            + "\n"
        )
    for message, count in counts.get("leanplum_warnings_by_message", {}).items():
        out.write(f"  leanplum: {count} x {message}\n")
    out.write(f"jobs: {', '.join(record.job_ids) or '-'}\n")
    uris = {**record.uris.to_dict(), "parts": ", ".join(p.uri for p in record.parts)}
    for key, uri in uris.items():
        if uri:
            out.write(f"{key}: {uri}\n")
    return EXIT_OK


def _retry(args: argparse.Namespace, records: RecordStore, out: TextIO) -> int:
    record = _find(records, args.file) if "#" in args.file else None
    if record is None:
        print(
            f"no import record for {args.file} (name the generation: OBJECT#GENERATION)", file=out
        )
        return EXIT_REFUSED
    refusal = retry_refusal(record, args.i_checked_leanplum, args.even_if_it_succeeded)
    if refusal:
        print(f"refused: {refusal}", file=out)
        return EXIT_REFUSED
    if not record.uris.original:
        print("refused: the record names no archived original to import again", file=out)
        return EXIT_REFUSED
    found = records.objects.read(*split_gs_uri(record.uris.original))
    if found is None:
        print(f"refused: the archived original {record.uris.original} is gone", file=out)
        return EXIT_REFUSED
    # The content claims would end the new version as DUPLICATE: the operator asked for it.
    for digest in {d for d in (record.sha256, record.output_sha256) if d}:
        records.objects.delete(records.state_bucket, content_claim_name(record.object, digest))
    written = records.objects.write(
        record.bucket, record.object, found[0], if_generation_match=None, content_type="text/csv"
    )
    out.write(
        f"uploaded the archived original again as {record.object}#{written.generation}: "
        "it is a new import with its own record and result\n"
    )
    return EXIT_OK


def retry_refusal(record: ImportRecord, checked_leanplum: bool, even_if_succeeded: bool) -> str:
    """Why ``record`` may not be imported again with these flags ("" when it may)."""
    if record.state == State.FINISHED and not even_if_succeeded:
        return (
            "its import finished: importing it again sends every row twice "
            "(pass --even-if-it-succeeded to do it anyway)"
        )
    if not record.terminal:
        return f"it is still {record.state.value}: wait for its result"
    if record.state in (State.DUPLICATE, State.SUPERSEDED):
        return f"it ended {record.state.value}: nothing of it was imported, upload it again"
    started = record.reached(State.JOB_STARTING)
    if started and not checked_leanplum and not even_if_succeeded:
        jobs = ", ".join(record.job_ids) or "a job whose answer was lost"
        return (
            f"a Leanplum job may already hold its rows ({jobs}): check Leanplum, then "
            "pass --i-checked-leanplum"
        )
    return ""


def _failed_rows(args: argparse.Namespace, records: RecordStore, out: TextIO) -> int:
    record = _find(records, args.file)
    if record is None:
        print(f"no import record for {args.file}", file=out)
        return EXIT_REFUSED
    written = []
    reasons: list[list[str]] = [["file", "row", "reason"]]
    # rejected-rows.csv: row, column, reason, then the fields as read (any number of them);
    # failed-rows.csv: row, the fields Leanplum read, then Leanplum's message.
    sources = (
        ("rejected_rows", args.output, slice(3, None), 2),
        ("failed_rows", args.output.with_suffix(".leanplum.csv"), slice(1, -1), -1),
    )
    for key, target, fields, reason_at in sources:
        uri = getattr(record.uris, key)
        found = records.objects.read(*split_gs_uri(uri)) if uri else None
        if found is None:
            continue
        rows = list(csv.reader(io.StringIO(found[0].decode("utf-8"))))
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(rows[0][fields])
            for row in rows[1:]:
                writer.writerow(row[fields])
                reasons.append([target.name, row[0], row[reason_at]])
        written.append(f"{target} ({len(rows) - 1} rows)")
    if not written:
        out.write("no failed rows: nothing was rejected and Leanplum refused no row\n")
        return EXIT_OK
    sidecar = args.output.with_suffix(".reasons.csv")
    with sidecar.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(reasons)
    out.write("wrote " + ", ".join(written) + f"; the reasons in {sidecar}\n")
    return EXIT_OK
