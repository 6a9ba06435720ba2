"""Poll task names: the same jobs always give the same, valid task id."""

from __future__ import annotations

import re

from functions.poll_tasks import task_id_for

VALID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


def test_same_jobs_same_name_in_any_order() -> None:
    assert task_id_for(["b", "a"]) == task_id_for(["a", "b"])


def test_different_jobs_different_names() -> None:
    assert task_id_for(["job-1"]) != task_id_for(["job-2"])


def test_names_use_only_the_cloud_tasks_alphabet() -> None:
    for jobs in (["a/b.c:d"], ["x" * 600], ["ünïcode", "job 2"]):
        assert VALID.match(task_id_for(jobs)), jobs


def test_unsafe_characters_cannot_make_two_job_sets_collide() -> None:
    assert task_id_for(["a/b"]) != task_id_for(["a_b"])


class RecordingTasksClient:
    """Cloud Tasks' create_task as the scheduler uses it: ALREADY_EXISTS for a known name."""

    def __init__(self) -> None:
        self.tasks: dict[str, object] = {}

    def create_task(self, *, parent: str, task: object) -> object:
        from google.api_core import exceptions as gexc

        name = task.name  # type: ignore[attr-defined]
        if name in self.tasks:
            raise gexc.AlreadyExists(f"{name} exists")
        self.tasks[name] = task
        return task


def test_the_scheduler_makes_one_oidc_task_per_job_set_and_accepts_a_repeat() -> None:
    import json

    from functions.import_record import ImportRecord
    from functions.poll_tasks import CloudTasksPollScheduler

    client = RecordingTasksClient()
    scheduler = CloudTasksPollScheduler(
        client,  # type: ignore[arg-type]
        queue="projects/p/locations/l/queues/q",
        poller_url="https://poller",
        service_account="sa@p.iam.gserviceaccount.com",
        first_delay_seconds=15,
    )
    record = ImportRecord(bucket="b", object="incoming/a.csv", generation=3, job_ids=["j1"])
    first = scheduler.ensure_poll(record)
    assert scheduler.ensure_poll(record) == first
    [task] = client.tasks.values()
    request = task.http_request  # type: ignore[attr-defined]
    assert json.loads(request.body) == {
        "bucket": "b",
        "object": "incoming/a.csv",
        "generation": "3",
    }
    assert request.oidc_token.service_account_email == "sa@p.iam.gserviceaccount.com"
    assert request.oidc_token.audience == "https://poller"
    assert task.dispatch_deadline.total_seconds() == 1800  # type: ignore[attr-defined]
