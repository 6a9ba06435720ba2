"""The Leanplum key appears in no log line, object, report or message of an end-to-end run.

This module runs after the other end-to-end modules of the session (alphabetical order), so
its scan covers their logs too: retries, faults, timeouts, failures and refusals included.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from functions import gcs
from local_cloud.stack import BUCKET, MANUAL_BUCKET, STATE_BUCKET

from .conftest import Pipeline

pytestmark = pytest.mark.e2e


def test_the_key_leaks_nowhere(pipeline: Pipeline) -> None:
    key = pipeline.cloud.leanplum_dev_key
    subscription = pipeline.subscribe_results()
    now = int(time.time())
    accepted = f"incoming/secret-ok-{uuid.uuid4().hex[:8]}.csv"
    refused = f"incoming/secret-refused-{uuid.uuid4().hex[:8]}.csv"
    pipeline.upload(accepted, f"userId,event,time\nu1,open,{now - 60}\n".encode())
    pipeline.upload(refused, b"user,what,when\nu1,open,yesterday\n")
    messages = pipeline.results_for(subscription, accepted)
    messages += pipeline.results_for(subscription, refused)
    assert {m["body"]["status"] for m in messages} == {"SUCCEEDED", "REJECTED"}

    logs = sorted(pipeline.cloud.log_dir.glob("*.log"))
    assert {p.name for p in logs} >= {"ingest-function.log", "poller-function.log"}
    scanned = 0
    for path in logs:
        text = path.read_text(errors="replace")
        scanned += len(text)
        assert key not in text, f"the key appears in {path.name}"
    for bucket in (BUCKET, MANUAL_BUCKET, STATE_BUCKET):
        for blob in gcs.make_storage_client().list_blobs(bucket):
            if blob.size and blob.size < 5_000_000:
                assert key.encode() not in blob.download_as_bytes(), blob.name
    for message in messages:
        assert key not in json.dumps(message)
    assert scanned > 10_000, "too little log output to prove anything"
    # The functions did log their steps as structured JSON: the scan looked at real lines.
    assert pipeline.steps(accepted, "publish", "poller-function")
