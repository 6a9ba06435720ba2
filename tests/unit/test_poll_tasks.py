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
