"""Names of the objects the importer writes for an upload: records, claims, archive, reports,
parts. One place derives them all, so that every one fits Cloud Storage's limits.

Why: an object name may be up to 1,024 bytes of UTF-8, and each derived name adds a prefix
(``importer/records/``) and a suffix (``/<generation>.json``, ``/sha256-<digest>.json``). Derived
from a name near the limit they would be refused, before any record exists, and Eventarc would
redeliver the event for a day with no result. A name too long to carry stands in as a digest
(``~long/<sha256 of the name>``); the record keeps the name itself.
"""

from __future__ import annotations

import hashlib

from functions.config import ARCHIVE_PREFIX, PARTS_PREFIX, RECORDS_PREFIX, REPORTS_PREFIX

__all__ = ["PARTS_PREFIX"]

#: Cloud Storage's limit on an object name, in bytes of UTF-8.
MAX_OBJECT_NAME_BYTES = 1024
#: The longest prefix and suffix a derived name adds (``importer/records/`` and
#: ``/sha256-<64 hex>.json``), with a margin for the generation's digits.
_LONGEST_ADDITION_BYTES = len(RECORDS_PREFIX) + len("/sha256-.json") + 64 + 16
#: Where a name too long to carry is replaced by its digest; ``~`` sorts after letters.
LONG_NAME_DIR = "~long/"


def object_key(object_name: str) -> str:
    """The upload's name as it appears inside derived names: itself, or its digest."""
    if len(object_name.encode("utf-8")) + _LONGEST_ADDITION_BYTES <= MAX_OBJECT_NAME_BYTES:
        return object_name
    return LONG_NAME_DIR + hashlib.sha256(object_name.encode("utf-8")).hexdigest()


def record_name(object_name: str, generation: int) -> str:
    """The import record: ``importer/records/<object>/<generation>.json``."""
    return f"{RECORDS_PREFIX}{object_key(object_name)}/{generation}.json"


def records_dir(object_name: str) -> str:
    """Where every record and content claim of one object name lives."""
    return f"{RECORDS_PREFIX}{object_key(object_name)}/"


#: Content claims sit beside the records of their object name, told apart by this prefix.
CLAIM_PREFIX = "sha256-"


def content_claim_name(object_name: str, sha256: str) -> str:
    """The create-only object that says which generation owns these bytes under this name."""
    return f"{records_dir(object_name)}{CLAIM_PREFIX}{sha256}.json"


def is_content_claim(name: str) -> bool:
    """Whether an object under the records prefix is a content claim, not a record."""
    return name.rsplit("/", 1)[-1].startswith(CLAIM_PREFIX)


def archive_name(object_name: str, generation: int) -> str:
    """The original upload, kept: ``importer/archive/<object>/<generation>.csv``."""
    return f"{ARCHIVE_PREFIX}{object_key(object_name)}/{generation}.csv"


def reports_dir(object_name: str, generation: int) -> str:
    """Reports of one version: report.json, rejected-rows.csv, failed-rows.csv."""
    return f"{REPORTS_PREFIX}{object_key(object_name)}/{generation}/"


def parts_dir(object_name: str, generation: int) -> str:
    """The files Leanplum reads for one version: part-001.csv, part-002.csv, ..."""
    return f"{PARTS_PREFIX}{object_key(object_name)}/{generation}/"
