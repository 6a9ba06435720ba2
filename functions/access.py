"""Which buckets and prefixes each function reads and writes: one table, three uses.

Why one table: Cloud Storage IAM conditions (``infra/iam.tf``) must grant each function exactly
what its code touches. A read the grants forget fails only in the cloud (403, the local
emulator has no IAM); a grant the code no longer needs widens what a compromised function can
reach. So the table is declared here, next to the code; the unit tests' in-memory store refuses
any access outside a function's rows (a new read shows up as a failing unit test), and the
Terraform tests compare the rows with the IAM conditions in ``infra/``.

Buckets are named by role: ``landing`` (uploads and their in-place rewrite; the event's bucket)
``state`` (``STATE_BUCKET``: the importer's records, claims, archive, reports, the parts
Leanplum reads, the job slots and the waiting list; no uploader has access to it) and
``leanplum`` (``LEANPLUM_BUCKET``, when set: the bucket Leanplum reads, where only the copies
under ``LEANPLUM_BUCKET_PREFIX`` are the importer's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from functions.settings import (
    ARCHIVE_PREFIX,
    PARTS_PREFIX,
    RECORDS_PREFIX,
    REPORTS_PREFIX,
    SLOTS_PREFIX,
    WAITING_PREFIX,
    FunctionName,
)

BucketRole = Literal["landing", "state", "leanplum"]
#: Stands for the configured ``INCOMING_PREFIX`` (``incoming/`` by default).
INCOMING = "{INCOMING_PREFIX}"
#: Stands for the configured ``LEANPLUM_BUCKET_PREFIX`` (``leanplum-importer/`` by default).
LEANPLUM_COPIES = "{LEANPLUM_BUCKET_PREFIX}"


@dataclass(frozen=True)
class Grant:
    """Objects under ``prefix`` in the ``bucket`` role: read, or read and write."""

    bucket: BucketRole
    prefix: str
    write: bool
    why: str

    def resolve(self, incoming_prefix: str, leanplum_prefix: str = "leanplum-importer/") -> str:
        if self.prefix == INCOMING:
            return incoming_prefix
        return leanplum_prefix if self.prefix == LEANPLUM_COPIES else self.prefix


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
        Grant("state", SLOTS_PREFIX, True, "takes a job slot before starting a job"),
        Grant("state", WAITING_PREFIX, True, "queues a file that found every slot taken"),
        Grant("leanplum", LEANPLUM_COPIES, True, "copies the files for Leanplum, deletes them"),
    ),
    "poller": (
        Grant("landing", INCOMING, False, "checks a queued file was not replaced before it starts"),
        Grant(
            "landing",
            RECORDS_PREFIX,
            False,
            "reads records of imports begun before the state bucket existed, to move them there",
        ),
        Grant("state", RECORDS_PREFIX, True, "moves records to their end, publishes"),
        Grant("state", REPORTS_PREFIX, True, "failed rows"),
        Grant("state", PARTS_PREFIX, False, "joins Leanplum's results to the rows it read"),
        Grant("state", SLOTS_PREFIX, True, "starts queued files, gives slots back"),
        Grant("state", WAITING_PREFIX, True, "takes started files off the waiting list"),
        Grant("leanplum", LEANPLUM_COPIES, True, "deletes the copies once the jobs ended"),
    ),
}


def allows(
    function: FunctionName,
    bucket: BucketRole,
    name: str,
    *,
    write: bool,
    incoming_prefix: str,
    leanplum_prefix: str = "leanplum-importer/",
) -> bool:
    """Whether ``function`` may read (or write) object ``name`` in the ``bucket`` role."""
    return any(
        grant.bucket == bucket
        and name.startswith(grant.resolve(incoming_prefix, leanplum_prefix))
        and (grant.write or not write)
        for grant in ACCESS[function]
    )
