"""How many worker processes a validation run should use: vCPUs really usable, input size.

Kept apart from ``parallel`` so that ``core`` can decide without importing the pool.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from functions.validation.options import ValidationOptions

#: Inputs smaller than this are validated sequentially: starting workers costs ~0.2 s.
MIN_PARALLEL_BYTES = 16 * 1024 * 1024
#: Idle vCPUs (usable ones less the load average) needed to start workers: see ``_busy``.
MIN_IDLE_CPUS = 0.5
#: Never more workers than this, whatever the machine says.
MAX_WORKERS = 4


def available_cpus() -> int:
    """vCPUs this process may really use: affinity, capped by a cgroup CPU quota.

    Why not ``os.cpu_count()``: a Cloud Functions instance of 0.33 or 1 vCPU may see all
    the host's processors, and extra processes would then only compete for one share.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, int(quota)))
    return max(1, count)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 CFS quota), None when unlimited."""
    for path, period_path in (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            with open(path) as handle:
                fields = handle.read().split()
            if period_path is not None:
                with open(period_path) as handle:
                    fields.append(handle.read().strip())
        except OSError:
            continue
        if len(fields) < 2 or fields[0] in ("max", "-1"):
            return None
        try:
            return int(fields[0]) / int(fields[1])
        except (ValueError, ZeroDivisionError):
            return None
    return None


def worker_count(source: BinaryIO, options: ValidationOptions) -> int:
    """Workers for this run; 0 means the sequential path.

    ``options.workers`` decides when set (0 or 1: sequential); else one worker per usable
    vCPU when there are several, they are not kept busy by other processes, and the input
    (a plain file or an in-memory buffer) is at least ``MIN_PARALLEL_BYTES``.
    """
    wanted = options.workers
    if wanted is not None:
        return wanted if wanted > 1 else 0
    cpus = available_cpus()
    if cpus < 2 or remaining_bytes(source) < MIN_PARALLEL_BYTES or _busy(cpus):
        return 0
    return min(cpus, MAX_WORKERS)


def _busy(cpus: int) -> bool:
    """Whether other processes already keep the vCPUs busy (1-minute load average).

    Why: the parallel path spends about 40% more CPU time than the one-process path (cutting
    chunks, pipes, compressed slices). With the vCPUs free it is 1.6 times as fast; with
    another process holding one of two vCPUs, it measured 0.67 times as fast. This process
    itself counts for about one in the load.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cpus - load < MIN_IDLE_CPUS


def remaining_bytes(source: BinaryIO) -> int:
    """Bytes left in a plain file or an in-memory buffer; 0 for anything else (a gzip
    stream would have to be decompressed to the end to answer)."""
    try:
        if isinstance(source, io.BytesIO):
            return source.getbuffer().nbytes - source.tell()
        if isinstance(source, (io.BufferedReader, io.FileIO)):
            return os.fstat(source.fileno()).st_size - source.tell()
    except (OSError, ValueError):
        pass
    return 0
