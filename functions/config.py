"""Configuration of both functions, read only from environment variables.

Why one table: the same names are set by Terraform (``infra/functions.tf``), by the local cloud
(``local_cloud``) and documented in the README; a test compares Terraform's list with
:data:`SETTINGS`, so the three cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from functions.config_checks import none_or
from functions.errors import ConfigError
from functions.leanplum_apps import AppRoutes, parse_app_ids
from functions.settings import (
    ARCHIVE_PREFIX,
    BOTH,
    DEFAULT_LEANPLUM_API_URL,
    EMULATOR_VARIABLES,
    PARTS_PREFIX,
    RECORDS_PREFIX,
    REPORTS_PREFIX,
    RESERVED_PREFIX,
    RESERVED_PREFIXES,
    SETTINGS,
    FunctionName,
    Setting,
    settings_for,
)
from functions.validation.options import parse_column_map, parse_drop_columns

__all__ = [
    "ARCHIVE_PREFIX",
    "BOTH",
    "DEFAULT_LEANPLUM_API_URL",
    "EMULATOR_VARIABLES",
    "PARTS_PREFIX",
    "RECORDS_PREFIX",
    "REPORTS_PREFIX",
    "RESERVED_PREFIX",
    "RESERVED_PREFIXES",
    "SETTINGS",
    "FunctionName",
    "Setting",
    "settings_for",
]


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
    start_queue: str
    max_running_jobs: int
    max_queued_seconds: int
    leanplum_bucket: str | None
    leanplum_bucket_prefix: str
    leanplum_bucket_cleanup: bool
    #: The apps and the prefix routing to them (holds every app's id and key).
    leanplum_app_routes: AppRoutes = field(repr=False)
    leanplum_app_ids: Mapping[str, str]
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
    tasks_queue: str
    poller_url: str
    tasks_service_account: str
    max_running_jobs: int
    max_queued_seconds: int
    leanplum_bucket: str | None
    leanplum_bucket_prefix: str
    leanplum_bucket_cleanup: bool
    leanplum_app_routes: AppRoutes = field(repr=False)
    leanplum_app_ids: Mapping[str, str]
    ingest_lease_seconds: int
    poll_first_delay_seconds: int
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


def _shared(values: dict[str, str], environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings both functions read about job slots, Leanplum's bucket and the apps."""
    try:
        routes = AppRoutes.from_settings(
            default_app_id=values["LEANPLUM_APP_ID"],
            default_dev_key=values["LEANPLUM_DEV_KEY"],
            routes=values["LEANPLUM_APP_ROUTES"],
            app_ids=values["LEANPLUM_APP_IDS"],
            environ=environ,
        )
    except ValueError as exc:
        raise ConfigError(f"LEANPLUM_APP_ROUTES: {exc}") from exc
    return {
        "max_running_jobs": int(values["MAX_RUNNING_JOBS"]),
        "max_queued_seconds": int(values["MAX_QUEUED_SECONDS"]),
        "leanplum_bucket": none_or(values["LEANPLUM_BUCKET"]) or None,
        "leanplum_bucket_prefix": values["LEANPLUM_BUCKET_PREFIX"],
        "leanplum_bucket_cleanup": values["LEANPLUM_BUCKET_CLEANUP"] == "true",
        "leanplum_app_routes": routes,
        "leanplum_app_ids": parse_app_ids(values["LEANPLUM_APP_IDS"]),
    }


def load_ingest_config(environ: Mapping[str, str] | None = None) -> IngestConfig:
    """The ingest function's checked settings (from ``os.environ`` unless given)."""
    env = os.environ if environ is None else environ
    values = _read("ingest", env)
    return IngestConfig(
        leanplum_app_id=values["LEANPLUM_APP_ID"],
        leanplum_dev_key=values["LEANPLUM_DEV_KEY"],
        leanplum_api_url=values["LEANPLUM_API_URL"],
        results_topic=values["RESULTS_TOPIC"],
        state_bucket=values["STATE_BUCKET"],
        tasks_queue=values["TASKS_QUEUE"],
        poller_url=values["POLLER_URL"],
        tasks_service_account=values["TASKS_SERVICE_ACCOUNT"],
        start_queue=values["START_QUEUE"],
        **_shared(values, env),
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
    env = os.environ if environ is None else environ
    values = _read("poller", env)
    return PollerConfig(
        leanplum_app_id=values["LEANPLUM_APP_ID"],
        leanplum_dev_key=values["LEANPLUM_DEV_KEY"],
        leanplum_api_url=values["LEANPLUM_API_URL"],
        results_topic=values["RESULTS_TOPIC"],
        state_bucket=values["STATE_BUCKET"],
        tasks_queue=values["TASKS_QUEUE"],
        poller_url=values["POLLER_URL"],
        tasks_service_account=values["TASKS_SERVICE_ACCOUNT"],
        **_shared(values, env),
        ingest_lease_seconds=int(values["INGEST_LEASE_SECONDS"]),
        poll_first_delay_seconds=int(values["POLL_FIRST_DELAY_SECONDS"]),
        poll_deadline_seconds=int(values["POLL_DEADLINE_SECONDS"]),
        poll_max_attempts=int(values["POLL_MAX_ATTEMPTS"]),
    )


def load_config(function: FunctionName, environ: Mapping[str, str] | None = None) -> Config:
    """One function's checked settings: :func:`load_ingest_config` or :func:`load_poller_config`."""
    if function == "ingest":
        return load_ingest_config(environ)
    return load_poller_config(environ)
