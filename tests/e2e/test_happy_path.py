"""A CSV dropped in the bucket ends as exactly one Leanplum job and one result message."""

from __future__ import annotations

import csv
import io
import time
import uuid

import pytest

from local_cloud.stack import APP_ID, BUCKET, STATE_BUCKET

from .conftest import Pipeline

pytestmark = pytest.mark.e2e

DAY = 86_400
NOW = int(time.time())
SAMPLE = (
    "userId,event,time,value,currencyCode,params.plan\n"
    f"u1,app_open,{NOW - 3 * DAY},,,free\n"
    f"u2,purchase,{NOW - 2 * DAY},9.99,usd,pro\n"
    f"u1,level_up,{NOW - DAY},,,free\n"
).encode()


def test_one_file_one_job_one_message(pipeline: Pipeline) -> None:
    subscription = pipeline.subscribe_results()
    name = f"incoming/happy-{uuid.uuid4().hex[:8]}.csv"
    generation = pipeline.upload(name, SAMPLE)

    [result] = pipeline.results_for(subscription, name)

    body = result["body"]
    assert result["attributes"] == {"status": body["status"], "bucket": BUCKET, "object": name}
    assert body["status"] == "SUCCEEDED", body
    assert body["file"]["generation"] == str(generation)
    assert body["counts"]["rows_total"] == 3
    assert body["counts"]["rows_sent"] == 3
    assert body["counts"]["leanplum_successes"] == 3
    assert body["counts"]["leanplum_failures"] == 0
    assert body["uris"]["leanplum_results"]
    # Exactly one job, with the documented parameters and the development key.
    jobs = pipeline.multi_for(name)
    assert len(jobs) == 1, jobs
    params = jobs[0]["params"]
    assert params["appId"] == APP_ID
    assert jobs[0]["key_class"] == "development"
    assert params["createJob"] == "true"
    assert params["gcsBucket"] == STATE_BUCKET  # the importer's private copy, not the upload
    assert params["defaultAction"] == "track"
    assert params["apiVersion"] == "1.0.6"
    assert body["jobs"][0]["job_id"] in {j["job_id"] for j in body["jobs"]}
    # Leanplum read a copy only the importer writes; the file in the bucket is the same bytes:
    # normalised, grouped by user.
    assert params["file"].startswith("importer/parts/")
    assert pipeline.read(params["file"], STATE_BUCKET) == pipeline.read(name)
    rows = list(csv.DictReader(io.StringIO(pipeline.read(name).decode())))
    users = [r["userId"] for r in rows]
    assert sorted(users) == ["u1", "u1", "u2"]
    assert users.index("u2") in (0, 2), "each user's rows must be contiguous"
    u1_times = [int(r["time"]) for r in rows if r["userId"] == "u1"]
    assert u1_times == sorted(u1_times)
    assert next(r for r in rows if r["userId"] == "u2")["currencyCode"] == "USD"
    # The rewrite's own event and any redelivery publish nothing more.
    assert pipeline.no_more_results(subscription, name)
    assert len(pipeline.multi_for(name)) == 1


def test_objects_outside_the_incoming_prefix_are_ignored(pipeline: Pipeline) -> None:
    subscription = pipeline.subscribe_results()
    name = f"elsewhere/ignored-{uuid.uuid4().hex[:8]}.csv"
    pipeline.upload(name, SAMPLE)
    assert pipeline.no_more_results(subscription, name, window_s=3)
    assert not pipeline.multi_for(name)
    assert pipeline.read(name) == SAMPLE
