"""Configuration of both functions, read only from environment variables.

Why one table: the same names are set by Terraform (``infra/functions.tf``), by the local cloud
(``local_cloud``) and documented in the README; a test compares Terraform's list with
:data:`SETTINGS`, so the three cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from functions.config_checks import (
    BUCKET_RE,
    EMAIL_RE,
    QUEUE_RE,
    TOPIC_RE,
    check_choice,
    check_column_map,
    check_date,
    check_fraction,
    check_positive_int,
    check_regex,
    check_url,
    check_zone,
    none_or,
)
from functions.errors import ConfigError
from functions.validation.options import parse_column_map, parse_drop_columns

FunctionName = Literal["ingest", "poller"]

DEFAULT_LEANPLUM_API_URL = "https://api.leanplum.com/api"

# Objects under this prefix belong to the importer itself (import records, archived originals,
# reports, rejected and failed rows). They are never imported, so the importer's own writes
# cannot loop back into it.
RESERVED_PREFIX = "importer/"
RECORDS_PREFIX = RESERVED_PREFIX + "records/"
ARCHIVE_PREFIX = RESERVED_PREFIX + "archive/"
REPORTS_PREFIX = RESERVED_PREFIX + "reports/"
#: Split parts of files above Leanplum's size limit; deleted by a bucket lifecycle rule once
#: the import has long ended (see ``infra/storage.tf``).
PARTS_PREFIX = RESERVED_PREFIX + "parts/"
#: Every reserved prefix by the name of its Terraform local (``infra/main.tf``); a Terraform test
#: compares the two, and each has a lifecycle rule or a documented reason to be kept.
RESERVED_PREFIXES = {
    "records_prefix": RECORDS_PREFIX,
    "archive_prefix": ARCHIVE_PREFIX,
    "reports_prefix": REPORTS_PREFIX,
    "parts_prefix": PARTS_PREFIX,
}


def _check_prefix(value: str) -> str | None:
    if value.startswith(RESERVED_PREFIX):
        return f"must not be inside the importer's reserved prefix {RESERVED_PREFIX!r}"
    return None


@dataclass(frozen=True)
class Setting:
    """One environment variable: who reads it, whether it must be set, and how it is checked."""

    name: str
    functions: tuple[FunctionName, ...]
    description: str
    default: str | None = None
    secret: bool = False
    check: Callable[[str], str | None] | None = field(default=None, compare=False)

    @property
    def required(self) -> bool:
        return self.default is None


BOTH: tuple[FunctionName, ...] = ("ingest", "poller")

SETTINGS: tuple[Setting, ...] = (
    Setting("LEANPLUM_APP_ID", BOTH, "Leanplum app id."),
    Setting(
        "LEANPLUM_DEV_KEY",
        BOTH,
        "Leanplum development key (multi with createJob, getMultiResults). "
        "In the cloud it comes from Secret Manager.",
        secret=True,
    ),
    Setting(
        "LEANPLUM_API_URL",
        BOTH,
        "Leanplum API endpoint.",
        default=DEFAULT_LEANPLUM_API_URL,
        check=check_url,
    ),
    Setting(
        "RESULTS_TOPIC",
        BOTH,
        "Topic that receives one result message per file (projects/P/topics/T).",
        check=check_regex(TOPIC_RE, "projects/PROJECT/topics/TOPIC"),
    ),
    Setting(
        "STATE_BUCKET",
        BOTH,
        "Private bucket of the importer's records, claims, archive, reports and the parts "
        "Leanplum reads (no uploader has access to it).",
        check=check_regex(BUCKET_RE, "a bucket name"),
    ),
    Setting(
        "TASKS_QUEUE",
        ("ingest",),
        "Cloud Tasks queue of the poller's tasks (projects/P/locations/L/queues/Q).",
        check=check_regex(QUEUE_RE, "projects/PROJECT/locations/LOCATION/queues/QUEUE"),
    ),
    Setting("POLLER_URL", ("ingest",), "HTTPS URL of the poller function.", check=check_url),
    Setting(
        "TASKS_SERVICE_ACCOUNT",
        ("ingest",),
        "Service account whose OIDC token the poller's tasks carry.",
        check=check_regex(EMAIL_RE, "an e-mail address"),
    ),
    Setting(
        "INCOMING_PREFIX",
        ("ingest",),
        "Only objects under this prefix ending in .csv are imported.",
        default="incoming/",
        check=_check_prefix,
    ),
    Setting(
        "OLD_EVENT_POLICY",
        ("ingest",),
        "Events older than 365 days: move (to import time - 360 days), reject or keep.",
        default="move",
        check=check_choice("move", "reject", "keep"),
    ),
    Setting(
        "MAX_FUTURE_SECONDS",
        ("ingest",),
        "Events further in the future than this are rejected.",
        default="600",
        check=check_positive_int,
    ),
    Setting(
        "MAX_REJECTED_FRACTION",
        ("ingest",),
        "A file with a larger share of rejected rows is refused as a whole.",
        default="0.1",
        check=check_fraction,
    ),
    Setting(
        "MAX_DECOMPRESSED_BYTES",
        ("ingest",),
        "A gzip upload that expands past this many bytes is refused (bounds /tmp, which is "
        "memory in Cloud Functions).",
        default="2000000000",
        check=check_positive_int,
    ),
    Setting(
        "MAX_COMPRESSION_RATIO",
        ("ingest",),
        "A gzip upload that expands more than this many times its size is refused as a "
        "possible decompression bomb (CSV exports compress 3 to 30 times).",
        default="1000",
        check=check_positive_int,
    ),
    Setting(
        "NAIVE_TIME_ZONE",
        ("ingest",),
        "Times with no zone (BigQuery DATETIME, naive ISO) are read in this IANA zone; "
        "'none' rejects them.",
        default="none",
        check=check_zone,
    ),
    Setting(
        "DUPLICATE_ROWS",
        ("ingest",),
        "Rows repeated exactly within one file: drop (counted) or keep.",
        default="drop",
        check=check_choice("drop", "keep"),
    ),
    Setting(
        "COLUMN_MAP",
        ("ingest",),
        "Source column of a track argument, e.g. userId=user_pseudo_id,time=event_timestamp; "
        "'none' for no mapping.",
        default="none",
        check=check_column_map,
    ),
    Setting(
        "DROP_COLUMNS",
        ("ingest",),
        "Columns left out of the import (not sent as parameters), comma-separated; 'none'.",
        default="none",
    ),
    Setting(
        "MIN_EVENT_TIME",
        ("ingest",),
        "Events before this UTC date are rejected as placeholders (a time of 0, a 1900 date).",
        default="2000-01-01",
        check=check_date,
    ),
    Setting(
        "DUPLICATE_POLICY",
        ("ingest",),
        "A re-upload of identical bytes: skip (DUPLICATE result, no job) or import.",
        default="skip",
        check=check_choice("skip", "import"),
    ),
    Setting(
        "INGEST_LEASE_SECONDS",
        ("ingest",),
        "How long one delivery owns a file before a redelivery may take over; "
        "set it to the function's timeout.",
        default="540",
        check=check_positive_int,
    ),
    Setting(
        "POLL_FIRST_DELAY_SECONDS",
        ("ingest",),
        "Delay before the first poll of a new job (later polls follow the queue's backoff).",
        default="15",
        check=check_positive_int,
    ),
    Setting(
        "POLL_DEADLINE_SECONDS",
        ("poller",),
        "A job still running this long after it started ends as TIMED_OUT.",
        default="86400",
        check=check_positive_int,
    ),
    Setting(
        "POLL_MAX_ATTEMPTS",
        ("poller",),
        "The queue's max_attempts: the poller's last attempt ends as TIMED_OUT.",
        default="160",
        check=check_positive_int,
    ),
)

# Read by the Google client libraries (or by our Cloud Tasks client factory) to reach the local
# emulators. Never set in the cloud, so never in Terraform.
EMULATOR_VARIABLES = (
    "STORAGE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "CLOUD_TASKS_EMULATOR_HOST",
    "CLOUD_TASKS_EMULATOR_TOKEN_KEY",
)


def settings_for(function: FunctionName) -> tuple[Setting, ...]:
    """The settings one function reads, in table order."""
    return tuple(setting for setting in SETTINGS if function in setting.functions)


@dataclass(frozen=True)
class IngestConfig:
    """The ingest function's settings, exactly those of :func:`settings_for` ``("ingest")``."""

    leanplum_app_id: str
    leanplum_dev_key: str = field(repr=False)
    leanplum_api_url: str
    results_topic: str
    state_bucket: str
    tasks_queue: str
    poller_url: str
    tasks_service_account: str
    incoming_prefix: str
    old_event_policy: str
    max_future_seconds: int
    max_rejected_fraction: float
    max_decompressed_bytes: int
    max_compression_ratio: int
    naive_time_zone: str | None
    duplicate_rows: str
    column_map: dict[str, str]
    drop_columns: frozenset[str]
    min_event_time: date
    duplicate_policy: str
    ingest_lease_seconds: int
    poll_first_delay_seconds: int


@dataclass(frozen=True)
class PollerConfig:
    """The poller function's settings, exactly those of :func:`settings_for` ``("poller")``."""

    leanplum_app_id: str
    leanplum_dev_key: str = field(repr=False)
    leanplum_api_url: str
    results_topic: str
    state_bucket: str
    poll_deadline_seconds: int
    poll_max_attempts: int


Config = IngestConfig | PollerConfig


def _read(function: FunctionName, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The checked values of ``function``'s settings, defaults filled in.

    :raises ConfigError: naming every variable that is missing or malformed, at once, so a
        deployment is fixed in one round rather than one variable per cold start.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    problems: list[str] = []
    for setting in settings_for(function):
        raw = env.get(setting.name, "").strip()
        if not raw:
            if setting.required:
                problems.append(f"{setting.name} is missing ({setting.description})")
                continue
            raw = setting.default or ""
        problem = setting.check(raw) if setting.check else None
        if problem:
            shown = "<secret>" if setting.secret else repr(raw)
            problems.append(f"{setting.name}={shown} {problem}")
        values[setting.name] = raw
    if problems:
        raise ConfigError(f"{function} function configuration: " + "; ".join(problems))
    return values


def load_ingest_config(environ: Mapping[str, str] | None = None) -> IngestConfig:
    """The ingest function's checked settings (from ``os.environ`` unless given)."""
    values = _read("ingest", environ)
    return IngestConfig(
        leanplum_app_id=values["LEANPLUM_APP_ID"],
        leanplum_dev_key=values["LEANPLUM_DEV_KEY"],
        leanplum_api_url=values["LEANPLUM_API_URL"],
        results_topic=values["RESULTS_TOPIC"],
        state_bucket=values["STATE_BUCKET"],
        tasks_queue=values["TASKS_QUEUE"],
        poller_url=values["POLLER_URL"],
        tasks_service_account=values["TASKS_SERVICE_ACCOUNT"],
        incoming_prefix=values["INCOMING_PREFIX"],
        old_event_policy=values["OLD_EVENT_POLICY"],
        max_future_seconds=int(values["MAX_FUTURE_SECONDS"]),
        max_rejected_fraction=float(values["MAX_REJECTED_FRACTION"]),
        max_decompressed_bytes=int(values["MAX_DECOMPRESSED_BYTES"]),
        max_compression_ratio=int(values["MAX_COMPRESSION_RATIO"]),
        naive_time_zone=none_or(values["NAIVE_TIME_ZONE"]) or None,
        duplicate_rows=values["DUPLICATE_ROWS"],
        column_map=parse_column_map(none_or(values["COLUMN_MAP"])),
        drop_columns=parse_drop_columns(none_or(values["DROP_COLUMNS"])),
        min_event_time=date.fromisoformat(values["MIN_EVENT_TIME"]),
        duplicate_policy=values["DUPLICATE_POLICY"],
        ingest_lease_seconds=int(values["INGEST_LEASE_SECONDS"]),
        poll_first_delay_seconds=int(values["POLL_FIRST_DELAY_SECONDS"]),
    )


def load_poller_config(environ: Mapping[str, str] | None = None) -> PollerConfig:
    """The poller function's checked settings (from ``os.environ`` unless given)."""
    values = _read("poller", environ)
    return PollerConfig(
        leanplum_app_id=values["LEANPLUM_APP_ID"],
        leanplum_dev_key=values["LEANPLUM_DEV_KEY"],
        leanplum_api_url=values["LEANPLUM_API_URL"],
        results_topic=values["RESULTS_TOPIC"],
        state_bucket=values["STATE_BUCKET"],
        poll_deadline_seconds=int(values["POLL_DEADLINE_SECONDS"]),
        poll_max_attempts=int(values["POLL_MAX_ATTEMPTS"]),
    )


def load_config(function: FunctionName, environ: Mapping[str, str] | None = None) -> Config:
    """One function's checked settings: :func:`load_ingest_config` or :func:`load_poller_config`."""
    if function == "ingest":
        return load_ingest_config(environ)
    return load_poller_config(environ)
