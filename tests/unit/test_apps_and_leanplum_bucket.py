"""Routing files to Leanplum apps (and to none: a dry run), and the copies in Leanplum's bucket."""

from __future__ import annotations

import jsonschema
import pytest

from functions.leanplum_apps import AppRoutes, LeanplumApp
from functions.lifecycle import State
from functions.settings import SLOTS_PREFIX
from tests.unit.fakes import BUCKET, LEANPLUM_BUCKET, STATE, Harness, events_csv
from tests.unit.test_results import SCHEMA

ROUTES = AppRoutes(
    apps={
        "default": LeanplumApp("default", "app", "dev-key-unit"),
        "dev": LeanplumApp("dev", "app_dev", "key-dev"),
        "prod": LeanplumApp("prod", "app_prod", "key-prod"),
    },
    routes={"incoming/dev/": "dev", "incoming/prod/": "prod", "incoming/check/": "dry-run"},
)


@pytest.mark.parametrize(
    ("name", "app", "app_id"),
    [
        ("incoming/dev/a.csv", "dev", "app_dev"),
        ("incoming/prod/a.csv", "prod", "app_prod"),
        ("incoming/a.csv", "default", "app"),
    ],
)
def test_each_prefix_reaches_its_own_app_and_the_result_names_it(
    name: str, app: str, app_id: str
) -> None:
    h = Harness(routes=ROUTES)
    [message] = h.run_to_end(name, h.upload(name, events_csv()))
    assert message["status"] == "SUCCEEDED"
    assert message["app"] == {"name": app, "app_id": app_id}
    assert h.leanplum.multi_apps == [app]
    jsonschema.validate(message, SCHEMA)


def test_the_poller_asks_the_app_that_ran_the_job() -> None:
    h = Harness(routes=ROUTES)
    name = "incoming/prod/a.csv"
    generation = h.upload(name, events_csv())
    h.deliver(name, generation)
    h.leanplum.app = None
    h.poll(name, generation)
    assert h.leanplum.app == "prod"


def test_a_dry_run_validates_rewrites_and_reports_but_sends_nothing() -> None:
    h = Harness(routes=ROUTES, max_running_jobs=1)
    name = "incoming/check/export.csv"
    data = b"userId,event,time\nu1,open,1700000000\nu1,open,bad\n" + b"u2,open,1700000001\n" * 30
    generation = h.upload(name, data)
    assert h.deliver(name, generation) == "dry_run"
    [message] = h.messages_for(name)
    assert message["status"] == "DRY_RUN"
    assert message["app"] == {"name": "dry-run", "app_id": None}
    counts = message["counts"]
    assert counts["rows_total"] == 32 and counts["rows_rejected"] == 1
    assert counts["rows_rejected_by_reason"]
    assert message["jobs"] == [] and message["uris"]["report"]
    assert h.leanplum.multi_calls == [] and h.store.names(STATE, SLOTS_PREFIX) == []
    assert h.store.data(BUCKET, name) != data  # rewritten in place, as an import would be
    jsonschema.validate(message, SCHEMA)
    # The same bytes under a routed name are not a duplicate: the dry run sent nothing.
    real = "incoming/prod/export.csv"
    assert h.run_to_end(real, h.upload(real, data))[0]["status"] == "PARTIAL"


def test_the_same_bytes_dry_run_twice_are_not_a_duplicate_of_an_import() -> None:
    h = Harness(routes=ROUTES)
    name = "incoming/check/a.csv"
    h.deliver(name, h.upload(name, events_csv()))
    h.deliver(name, h.upload(name, events_csv()))
    assert [m["status"] for m in h.messages_for(name)] == ["DRY_RUN", "DRY_RUN"]


def test_leanplum_reads_a_copy_in_its_bucket_deleted_once_the_job_ended() -> None:
    h = Harness(leanplum_bucket=LEANPLUM_BUCKET)
    name = "incoming/a.csv"
    generation = h.upload(name, events_csv())
    h.leanplum.default_state = "RUNNING"
    h.deliver(name, generation)
    [(bucket, file)] = h.leanplum.multi_calls
    assert bucket == LEANPLUM_BUCKET and file.startswith("leanplum-importer/")
    assert h.store.names(LEANPLUM_BUCKET) == [file]
    h.leanplum.default_state = "FINISHED"
    [message] = h.run_to_end(name, generation)
    assert message["status"] == "SUCCEEDED" and message["counts"]["leanplum_successes"] == 3
    assert message["leanplum_bucket"] == {
        "copies": [f"gs://{LEANPLUM_BUCKET}/{file}"],
        "deleted": True,
    }
    assert h.store.names(LEANPLUM_BUCKET) == []
    jsonschema.validate(message, SCHEMA)


def test_copies_are_kept_when_cleanup_is_off_and_deleted_when_a_file_ends_without_a_job() -> None:
    h = Harness(leanplum_bucket=LEANPLUM_BUCKET, leanplum_bucket_cleanup=False)
    h.run_to_end("incoming/a.csv", h.upload("incoming/a.csv", events_csv()))
    assert len(h.store.names(LEANPLUM_BUCKET)) == 1
    h2 = Harness(leanplum_bucket=LEANPLUM_BUCKET, max_running_jobs=1)
    h2.leanplum.default_state = "RUNNING"
    h2.deliver("incoming/a.csv", h2.upload("incoming/a.csv", events_csv()))
    second = h2.upload("incoming/b.csv", events_csv(5))
    assert h2.deliver("incoming/b.csv", second) == "queued"
    h2.upload("incoming/b.csv", b"userId,event,time\nx,y,1\n")  # replaced while it waited
    h2.start("incoming/b.csv", second)
    assert h2.record("incoming/b.csv", second).state == State.SUPERSEDED
    assert [n for n in h2.store.names(LEANPLUM_BUCKET) if "b.csv" in n] == []


def test_no_leanplum_bucket_means_leanplum_reads_the_state_bucket() -> None:
    h = Harness()
    [message] = h.run_to_end("incoming/a.csv", h.upload("incoming/a.csv", events_csv()))
    assert h.leanplum.multi_calls[0][0] == STATE
    assert message["leanplum_bucket"] is None


def test_a_clean_up_that_fails_still_ends_the_file_and_says_so() -> None:
    h = Harness(leanplum_bucket=LEANPLUM_BUCKET)
    name = "incoming/a.csv"
    generation = h.upload(name, events_csv())
    h.deliver(name, generation)
    h.store.fail("delete", "leanplum-importer/*", "503")
    [message] = h.run_to_end(name, generation)
    assert message["status"] == "SUCCEEDED"
    assert message["leanplum_bucket"]["deleted"] is False
    assert len(h.store.names(LEANPLUM_BUCKET)) == 1
