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
    "STATE_BUCKET": "importer-state",
    "TASKS_QUEUE": "projects/p/locations/l/queues/q",
    "POLLER_URL": "http://127.0.0.1:1/",
    "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
    "START_QUEUE": "projects/p/locations/l/queues/starts",
    # Clients are built when a function first runs; pointed at a closed port they build
    # without credentials and never connect in these tests.
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
    "PUBSUB_EMULATOR_HOST": "127.0.0.1:1",
    "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FUNCTION_TARGET", raising=False)
    yield
    import main

    main.ingest_services.cache_clear()
    main.poller_services.cache_clear()


def cloud_event_headers(name: str) -> dict[str, str]:
    from local_cloud.cloudevents import storage_finalized_headers

    return storage_finalized_headers("bkt", name, event_id="1")


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
