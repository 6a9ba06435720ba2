"""The table of settings: every environment variable either function reads.

Why one table: the same names are set by Terraform (``infra/functions.tf``), by the local cloud
(``local_cloud``) and documented in the README; tests compare Terraform's list and the README's
table with :data:`SETTINGS`, so the three cannot drift apart. :mod:`functions.config` reads
them into each function's configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from functions.config_checks import (
    BUCKET_RE,
    EMAIL_RE,
    QUEUE_RE,
    TOPIC_RE,
    check_bucket_or_none,
    check_choice,
    check_column_map,
    check_date,
    check_fraction,
    check_object_prefix,
    check_positive_int,
    check_regex,
    check_url,
    check_zone,
)
from functions.leanplum_apps import check_app_ids, check_app_routes

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
#: One object per Leanplum job running now (at most ``MAX_RUNNING_JOBS``): live state, so no
#: lifecycle rule; a slot whose owner has ended is taken back by the next file that needs one.
SLOTS_PREFIX = RESERVED_PREFIX + "slots/"
#: One object per file waiting for a slot, named so that listing them gives the upload order.
WAITING_PREFIX = RESERVED_PREFIX + "waiting/"
#: Every reserved prefix by the name of its Terraform local (``infra/main.tf``); a Terraform test
#: compares the two, and each has a lifecycle rule or a documented reason to be kept.
RESERVED_PREFIXES = {
    "records_prefix": RECORDS_PREFIX,
    "archive_prefix": ARCHIVE_PREFIX,
    "reports_prefix": REPORTS_PREFIX,
    "parts_prefix": PARTS_PREFIX,
    "slots_prefix": SLOTS_PREFIX,
    "waiting_prefix": WAITING_PREFIX,
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
        BOTH,
        "Cloud Tasks queue of the poller's tasks (projects/P/locations/L/queues/Q).",
        check=check_regex(QUEUE_RE, "projects/PROJECT/locations/LOCATION/queues/QUEUE"),
    ),
    Setting(
        "POLLER_URL",
        BOTH,
        "HTTPS URL of the poller function (it serves the poll and the start tasks).",
        check=check_url,
    ),
    Setting(
        "TASKS_SERVICE_ACCOUNT",
        BOTH,
        "Service account whose OIDC token the poll and start tasks carry.",
        check=check_regex(EMAIL_RE, "an e-mail address"),
    ),
    Setting(
        "START_QUEUE",
        ("ingest",),
        "Cloud Tasks queue where files wait for a free job slot "
        "(projects/P/locations/L/queues/Q); its retry settings pace the waiting.",
        check=check_regex(QUEUE_RE, "projects/PROJECT/locations/LOCATION/queues/QUEUE"),
    ),
    Setting(
        "MAX_RUNNING_JOBS",
        BOTH,
        "Leanplum jobs running at once, across all files and instances (one per part).",
        default="5",
        check=check_positive_int,
    ),
    Setting(
        "MAX_QUEUED_SECONDS",
        BOTH,
        "A file still waiting for a job slot this long after it was queued ends TIMED_OUT.",
        default="259200",
        check=check_positive_int,
    ),
    Setting(
        "LEANPLUM_BUCKET",
        BOTH,
        "Bucket Leanplum reads (the one its support gives you): the files Leanplum imports "
        "are copied there and multi names it; 'none' keeps them in STATE_BUCKET.",
        default="none",
        check=check_bucket_or_none,
    ),
    Setting(
        "LEANPLUM_BUCKET_PREFIX",
        BOTH,
        "Prefix of the copies in LEANPLUM_BUCKET.",
        default="leanplum-importer/",
        check=check_object_prefix,
    ),
    Setting(
        "LEANPLUM_BUCKET_CLEANUP",
        BOTH,
        "Delete the copies in LEANPLUM_BUCKET once the file's jobs have ended: true or false.",
        default="true",
        check=check_choice("true", "false"),
    ),
    Setting(
        "LEANPLUM_APP_ROUTES",
        BOTH,
        "Which Leanplum app each incoming prefix goes to, e.g. "
        "incoming/dev/=dev,incoming/prod/=prod,incoming/check/=dry-run (dry-run: validated and "
        "reported, never sent); the longest matching prefix wins, other files go to "
        "LEANPLUM_APP_ID; 'none' sends everything there.",
        default="none",
        check=check_app_routes,
    ),
    Setting(
        "LEANPLUM_APP_IDS",
        BOTH,
        "The app id of each app named in LEANPLUM_APP_ROUTES, e.g. dev=app_123,prod=app_456; "
        "each app's development key is in LEANPLUM_DEV_KEY_<APP> (from its own secret).",
        default="none",
        check=check_app_ids,
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
        BOTH,
        "How long one delivery (or one start attempt of a queued file) owns a file before "
        "another may take over; set it to the functions' timeout.",
        default="540",
        check=check_positive_int,
    ),
    Setting(
        "POLL_FIRST_DELAY_SECONDS",
        BOTH,
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
