"""Measure the ingest function's work on one BigQuery-sized shard: 1 GB of CSV, gzipped.

Why: exporters write shards of up to 1 GB of logical data (about 150 MB gzipped), and the
ingest function must decompress, validate and split one inside its limits (540 s, its memory,
and ``/tmp``, which is memory in Cloud Functions). This script runs the same code the function
runs on such a shard, in one process, and reports time per step, peak RSS and the most bytes
held in temporary files at once, beside a plain ``gzip`` read of the same shard as a baseline
measured in the same run (ratios, not absolute speed, are what compare across machines).

Usage: ``python scripts/benchmark_shard.py [--bytes 1000000000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from functions.compression import Limits, gunzip
from functions.validation import ValidationOptions, split_by_user, validate_csv

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


class TmpWatcher:
    """Samples the bytes held under a directory: what ``/tmp`` would hold in memory."""

    def __init__(self, root: Path) -> None:
        self.root, self.peak, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            total = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
            self.peak = max(self.peak, total)

    def __enter__(self) -> TmpWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=1_000_000_000)
    parser.add_argument("--keep", type=Path, help="where to keep the generated shard")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shard-bench-"))
    shard = (args.keep or work) / "shard-000000000000.csv.gz"
    rows = write_shard(shard, args.bytes) if not shard.exists() else -1
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with gzip.open(shard, "rb") as plain:
        while plain.read(8 * 1024 * 1024):
            pass
    timings["baseline_gzip_read_s"] = time.perf_counter() - started
    tmp = work / "tmp"
    tmp.mkdir()
    with TmpWatcher(tmp) as watcher:
        step = time.perf_counter()
        decoded = tmp / "decoded.csv"
        size = gunzip(shard, decoded, Limits(2_000_000_000, 1000))
        timings["decompress_s"] = time.perf_counter() - step
        step = time.perf_counter()
        normalized, rejected = tmp / "normalized.csv", tmp / "rejected.csv"
        options = ValidationOptions(now=datetime.now(UTC).replace(microsecond=0), temp_dir=str(tmp))
        with decoded.open("rb") as src, normalized.open("wb") as out, rejected.open("wb") as rej:
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
    total = sum(v for k, v in timings.items() if not k.startswith("baseline"))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "shard_gzip_bytes": shard.stat().st_size, "decompressed_bytes": size,
        "rows": report.rows_total if rows < 0 else rows, "accepted": report.accepted,
        "rows_written": report.rows_written, "parts": len(parts),
        "largest_part_bytes": max(p.bytes for p in parts),
        "seconds": {k: round(v, 1) for k, v in timings.items()}, "seconds_total": round(total, 1),
        "ratio_to_gzip_read": round(total / timings["baseline_gzip_read_s"], 1),
        "peak_rss_mb": round(peak_rss_mb), "peak_tmp_mb": round(watcher.peak / 1e6),
    }, indent=1))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
