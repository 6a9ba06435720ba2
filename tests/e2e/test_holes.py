"""Holes found by attacking the local pipeline, closed, through the real processes.

Each test names what happened before the fix; the unit tests over the in-memory store prove the
decisions, these prove the faults that live between processes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from .conftest import FAULT_SUMMARY, Pipeline

pytestmark = pytest.mark.e2e

DAY = 86_400


def events(rows: int, event: str = "app_open", iso: bool = False) -> bytes:
    now = int(time.time())
    stamp = (lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))) if iso else str
    lines = ["userId,event,time"]
    lines += [f"user-{i % 3},{event},{stamp(now - DAY - i)}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def by_generation(pipeline: Pipeline, subscription: str, name: str, count: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    deadline = time.monotonic() + 90
    while len(found) < count and time.monotonic() < deadline:
        for message in pipeline.results_for(subscription, name, deadline_s=60):
            found[message["body"]["file"]["generation"]] = message["body"]
    return found


def test_an_overwrite_after_the_job_started_keeps_the_first_versions_result(
    pipeline: Pipeline,
) -> None:
    """Before: Leanplum and the poller read the upload's own name; overwritten after the job
    started, the first version's poll answered 500 on every attempt and it never got a
    result, although its rows were in Leanplum."""
    subscription = pipeline.subscribe_results()
    name = f"incoming/overwritten-{uuid.uuid4().hex[:8]}.csv"
    mark = pipeline.log_mark()
    first = pipeline.upload(name, events(6))
    pipeline.wait_for_message("Started the Leanplum job", name, since=mark)
    second = pipeline.upload(name, events(9, event="reinstall"))
    results = by_generation(pipeline, subscription, name, 2)
    assert results[str(first)]["status"] == "SUCCEEDED"
    assert results[str(first)]["counts"]["leanplum_successes"] == 6
    assert results[str(second)]["status"] == "SUCCEEDED"
    assert results[str(second)]["counts"]["leanplum_successes"] == 9
    assert len(pipeline.jobs_for(name)) == 2
    FAULT_SUMMARY.append({"test": "overwrite_after_job_started", "messages_published": 2,
                          "jobs_started": 2})  # fmt: skip


def test_the_normalised_file_uploaded_again_is_a_duplicate(pipeline: Pipeline) -> None:
    """Before: downloading the rewritten file and uploading it again imported every row twice."""
    subscription = pipeline.subscribe_results()
    name = f"incoming/roundtrip-{uuid.uuid4().hex[:8]}.csv"
    pipeline.upload(name, events(5, iso=True))  # ISO times: rewritten to seconds
    [first] = pipeline.results_for(subscription, name)
    assert first["body"]["status"] == "SUCCEEDED"
    rewritten = pipeline.read(name)
    assert b"T" not in rewritten.split(b"\n", 1)[1]  # the importer's own bytes
    pipeline.upload(name, rewritten)
    [second] = pipeline.results_for(subscription, name)
    assert second["body"]["status"] == "DUPLICATE"
    assert len(pipeline.jobs_for(name)) == 1


def test_a_non_latin_name_goes_through_the_relay(pipeline: Pipeline) -> None:
    """Before: ``ce-subject`` carried the raw name; the relay could not send it and the
    notification was redelivered forever, never imported."""
    subscription = pipeline.subscribe_results()
    name = f"incoming/事件 [{uuid.uuid4().hex[:6]}] #1.csv"
    pipeline.upload(name, events(4))
    [result] = pipeline.results_for(subscription, name)
    assert result["body"]["status"] == "SUCCEEDED"
    assert result["body"]["file"]["object"] == name
