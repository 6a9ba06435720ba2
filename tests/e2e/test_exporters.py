"""Files as exporters write them, through the real path (notification, relay, functions)."""

from __future__ import annotations

import gzip
import time
import uuid

import pytest

from local_cloud.stack import BUCKET

from .conftest import FAULT_SUMMARY, Pipeline

pytestmark = pytest.mark.e2e

DAY = 86_400


def shard(rows: int) -> bytes:
    now = int(time.time())
    lines = ["userId,event,time,params.plan"]
    lines += [f"user-{i % 7},purchase,{now - DAY - i},pro" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(name: str, data: bytes, content_encoding: str | None = None) -> None:
    from functions import gcs

    blob = gcs.make_storage_client().bucket(BUCKET).blob(name)
    blob.content_encoding = content_encoding
    blob.upload_from_string(data, content_type="text/csv")


@pytest.mark.parametrize(
    ("suffix", "encoding"),
    [(".csv.gz", None), (".csv", "gzip"), (".csv", None)],
    ids=["csv.gz", "content-encoding-gzip", "bare-gzip-bytes"],
)
def test_a_gzip_shard_imports_like_a_plain_csv(
    pipeline: Pipeline, suffix: str, encoding: str | None
) -> None:
    subscription = pipeline.subscribe_results()
    name = f"incoming/export-{uuid.uuid4().hex[:8]}/000000000000{suffix}"
    packed = gzip.compress(shard(300))
    upload(name, packed, encoding)
    [result] = pipeline.results_for(subscription, name)
    body = result["body"]
    assert body["status"] == "SUCCEEDED", body["reason"]
    assert body["counts"]["rows_total"] == body["counts"]["leanplum_successes"] == 300
    assert len(pipeline.jobs_for(name)) == 1
    assert pipeline.read_uri(body["uris"]["parts"][0]).startswith(b"userId,event,time")
    assert pipeline.no_more_results(subscription, name)


def test_markers_and_temp_objects_start_nothing(pipeline: Pipeline) -> None:
    subscription = pipeline.subscribe_results()
    run = uuid.uuid4().hex[:8]
    ignored = [
        f"incoming/{run}/_SUCCESS",
        f"incoming/{run}/complete",
        f"incoming/{run}/empty.csv",
        f"incoming/{run}/gsutil/tmp/parallel_composite_uploads/component-1.csv",
        f"incoming/{run}/.temp-beam-2f1c/shard-00000-of-00001.csv",
    ]
    mark = pipeline.log_mark()
    for name in ignored:  # markers with a byte in them, so that the marker rule decides
        upload(name, b"" if name.endswith("empty.csv") else b"1" if "/_" in name or
               name.endswith("complete") else shard(3))  # fmt: skip
    for name in ignored:
        pipeline.wait_for_message("Ignored: ", name, since=mark)
        assert not pipeline.jobs_for(name)
    assert all(pipeline.no_more_results(subscription, name, window_s=1) for name in ignored)
    rules = {e["object"]: e["rule"] for e in pipeline.steps_since(mark, "filter") if "rule" in e}
    assert {name: rules.get(name, "") for name in ignored} == {
        ignored[0]: "a marker object ('_success')",
        ignored[1]: "a marker object ('complete')",
        ignored[2]: "an empty object (a marker, or the first version gcsfuse writes)",
        ignored[3]: rules[ignored[3]],
        ignored[4]: rules[ignored[4]],
    }
    assert all("temporary object" in rules[name] for name in ignored[3:])
    FAULT_SUMMARY.append({"test": "exporter_temp_and_marker_objects", "objects": len(ignored),
                          "jobs_started": 0, "messages_published": 0})  # fmt: skip
