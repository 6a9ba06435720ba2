"""The Eventarc stand-in turns a GCS notification push into the documented CloudEvent."""

from __future__ import annotations

import base64
import json

from local_cloud.cloudevents import FINALIZED
from local_cloud.relay import cloud_event_headers

RESOURCE = {"bucket": "bkt", "name": "incoming/a b.csv", "generation": "17", "md5Hash": "x=="}


def push(event_type: str = "OBJECT_FINALIZE") -> dict[str, object]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(RESOURCE).encode()).decode(),
            "attributes": {
                "eventType": event_type,
                "bucketId": "bkt",
                "objectId": "incoming/a b.csv",
                "eventTime": "2026-11-29T03:15:29Z",
            },
            "messageId": "42",
        },
        "subscription": "projects/local/subscriptions/gcs-to-ingest",
    }


def test_finalize_becomes_a_binary_mode_cloud_event() -> None:
    converted = cloud_event_headers(push())
    assert converted is not None
    headers, data = converted
    assert headers["ce-type"] == FINALIZED == "google.cloud.storage.object.v1.finalized"
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/bkt"
    assert headers["ce-subject"] == "objects/incoming/a%20b.csv"  # the binding's encoding
    assert headers["ce-id"] == "42"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-time"] == "2026-11-29T03:15:29Z"
    assert json.loads(data) == RESOURCE


def test_other_notifications_are_not_relayed() -> None:
    assert cloud_event_headers(push("OBJECT_DELETE")) is None


def test_any_utf8_name_becomes_a_header_http_can_carry() -> None:
    """Before: ``incoming/事件.csv`` put non-Latin-1 text in ``ce-subject``; sending it failed
    and the notification was redelivered forever, never imported."""
    from urllib.parse import unquote

    for name in ("incoming/事件.csv", 'incoming/a"%\t.csv', "incoming/é [x] #1 *?.csv"):
        message = push()["message"]
        assert isinstance(message, dict)
        message["attributes"]["objectId"] = name
        resource = {**RESOURCE, "name": name}
        message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
        converted = cloud_event_headers({"message": message})
        assert converted is not None
        subject = converted[0]["ce-subject"]
        subject.encode("ascii")  # HTTP/1.1 header values: printable ASCII only
        assert unquote(subject) == f"objects/{name}"
