"""How each setting's value is checked: one small function per shape of value.

Kept apart from :mod:`functions.config` (the table of settings and the two configurations) so
that the table reads as a table. Each check returns ``None`` for a good value or the words that
finish "NAME=value ..." in the error a deployment sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from functions.validation.options import parse_column_map

TOPIC_RE = re.compile(r"^projects/[^/]+/topics/[^/]+$")
QUEUE_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/queues/[^/]+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Cloud Storage bucket names: 3-63 characters (222 with dots), lowercase, digits, - _ .
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def check_regex(pattern: re.Pattern[str], shape: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"must look like {shape}"

    return check


def check_bucket_or_none(value: str) -> str | None:
    return None if value == "none" or BUCKET_RE.match(value) else "must be a bucket name or none"


def check_object_prefix(value: str) -> str | None:
    if value.startswith("/") or not value.endswith("/") or len(value.encode()) > 256:
        return "must be a folder such as leanplum-importer/ (ends with /, no leading /)"
    return None


def check_url(value: str) -> str | None:
    return None if value.startswith(("http://", "https://")) else "must be an http(s) URL"


def check_choice(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def check_positive_int(value: str) -> str | None:
    return None if value.isdigit() and int(value) > 0 else "must be a positive integer"


def check_fraction(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number between 0 and 1"
    return None if 0.0 <= number <= 1.0 else "must be a number between 0 and 1"


def check_date(value: str) -> str | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return "must be a date like 2000-01-01"
    return None if day.year >= 1970 else "must be 1970-01-01 or later (Unix time starts there)"


def check_zone(value: str) -> str | None:
    if value == "none":
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be an IANA time zone such as UTC or Europe/Berlin, or none"
    return None


def check_column_map(value: str) -> str | None:
    if value == "none":
        return None
    try:
        parse_column_map(value)
    except ValueError as exc:
        return f"must look like userId=user_pseudo_id,time=event_timestamp ({exc})"
    return None


def none_or(value: str) -> str:
    """Settings whose absence is spelt 'none' (an empty value cannot be set everywhere)."""
    return "" if value == "none" else value
