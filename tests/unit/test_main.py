"""The entry points through functions-framework's real app, as the runtime serves them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
ENV = {
    "LEANPLUM_APP_ID": "app",
    "LEANPLUM_DEV_KEY": "dev-key-for-unit-tests",
    "RESULTS_TOPIC": "projects/p/topics/results",
    "TASKS_QUEUE": "projects/p/locations/l/queues/q",
    "POLLER_URL": "http://127.0.0.1:1/",
    "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FUNCTION_TARGET", raising=False)
    yield


def cloud_event_headers(name: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/bkt",
        "ce-subject": f"objects/{name}",
        "Content-Type": "application/json",
    }


def test_an_object_outside_the_prefix_is_acknowledged_without_io(env: None) -> None:
    client = create_app("on_csv_finalized", MAIN, "cloudevent").test_client()
    data: dict[str, Any] = {"bucket": "bkt", "name": "exports/a.csv", "generation": "5"}
    response = client.post("/", json=data, headers=cloud_event_headers("exports/a.csv"))
    assert response.status_code == 200


def test_a_structured_cloud_event_is_accepted_too(env: None) -> None:
    client = create_app("on_csv_finalized", MAIN, "cloudevent").test_client()
    event = {
        "specversion": "1.0",
        "id": "2",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/bkt",
        "subject": "objects/importer/records/x.json",
        "datacontenttype": "application/json",
        "data": {"bucket": "bkt", "name": "importer/records/x.json", "generation": "5"},
    }
    response = client.post(
        "/", json=event, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 200


def test_the_poller_refuses_requests_that_are_not_from_cloud_tasks(env: None) -> None:
    client = create_app("poll_import", MAIN, "http").test_client()
    response = client.post("/", json={"bucket": "b", "object": "o", "generation": "1"})
    assert response.status_code == 403
    assert "X-CloudTasks-QueueName" in response.get_data(as_text=True)


def test_a_missing_setting_stops_the_function_at_start_up(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    monkeypatch.delenv("RESULTS_TOPIC")
    monkeypatch.setenv("FUNCTION_TARGET", "poll_import")
    framework = str(Path(sys.executable).parent / "functions-framework")
    completed = subprocess.run(
        [framework, "--target", "poll_import", "--source", MAIN, "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=Path(MAIN).parent, check=False,
    )  # fmt: skip
    assert completed.returncode != 0
    assert "RESULTS_TOPIC is missing" in completed.stderr
    assert "dev-key-for-unit-tests" not in completed.stderr
