"""Benchmark the validator against a plain csv.reader -> csv.writer copy of the same file.

Usage::

    python scripts/benchmark_validator.py [--rows N] [--out-dir DIR]

Generates a realistic ~100 MB CSV (``--rows``, default 1,000,000; three parameters, mixed time
formats, 1% bad rows) and a file one tenth of that size, then for each file measures in child
processes (so peak RSS is per run): the plain copy (the floor) and the validator. Prints a
table and writes ``benchmark.json`` into ``--out-dir``. It is a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import csv
import io
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
EVENTS = ["Purchase", "Level Up", "Open App", "Add To Cart", "Share", "Tutorial Complete",
          "Subscribe", "View Item"]
PLANS = ["free", "basic", "pro", "enterprise"]
SOURCES = ["organic", "facebook/spring_sale", "google_ads/brand", "referral/friend", "email/weekly_digest"]
CURRENCIES = ["USD", "EUR", "gbp", "JPY", "BRL"]
HEADER = ["userId", "event", "time", "value", "currencyCode", "params.plan", "source",
          "params.item_count"]


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


def generate(path: Path, rows: int, seed: int = 1) -> int:
    """Write a CSV of ``rows`` data rows; return its size in bytes."""
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
                _time_text(rng, moment),
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
    with open(source, encoding="utf-8", newline="") as src, \
            open(target, "w", encoding="utf-8", newline="") as dst:
        writer = csv.writer(dst)
        for row in csv.reader(src):
            writer.writerow(row)
            count += 1
    return count
