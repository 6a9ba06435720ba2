"""The CloudEvent Eventarc delivers for a Cloud Storage ``OBJECT_FINALIZE``, built in one place.

A 2nd-gen function triggered by a bucket receives the event in binary mode: the object resource
as JSON data and the CloudEvent attributes as ``ce-*`` headers. The local relay (the Eventarc
stand-in) and the tests that call the ingest function directly must send the same headers, so
they all take them from :func:`storage_finalized_headers`.
"""

from __future__ import annotations

import string
import uuid
from urllib.parse import quote

FINALIZED = "google.cloud.storage.object.v1.finalized"
# The CloudEvents HTTP binding (3.1.3.2) sends printable ASCII as is, except space, '"' and '%',
# and percent-encodes the UTF-8 bytes of everything else.
_SAFE = "".join(c for c in string.printable if c.isprintable() and c not in ' "%')


def header_value(value: str) -> str:
    """``value`` as the binding puts it in a ``ce-*`` header (object names may be any UTF-8)."""
    return quote(value, safe=_SAFE, encoding="utf-8")


def storage_finalized_headers(
    bucket: str, name: str, event_id: str | None = None, time: str | None = None
) -> dict[str, str]:
    """Binary-mode headers of the finalize event of ``gs://bucket/name``.

    ``event_id`` defaults to a fresh random id; ``ce-time`` is sent only when ``time`` (RFC 3339)
    is given.
    """
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex if event_id is None else event_id,
        "ce-type": FINALIZED,
        "ce-source": header_value(f"//storage.googleapis.com/projects/_/buckets/{bucket}"),
        "ce-subject": header_value(f"objects/{name}"),
    }
    if time is not None:
        headers["ce-time"] = time
    headers["ce-bucket"] = bucket
    return headers
