"""Which buckets and prefixes each function reads and writes: one table, three uses.

Why one table: Cloud Storage IAM conditions (``infra/iam.tf``) must grant each function exactly
what its code touches. A read the grants forget fails only in the cloud (403, the local
emulator has no IAM); a grant the code no longer needs widens what a compromised function can
reach. So the table is declared here, next to the code; the unit tests' in-memory store refuses
any access outside a function's rows (a new read shows up as a failing unit test), and the
Terraform tests compare the rows with the IAM conditions in ``infra/``.

Buckets are named by role: ``landing`` (uploads and their in-place rewrite; the event's bucket)
and ``state`` (``STATE_BUCKET``: the importer's records, claims, archive, reports and the parts
Leanplum reads; no uploader has access to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from functions.config import (
    ARCHIVE_PREFIX,
    PARTS_PREFIX,
    RECORDS_PREFIX,
    REPORTS_PREFIX,
    FunctionName,
)

BucketRole = Literal["landing", "state"]
#: Stands for the configured ``INCOMING_PREFIX`` (``incoming/`` by default).
INCOMING = "{INCOMING_PREFIX}"


@dataclass(frozen=True)
class Grant:
    """Objects under ``prefix`` in the ``bucket`` role: read, or read and write."""

    bucket: BucketRole
    prefix: str
    write: bool
    why: str

    def resolve(self, incoming_prefix: str) -> str:
        return incoming_prefix if self.prefix == INCOMING else self.prefix


ACCESS: dict[FunctionName, tuple[Grant, ...]] = {
    "ingest": (
        Grant("landing", INCOMING, True, "reads the upload, rewrites it in place"),
        Grant(
            "landing",
            RECORDS_PREFIX,
            False,
            "reads records of imports begun before the state bucket existed, to move them there",
        ),
        Grant("state", RECORDS_PREFIX, True, "import records and content claims"),
        Grant("state", ARCHIVE_PREFIX, True, "keeps the original upload"),
        Grant("state", REPORTS_PREFIX, True, "validation report and rejected rows"),
        Grant("state", PARTS_PREFIX, True, "the files Leanplum reads"),
    ),
    "poller": (
        Grant(
            "landing",
            RECORDS_PREFIX,
            False,
            "reads records of imports begun before the state bucket existed, to move them there",
        ),
        Grant("state", RECORDS_PREFIX, True, "moves records to their end, publishes"),
        Grant("state", REPORTS_PREFIX, True, "failed rows"),
        Grant("state", PARTS_PREFIX, False, "joins Leanplum's results to the rows it read"),
    ),
}


def allows(
    function: FunctionName,
    bucket: BucketRole,
    name: str,
    *,
    write: bool,
    incoming_prefix: str,
) -> bool:
    """Whether ``function`` may read (or write) object ``name`` in the ``bucket`` role."""
    return any(
        grant.bucket == bucket
        and name.startswith(grant.resolve(incoming_prefix))
        and (grant.write or not write)
        for grant in ACCESS[function]
    )
