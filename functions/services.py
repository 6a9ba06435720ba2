"""What each function works with, built once per instance by ``main.py`` and handed down.

Why: the Storage, Pub/Sub and Cloud Tasks clients and the Leanplum client used to be module
singletons that tooling reset through private names. Passing them in means unit tests give the
lifecycle an in-memory store, a recording publisher and a fake Leanplum, and the local cloud
and the cloud give it the real clients, through the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from functions.config import IngestConfig, PollerConfig
from functions.leanplum import JobStatus
from functions.lifecycle import Publisher
from functions.objects import ObjectStore
from functions.poll_tasks import PollScheduler
from functions.records import RecordStore


class LeanplumApi(Protocol):
    """The Leanplum calls the importer makes (:class:`functions.leanplum.LeanplumClient`)."""

    def start_import(self, bucket: str, file: str) -> str: ...

    def job_status(self, job_id: str) -> JobStatus: ...

    def download_results(self, url: str) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class IngestServices:
    """The ingest function's configuration and clients."""

    config: IngestConfig
    objects: ObjectStore
    records: RecordStore
    publisher: Publisher
    polls: PollScheduler
    leanplum: Callable[[], LeanplumApi]
    #: Seconds since the epoch, for leases (unit tests move it forward instead of waiting).
    clock: Callable[[], float] = field(default=time.time)


@dataclass(frozen=True)
class PollerServices:
    """The poller function's configuration and clients."""

    config: PollerConfig
    objects: ObjectStore
    records: RecordStore
    publisher: Publisher
    leanplum: Callable[[], LeanplumApi]
    #: Locally, checks the emulator-signed token for an audience (``None`` in the cloud, where
    #: Cloud Run and IAM check the real one before the function runs).
    verify_task_token: Callable[[str, str], str | None] | None = None
