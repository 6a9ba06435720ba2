"""Bursts under the job cap, Leanplum's own bucket, several apps and dry runs, end to end.

One local cloud of its own, configured as a team with a development app and a checked prefix
would configure it: ``MAX_RUNNING_JOBS=3``, ``LEANPLUM_BUCKET`` naming the bucket that stands
for Leanplum's (the simulator may read no other), ``incoming/second/`` routed to a second app
and ``incoming/check/`` to a dry run. Everything goes through real processes: the emulators,
the relay, both functions and the simulator, which records the peak of jobs running at once.
"""

from __future__ import annotations

import functools
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local_cloud.processes import wait_for
from local_cloud.stack import (
    LEANPLUM_BUCKET_NAME,
    MANUAL_BUCKET,
    SECOND_APP,
    SECOND_APP_ID,
    STATE_BUCKET,
    LocalCloud,
    Settings,
)

from .conftest import Pipeline
from .test_faults import events_csv, summarise, upload_to

pytestmark = pytest.mark.e2e

CAP = 3
ENV = {
    "MAX_RUNNING_JOBS": str(CAP),
    "LEANPLUM_BUCKET": LEANPLUM_BUCKET_NAME,
    "LEANPLUM_APP_ROUTES": f"incoming/{SECOND_APP}/={SECOND_APP},incoming/check/=dry-run",
    "POLL_DEADLINE_SECONDS": "300",
    "INGEST_LEASE_SECONDS": "10",
}


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    state = Path(tmp_path_factory.mktemp("capped-cloud"))
    with LocalCloud(Settings(state_dir=state, function_env=dict(ENV))) as cloud:
        pipeline = Pipeline(cloud)
        pipeline.sim_config(readable_buckets=[LEANPLUM_BUCKET_NAME])
        yield pipeline


def names_under(bucket: str, prefix: str) -> list[str]:
    from functions import gcs

    return [b.name for b in gcs.make_storage_client().list_blobs(bucket, prefix=prefix)]


def deliver(pipeline: Pipeline, name: str, generation: int) -> int:
    """One delivery of a finalize event to the ingest function, as Eventarc makes it; 0 when
    the instance it reached was killed under it."""
    try:
        return pipeline.deliver(MANUAL_BUCKET, name, generation)
    except requests.ConnectionError:
        return 0


def acknowledged(pipeline: Pipeline, name: str, generation: int) -> bool:
    return deliver(pipeline, name, generation) == 200


def started_jobs(pipeline: Pipeline, name: str) -> list[dict[str, Any]]:
    """``multi`` requests for ``name`` that Leanplum answered with a job."""
    return [
        r for r in pipeline.sim_requests("multi")
        if f"/{name}/" in "/" + r["params"].get("file", "") and r.get("status") == 200
    ]  # fmt: skip


def test_a_burst_of_40_files_never_runs_more_jobs_than_the_cap(capped: Pipeline) -> None:
    """40 files at once with Leanplum answering 30% 5xx and 429, duplicate deliveries and both
    functions killed mid-way: at most 3 jobs at any moment, one job and one message per file,
    no slot, waiting entry or copy left at the end."""
    capped.sim_config(error_5xx_rate=0.15, error_429_rate=0.15, running_seconds=1.0)
    capped.sim.reset_stats()
    subscription = capped.subscribe_results()
    run = uuid.uuid4().hex[:6]
    names = [f"incoming/burst-{run}/shard-{i:03d}.csv" for i in range(40)]
    first_upload = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        generations = list(pool.map(lambda n: upload_to(capped, MANUAL_BUCKET, n, events_csv(50)),
                                    names))  # fmt: skip
        events = list(zip(names, generations, strict=True))
        # As Eventarc: every event once, some twice at the same time, all concurrently.
        first = [pool.submit(deliver, capped, n, g) for n, g in events + events[:4]]
        # Both functions die mid-burst and come back as new instances.
        wait_for(lambda: len(capped.sim.jobs()) >= 2, 120, "the first jobs")
        for function in ("ingest-function", "poller-function"):
            capped.cloud.process(function).pause()
            capped.cloud.kill(function)
            capped.cloud.restart(function)
        statuses = [f.result() for f in first]
    # As Eventarc again: an event not acknowledged (the instance died, or another delivery held
    # the file) is delivered again until it is.
    for (name, generation), status in zip(events + events[:4], statuses, strict=True):
        if status != 200:
            wait_for(functools.partial(acknowledged, capped, name, generation), 120, "an ack")
    messages = {name: capped.results_for(subscription, name, deadline_s=600) for name in names}
    last_message = time.monotonic()
    bodies = [m["body"] for found in messages.values() for m in found]
    assert [len(found) for found in messages.values()] == [1] * 40
    # A file whose instance was killed between recording JOB_STARTING and recording the job id
    # cannot know whether Leanplum made a job (it has no lookup by file): it ends FAILED and
    # says so, never starts a second job. Every other file is imported exactly once.
    interrupted = [b for b in bodies if b["status"] == "FAILED"]
    assert all("interrupted while starting" in str(b["reason"]) for b in interrupted), bodies
    assert len(interrupted) <= 8  # at most one per thread of the killed instance
    assert {b["status"] for b in bodies} <= {"SUCCEEDED", "FAILED"}
    stats = capped.sim.stats()
    assert 1 <= stats["peak_unfinished_jobs"] <= CAP, stats
    for body in bodies:
        jobs = len(started_jobs(capped, body["file"]["object"]))
        assert jobs == 1 if body["status"] == "SUCCEEDED" else jobs <= 1, body
    faulted = [r for r in capped.sim_requests() if r.get("fault") in ("5xx", "429")]
    assert faulted, "the knobs produced no fault: the test proved nothing"
    assert names_under(STATE_BUCKET, "importer/slots/") == []
    assert names_under(STATE_BUCKET, "importer/waiting/") == []
    assert names_under(LEANPLUM_BUCKET_NAME, "leanplum-importer/incoming/burst-" + run) == []
    assert all(b["leanplum_bucket"]["deleted"] for b in bodies)
    queued = sorted(b["timings"]["seconds_queued"] for b in bodies if b["status"] == "SUCCEEDED")
    summarise(
        "burst_40_files_cap_3",
        files=40,
        peak_running_jobs=stats["peak_unfinished_jobs"],
        seconds_first_upload_to_last_message=round(last_message - first_upload, 1),
        files_that_waited=sum(1 for b in bodies if b["timings"]["queued_at"]),
        seconds_queued_min=queued[0],
        seconds_queued_median=round(statistics.median(queued), 1),
        seconds_queued_max=queued[-1],
        faulted_answers=len(faulted),
        events_delivered=len(statuses) + sum(1 for s in statuses if s != 200),
        duplicate_events=4,
        functions_killed=2,
        ended_failed_interrupted_mid_start=len(interrupted),
        jobs_started=sum(len(started_jobs(capped, n)) for n in names),
        messages_published=len(bodies),
    )
    capped.sim_config(error_5xx_rate=0.0, error_429_rate=0.0)


def test_each_app_gets_its_files_with_its_own_key(capped: Pipeline) -> None:
    subscription = capped.subscribe_results()
    run = uuid.uuid4().hex[:6]
    routed = {
        f"incoming/{SECOND_APP}/apps-{run}.csv": SECOND_APP_ID,
        f"incoming/apps-{run}.csv": capped.cloud.leanplum_app_id,
    }
    for name in routed:
        capped.upload(name, events_csv(20))
    for name, app_id in routed.items():
        [result] = capped.results_for(subscription, name, deadline_s=120)
        body = result["body"]
        assert body["status"] == "SUCCEEDED", body
        assert body["app"]["app_id"] == app_id
        # The simulator admits a key only with its own app id: a job there proves the key.
        jobs = [j for j in capped.sim.jobs(app_id=app_id) if f"/apps-{run}.csv/" in j["file"]]
        assert len(jobs) == 1
        assert jobs[0]["bucket"] == LEANPLUM_BUCKET_NAME


def test_a_dry_run_reports_every_count_and_sends_nothing(capped: Pipeline) -> None:
    subscription = capped.subscribe_results()
    name = f"incoming/check/export-{uuid.uuid4().hex[:6]}.csv"
    data = events_csv(30) + b"user-x,app_open,not-a-time,organic\n"
    capped.upload(name, data)
    [result] = capped.results_for(subscription, name, deadline_s=60)
    body = result["body"]
    assert body["status"] == "DRY_RUN"
    assert body["app"] == {"name": "dry-run", "app_id": None}
    assert (body["counts"]["rows_total"], body["counts"]["rows_rejected"]) == (31, 1)
    assert body["jobs"] == [] and body["leanplum_bucket"] is None
    assert capped.read(name) != data  # rewritten in place, as an import would be
    assert started_jobs(capped, name) == []
