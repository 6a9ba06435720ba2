"""Content claims: identical bytes under one object name reach Leanplum once.

Why: an exporter that re-runs, or a person who re-uploads a file (or the importer's own
normalised rewrite of it, downloaded and uploaded again), would otherwise import every row a
second time, since Leanplum's ``track`` has no idempotency key. Each version that goes on to a
job claims the sha256 of the bytes it received *and* of the bytes it will send, with a
create-only object naming its generation.

A claim is trusted only when the record it names exists, holds that very digest, and may have
reached Leanplum: anyone who can write the bucket could plant a claim for a file that will be
uploaded later, and a version that was rejected, superseded or failed before its job started
sent nothing. An untrusted claim is taken over by compare-and-swap.
"""

from __future__ import annotations

import json

from functions.errors import StaleGenerationError
from functions.import_record import ImportRecord
from functions.lifecycle import State
from functions.logs import info, warning
from functions.naming import content_claim_name
from functions.objects import write_once
from functions.services import IngestServices

JSON = "application/json"


def may_have_reached_leanplum(owner: ImportRecord) -> bool:
    """Whether a version's bytes may be in Leanplum, or will be (it is still in progress)."""
    if owner.state in (State.REJECTED, State.SUPERSEDED, State.DUPLICATE, State.DRY_RUN):
        return False
    if owner.state == State.FAILED:
        return bool(owner.job_ids) or owner.reached(State.JOB_STARTING)
    return True


def duplicate_owner(record: ImportRecord, sha256: str, services: IngestServices) -> int | None:
    """Claim ``sha256`` for ``record``'s object name; the owner's generation if another version
    that may have reached Leanplum holds it, else ``None`` (the claim is now ours)."""
    objects, bucket = services.objects, services.config.state_bucket
    name = content_claim_name(record.object, sha256)
    body = json.dumps({"generation": record.generation}).encode()
    try:
        write_once(objects, bucket, name, body, if_generation_match=0, content_type=JSON)
        return None
    except StaleGenerationError:
        pass
    found = objects.read(bucket, name)
    if found is None:  # deleted since: try once more from scratch on the next delivery
        raise StaleGenerationError(f"content claim {name} vanished while it was read")
    data, claim = found
    owner_generation = _claimed_generation(data)
    if owner_generation == record.generation:
        return None
    owner = (
        services.records.load(bucket, record.object, owner_generation)
        if owner_generation is not None
        else None
    )
    trusted = (
        owner is not None
        and sha256 in (owner.sha256, owner.output_sha256)
        and may_have_reached_leanplum(owner)
    )
    if not trusted:
        if owner is None or sha256 not in (owner.sha256, owner.output_sha256):
            warning("A content claim names no version that holds these bytes: taken over",
                    step="duplicate", claim=name, **record.fields)  # fmt: skip
        write_once(objects, bucket, name, body, if_generation_match=claim.generation,
                   content_type=JSON)  # fmt: skip
        return None
    info("Duplicate content", step="duplicate", duplicate_of=str(owner_generation),
         **record.fields)  # fmt: skip
    return owner_generation


def _claimed_generation(data: bytes) -> int | None:
    try:
        value = json.loads(data)["generation"]
        return int(value)
    except (ValueError, KeyError, TypeError):
        return None
