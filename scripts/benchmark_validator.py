"""Benchmark the validator against a plain csv.reader -> csv.writer copy of the same file.

Usage::

    python scripts/benchmark_validator.py [--rows N] [--out-dir DIR] [--repeat N]

Generates a realistic ~100 MB CSV (``--rows``, default 1,000,000; three parameters, mixed time
formats, 1% bad rows) and a file one tenth of that size, then for each file measures in child
processes (so peak RSS is per run): the plain copy (the floor) and the validator. Prints a
table and writes ``benchmark.json`` into ``--out-dir``. It is a benchmark, never a test.

Four kinds are measured on each file: ``copy`` (the floor), ``reference`` (the one-process
reference path, ``core.FAST = False``), ``fast`` (the default: the columnar path, Polars,
for plain files, which both generated files are) and ``parallel`` (the worker processes of
the pure-Python fast path, forced, one per usable vCPU, columnar path off). Memory is counted
honestly: the peak, at one moment, of the RSS of the whole process tree plus the bytes of
its temporary files (spill files included, though unlinked), since ``/tmp`` is memory in
Cloud Functions. The cold import time of the function's modules is measured in fresh
interpreters.

Throughput is timed after the run's modules are imported (a warm instance has them); the
import's seconds are reported beside it (``import s``) with the ratio the run would have had
paying them (``ratio+i``), and the cold import of each module in fresh interpreters.

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
import subprocess
import sys
import tempfile
import threading
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


def run_validator(source: str, target: str, kind: str, temp_dir: str) -> int:
    """One validator run, as the ingest function does it (``reference``: the one-process
    reference path; ``fast``: the default, which chooses; ``parallel``: workers forced)."""
    from functions.validation import ValidationOptions, core, validate_csv
    from functions.validation.capacity import available_cpus

    core.FAST = kind != "reference"
    if kind == "parallel":
        core.COLUMNAR_MIN_BYTES = 1 << 62
    workers = available_cpus() if kind == "parallel" else None
    options = ValidationOptions(now=NOW, temp_dir=temp_dir, workers=workers)
    with open(source, "rb") as src, open(target, "wb") as dst, open(os.devnull, "wb") as rej:
        report = validate_csv(src, dst, rej, options)
    return report.rows_total


class MemoryWatcher:
    """Samples the process tree's RSS and the bytes of its files under ``temp_dir``.

    Temporary files count because ``/tmp`` is memory in Cloud Functions; spill files are
    unlinked at once, so they are found through the open descriptors of the tree. The
    peak of the sum is taken at one moment, not as the sum of two peaks.
    """

    def __init__(self, temp_dir: str, period: float = 0.02) -> None:
        import psutil

        self._me = psutil.Process()
        self._temp_dir = temp_dir
        self._period = period
        self.peak_rss = self.peak_temp = self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        rss = temp = 0
        seen: set[tuple[int, int]] = set()
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
            temp += self._temp_bytes(proc.pid, seen)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_temp = max(self.peak_temp, temp)
        self.peak_total = max(self.peak_total, rss + temp)

    def _temp_bytes(self, pid: int, seen: set[tuple[int, int]]) -> int:
        """Bytes of the files under ``temp_dir``: those on disk, and those ``pid`` holds open
        though unlinked (``psutil.open_files`` leaves those out)."""
        total = 0
        if pid == self._me.pid:  # files on disk under temp_dir, open or not, counted once
            for found in Path(self._temp_dir).rglob("*"):
                try:
                    info = found.stat()
                except OSError:
                    continue
                if found.is_file() and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return total
        for fd in descriptors:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if not os.readlink(path).startswith(self._temp_dir):
                    continue
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._sample()

    def __enter__(self) -> MemoryWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _import_modules(kind: str, source: str) -> float:
    """Import what the run needs, as a warm instance holds it; return the seconds it took.

    Throughput is measured after this, so that a 0.3 s import does not count as 3% of a
    file's time: the cold import is reported apart (``cold_import_s``) and paid once per
    instance, not per file.
    """
    start = time.perf_counter()
    if kind != "copy":
        from functions.validation import core

        if kind == "fast" and os.path.getsize(source) >= core.COLUMNAR_MIN_BYTES:
            import functions.validation.columnar  # noqa: F401
    return time.perf_counter() - start


def _child(kind: str, source: str, target: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    temp_dir = tempfile.mkdtemp(prefix=f"lp-bench-{kind}-")
    with MemoryWatcher(temp_dir) as watcher:
        imported = _import_modules(kind, source)
        start = time.perf_counter()
        if kind == "copy":
            rows = plain_copy(source, target)
        else:
            rows = run_validator(source, target, kind, temp_dir)
        elapsed = time.perf_counter() - start
    os.rmdir(temp_dir)
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    queue.put(
        {
            "rows": rows,
            "seconds": elapsed,
            "import_seconds": imported,
            "peak_rss_mb": watcher.peak_rss / 1e6,
            "peak_temp_mb": watcher.peak_temp / 1e6,
            "peak_total_mb": watcher.peak_total / 1e6,
            "cpu_seconds": cpu,
        }
    )


def measure(kind: str, source: Path, out_dir: Path) -> dict[str, float]:
    """Run one measurement in a fresh child process (spawned: its memory is its own)."""
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


def cold_import_seconds(module: str, runs: int = 5) -> float:
    """Fastest of ``runs`` fresh interpreters importing ``module`` (what a cold start pays)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    best = float("inf")
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            return float("nan")
        best = min(best, float(done.stdout.strip()))
    return best


KINDS = ("copy", "reference", "fast", "parallel")
#: Distributions the columnar path added to requirements.txt.
ADDED_DISTRIBUTIONS = ("polars", "polars-runtime-32")


def installed_megabytes(names: tuple[str, ...] = ADDED_DISTRIBUTIONS) -> float:
    """Bytes on disk of the files these distributions installed (what the image grows by)."""
    from importlib import metadata

    total = 0
    for name in names:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        for file in files:
            located = Path(str(file.locate()))
            if located.is_file():
                total += located.stat().st_size
    return total / 1e6


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
    from functions.validation.capacity import available_cpus

    results: dict[str, object] = {
        "now": NOW.isoformat(),
        "python": sys.version.split()[0],
        "time_formats": args.time_formats,
        "usable_cpus": available_cpus(),
        "load_average_at_start": os.getloadavg()[0],
    }
    print(f"usable vCPUs {available_cpus()}, 1-minute load average {os.getloadavg()[0]:.1f}")
    print(
        f"{'file':<6} {'rows':>9} {'MB':>6} {'kind':<9} | {'MB/s':>6} {'ratio':>5} {'CPU s':>6} | "
        f"{'import s':>8} {'ratio+i':>7} | {'RSS MB':>7} {'temp MB':>7} {'sum MB':>7}"
    )
    for label, rows in (("small", max(1, args.rows // 10)), ("large", args.rows)):
        source = out_dir / f"input-{label}.csv"
        size = generate(source, rows, warehouse=args.time_formats == "warehouse")
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        for _ in range(max(1, args.repeat)):
            for kind in KINDS:  # interleaved, so that a busy spell hits all alike
                runs[kind].append(measure(kind, source, out_dir))
        best = {kind: min(found, key=lambda run: run["seconds"]) for kind, found in runs.items()}
        entry: dict[str, object] = {"runs": args.repeat, "rows": rows, "bytes": size}
        for kind in KINDS:
            run = best[kind]
            run["ratio_to_plain_copy"] = run["mb_per_s"] / best["copy"]["mb_per_s"]
            # The same ratio had this run paid its imports too (a cold instance's first file).
            run["ratio_with_import"] = best["copy"]["seconds"] / (
                run["seconds"] + run["import_seconds"]
            )
            entry[kind] = run
            print(
                f"{label:<6} {rows:>9} {size / 1e6:>6.1f} {kind:<9} | {run['mb_per_s']:>6.1f}"
                f" {run['ratio_to_plain_copy']:>5.2f} {run['cpu_seconds']:>6.1f} |"
                f" {run['import_seconds']:>8.2f} {run['ratio_with_import']:>7.2f} |"
                f" {run['peak_rss_mb']:>7.1f}"
                f" {run['peak_temp_mb']:>7.1f} {run['peak_total_mb']:>7.1f}"
            )
        results[label] = entry
    imports = {
        module: cold_import_seconds(module)
        for module in (
            "functions.validation",
            "functions.ingest",
            "functions.validation.columnar",
            "functions.validation.workers",
        )
    }
    results["cold_import_s"] = imports
    for module, seconds in imports.items():
        print(f"cold import {module}: {seconds * 1000:.0f} ms")
    added = installed_megabytes()
    results["installed_mb_added"] = round(added, 1)
    print(
        f"installed size added by new dependencies ({', '.join(ADDED_DISTRIBUTIONS)}):"
        f" {added:.0f} MB"
    )
    report = out_dir / "benchmark.json"
    report.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
