"""Measure the ingest function's work on one BigQuery-sized shard: 1 GB of CSV, gzipped.

Why: exporters write shards of up to 1 GB of logical data (about 150 MB gzipped), and the
ingest function must decompress, validate and split one inside its limits (540 s, its memory,
and ``/tmp``, which is memory in Cloud Functions). This script runs the same code the function
runs on such a shard, each way in a fresh process: ``copy`` (decompress, then a plain ``csv``
copy: the floor), ``reference`` (the one-process reference validator), ``fast`` (the default
path: the columnar one, Polars, for a plain file like this one) and ``parallel`` (the worker
processes of the pure-Python fast path forced, columnar path off). It reports time per step
and memory counted honestly: the peak, at one moment, of the process tree's RSS plus every
byte under the temporary directory (decoded input, output, parts, and spill files though
unlinked), since ``/tmp`` is memory in Cloud Functions; and a plain ``gzip`` read of the
shard as a baseline (ratios, not absolute speed, are what compare across machines).

Usage: ``python scripts/benchmark_shard.py [--bytes 1000000000] [--keep DIR] [--kinds ...]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmark_validator import MemoryWatcher, plain_copy  # the script beside this one

from functions.compression import Limits, gunzip
from functions.validation import ValidationOptions, core, split_by_user, validate_csv
from functions.validation.capacity import available_cpus

DAY = 86_400
#: Leanplum's limit per file, as the importer applies it (decimal megabytes, a margin).
PART_BYTES = 100_000_000


def write_shard(path: Path, target_bytes: int) -> int:
    """A BigQuery-style gzipped CSV shard: header, ``UTC`` timestamps, a few parameters."""
    now = int(time.time()) - DAY
    stamps = [
        f"{datetime.fromtimestamp(now - s, UTC):%Y-%m-%d %H:%M:%S} UTC" for s in range(300_000)
    ]
    rows = 0
    written = 0
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6) as out:
        out.write("user_id,event_name,event_time,params.plan,params.country,params.screen\n")
        while written < target_bytes:
            lines = []
            for i in range(rows, rows + 20_000):
                lines.append(
                    f"user-{i * 7919 % 400_000:06d},screen_view,"
                    f"{stamps[i % 300_000]},pro,DE,screen_{i % 37}\n"
                )
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk)
            rows += len(lines)
    return rows


def run_kind(kind: str, shard: str, work: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The ingest's steps on the shard in a fresh process, as ``kind`` (copy: the floor)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
    timings: dict[str, float] = {}
    with MemoryWatcher(str(tmp), period=0.2) as watcher:
        step = time.perf_counter()
        decoded = tmp / "decoded.csv"
        size = gunzip(Path(shard), decoded, Limits(2_000_000_000, 1000))
        timings["decompress_s"] = time.perf_counter() - step
        step = time.perf_counter()
        normalized, rejected = tmp / "normalized.csv", tmp / "rejected.csv"
        if kind == "copy":
            plain_copy(str(decoded), str(normalized))
            timings["validate_s"] = time.perf_counter() - step
            result: dict[str, object] = {}
        else:
            core.FAST = kind != "reference"
            if kind == "parallel":
                core.COLUMNAR_MIN_BYTES = 1 << 62
            now = datetime.now(UTC).replace(microsecond=0)
            workers = available_cpus() if kind == "parallel" else None
            options = ValidationOptions(now=now, temp_dir=str(tmp), workers=workers)
            with (
                decoded.open("rb") as src,
                normalized.open("wb") as out,
                rejected.open("wb") as rej,
            ):
                report = validate_csv(src, out, rej, options)
            timings["validate_s"] = time.perf_counter() - step
            decoded.unlink()  # the function drops the decoded copy once validated
            step = time.perf_counter()
            handles = []

            def open_part(index: int):  # type: ignore[no-untyped-def]
                handles.append((tmp / f"part-{index:03d}.csv").open("wb"))
                return handles[-1]

            with normalized.open("rb") as src:
                parts = split_by_user(src, PART_BYTES, open_part)
            for handle in handles:
                handle.close()
            timings["split_s"] = time.perf_counter() - step
            result = {
                "rows": report.rows_total, "accepted": report.accepted,
                "rows_written": report.rows_written, "parts": len(parts),
                "largest_part_bytes": max(p.bytes for p in parts),
            }  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    result.update(
        decompressed_bytes=size,
        seconds={k: round(v, 1) for k, v in timings.items()},
        validate_mb_per_s=round(size / 1e6 / timings["validate_s"], 1),
        peak_rss_mb=round(watcher.peak_rss / 1e6),
        peak_tmp_mb=round(watcher.peak_temp / 1e6),
        peak_total_mb=round(watcher.peak_total / 1e6),
    )
    queue.put(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=1_000_000_000)
    parser.add_argument("--keep", type=Path, help="where to keep the generated shard")
    parser.add_argument(
        "--kinds",
        default="copy,reference,fast,parallel",
        help="copy, reference, fast (the default path) and/or parallel (workers forced)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shard-bench-"))
    shard = (args.keep or work) / "shard-000000000000.csv.gz"
    if not shard.exists():
        write_shard(shard, args.bytes)
    started = time.perf_counter()
    with gzip.open(shard, "rb") as plain:
        while plain.read(8 * 1024 * 1024):
            pass
    results: dict[str, object] = {
        "shard_gzip_bytes": shard.stat().st_size,
        "baseline_gzip_read_s": round(time.perf_counter() - started, 1),
    }
    context = multiprocessing.get_context("spawn")
    for kind in args.kinds.split(","):
        queue: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
        child = context.Process(target=run_kind, args=(kind, str(shard), str(work), queue))
        child.start()
        results[kind] = queue.get()
        child.join()
    copy = results.get("copy")
    for kind in ("reference", "fast", "parallel"):
        found = results.get(kind)
        if isinstance(copy, dict) and isinstance(found, dict):
            results[f"{kind}_validate_ratio_to_plain_copy"] = round(
                found["validate_mb_per_s"] / copy["validate_mb_per_s"], 2
            )
    print(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
