"""Benchmark the validator against a plain csv.reader -> csv.writer copy of the same file.

Usage::

    python scripts/benchmark_validator.py [--rows N] [--out-dir DIR] [--repeat N]

Generates a realistic ~100 MB CSV (``--rows``, default 1,000,000; three parameters, mixed time
formats, 1% bad rows) and a file one tenth of that size, then for each file measures in child
processes (so peak RSS is per run): the plain copy (the floor) and the validator. Prints a
table and writes ``benchmark.json`` into ``--out-dir``. It is a benchmark, never a test.

``--repeat N`` measures each (copy and validator alike, interleaved) N times and keeps the
fastest run of each, which is what a shared, noisy machine can honestly report.

``--time-formats warehouse`` writes the times as warehouse exports do instead (BigQuery's
``... UTC``, GA4 microseconds, Postgres/Snowflake ``+00``, nanoseconds), to measure those
parsers; the default mix is the one the README's figures were taken with.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
EVENTS = [
    "Purchase",
    "Level Up",
    "Open App",
    "Add To Cart",
    "Share",
    "Tutorial Complete",
    "Subscribe",
    "View Item",
]
PLANS = ["free", "basic", "pro", "enterprise"]
SOURCES = [
    "organic",
    "facebook/spring_sale",
    "google_ads/brand",
    "referral/friend",
    "email/weekly_digest",
]
CURRENCIES = ["USD", "EUR", "gbp", "JPY", "BRL"]
HEADER = [
    "userId",
    "event",
    "time",
    "value",
    "currencyCode",
    "params.plan",
    "source",
    "params.item_count",
]


def _time_text(rng: random.Random, moment: float) -> str:
    """One of the time formats exporters really produce."""
    pick = rng.random()
    if pick < 0.35:
        return str(int(moment))
    if pick < 0.50:
        return f"{moment:.3f}"
    if pick < 0.65:
        return str(int(moment * 1000))
    stamp = datetime.fromtimestamp(int(moment), UTC)
    if pick < 0.85:
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = timedelta(hours=rng.choice([-8, -5, 1, 2, 5.5, 9]))
    return stamp.astimezone().astimezone(__import__("datetime").timezone(offset)).isoformat()


def _warehouse_time_text(rng: random.Random, moment: float) -> str:
    """One of the time formats warehouse exports write (BigQuery, GA4, Postgres, Spark)."""
    pick = rng.random()
    micros = int(moment * 1_000_000)
    if pick < 0.40:
        stamp = datetime.fromtimestamp(micros // 1_000_000, UTC)
        fraction = f".{micros % 1_000_000:06d}" if pick < 0.20 else ""
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + fraction + " UTC"
    if pick < 0.70:
        return str(micros)
    if pick < 0.85:
        stamp = datetime.fromtimestamp(micros // 1_000_000, UTC)
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + f".{micros % 1_000_000:06d}+00"
    return str(micros * 1000)


def _bad_row(rng: random.Random, row: list[str]) -> list[str]:
    """Break one row in one of the ways people do."""
    kind = rng.randrange(5)
    if kind == 0:
        row[2] = "yesterday"
    elif kind == 1:
        row[0] = ""
    elif kind == 2:
        row[4] = "XYZ"
    elif kind == 3:
        row[3] = "12,50 EUR"
    else:
        row[1] = "bad|event"
    return row


def generate(path: Path, rows: int, seed: int = 1, warehouse: bool = False) -> int:
    """Write a CSV of ``rows`` data rows; return its size in bytes."""
    time_text = _warehouse_time_text if warehouse else _time_text
    rng = random.Random(seed)
    users = [
        f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
        for _ in range(max(1, rows // 20))
    ]
    now = NOW.timestamp()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for _ in range(rows):
            moment = now - rng.random() * 400 * 86400
            event = rng.choice(EVENTS)
            purchase = event == "Purchase"
            row = [
                rng.choice(users),
                event,
                time_text(rng, moment),
                f"{rng.randrange(100, 100000) / 100:.2f}" if purchase else "",
                rng.choice(CURRENCIES) if purchase else "",
                rng.choice(PLANS),
                rng.choice(SOURCES),
                str(rng.randrange(1, 20)),
            ]
            if rng.random() < 0.01:
                row = _bad_row(rng, row)
            writer.writerow(row)
    return path.stat().st_size


def plain_copy(source: str, target: str) -> int:
    """The floor: decode, parse, re-serialise and encode every row, nothing else."""
    count = 0
    with (
        open(source, encoding="utf-8", newline="") as src,
        open(target, "w", encoding="utf-8", newline="") as dst,
    ):
        writer = csv.writer(dst)
        for row in csv.reader(src):
            writer.writerow(row)
            count += 1
    return count


def run_validator(source: str, target: str) -> int:
    """One validator run, as the ingest function does it."""
    from functions.validation import ValidationOptions, validate_csv

    with open(source, "rb") as src, open(target, "wb") as dst, open(os.devnull, "wb") as rej:
        report = validate_csv(src, dst, rej, ValidationOptions(now=NOW))
    return report.rows_total


def _child(kind: str, source: str, target: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    start = time.perf_counter()
    rows = plain_copy(source, target) if kind == "copy" else run_validator(source, target)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"rows": rows, "seconds": elapsed, "peak_rss_mb": peak_kib / 1024})


def measure(kind: str, source: Path, out_dir: Path) -> dict[str, float]:
    """Run one measurement in a fresh child process (spawned: its RSS is its own)."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    target = str(out_dir / f"{source.stem}.{kind}.csv")
    child = context.Process(target=_child, args=(kind, str(source), target, queue))
    child.start()
    result: dict[str, float] = queue.get()
    child.join()
    size_mb = source.stat().st_size / 1e6
    result["mb_per_s"] = size_mb / result["seconds"]
    result["rows_per_s"] = result["rows"] / result["seconds"]
    os.remove(target)
    return result


def main(argv: list[str] | None = None) -> int:
    """Generate inputs, measure, print a table and write benchmark.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large file")
    parser.add_argument("--out-dir", type=Path, help="where inputs and benchmark.json go")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement; the fastest is kept"
    )
    parser.add_argument(
        "--time-formats",
        choices=("mixed", "warehouse"),
        default="mixed",
        help="mixed: the README's mix; warehouse: BigQuery UTC, GA4 microseconds, +00, ns",
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir or Path(tempfile.mkdtemp(prefix="lp-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "now": NOW.isoformat(),
        "python": sys.version.split()[0],
        "time_formats": args.time_formats,
    }
    table = []
    for label, rows in (("small", max(1, args.rows // 10)), ("large", args.rows)):
        source = out_dir / f"input-{label}.csv"
        size = generate(source, rows, warehouse=args.time_formats == "warehouse")
        copies, validators = [], []
        for _ in range(max(1, args.repeat)):
            copies.append(measure("copy", source, out_dir))
            validators.append(measure("validator", source, out_dir))
        copy = min(copies, key=lambda run: run["seconds"])
        validator = min(validators, key=lambda run: run["seconds"])
        ratio = validator["mb_per_s"] / copy["mb_per_s"]
        results[label] = {
            "runs": len(copies),
            "rows": rows,
            "bytes": size,
            "plain_copy": copy,
            "validator": validator,
            "ratio_to_plain_copy": ratio,
        }
        table.append((label, rows, size / 1e6, copy, validator, ratio))
    small, large = results["small"], results["large"]
    growth = large["validator"]["peak_rss_mb"] - small["validator"]["peak_rss_mb"]  # type: ignore[index]
    results["rss_growth_mb"] = growth
    print(
        f"{'file':<6} {'rows':>9} {'MB':>7} | {'copy MB/s':>9} {'copy RSS':>8} | "
        f"{'valid MB/s':>10} {'rows/s':>9} {'RSS MB':>7} | {'ratio':>5}"
    )
    for label, rows, mb, copy, validator, ratio in table:
        print(
            f"{label:<6} {rows:>9} {mb:>7.1f} | {copy['mb_per_s']:>9.1f} "
            f"{copy['peak_rss_mb']:>8.1f} | {validator['mb_per_s']:>10.1f} "
            f"{validator['rows_per_s']:>9.0f} {validator['peak_rss_mb']:>7.1f} | {ratio:>5.2f}"
        )
    print(f"validator peak RSS growth small -> large: {growth:.1f} MB")
    report = out_dir / "benchmark.json"
    report.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
