"""One local cloud for the end-to-end tests: real emulators, simulator, relay and functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from local_cloud.results import pull_results
from local_cloud.stack import BUCKET, PROJECT, REPO_ROOT, LocalCloud, Settings

RESULT_SCHEMA = json.loads((REPO_ROOT / "schemas" / "result-message.schema.json").read_text())


class Pipeline:
    """What a test does to the running local cloud, through public interfaces only."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud

    def subscribe_results(self) -> str:
        """A fresh subscription on the results topic: it sees only messages from now on."""
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        name = f"projects/{PROJECT}/subscriptions/test-{uuid.uuid4().hex[:12]}"
        pubsub_v1.SubscriberClient().create_subscription(
            name=name, topic=self.cloud.results_topic, ack_deadline_seconds=60
        )
        return name

    def upload(self, name: str, data: bytes) -> int:
        from functions import gcs

        blob = gcs.client().bucket(BUCKET).blob(name)
        blob.upload_from_string(data, content_type="text/csv")
        return int(blob.generation or 0)

    def read(self, name: str) -> bytes:
        from functions import gcs

        return bytes(gcs.client().bucket(BUCKET).blob(name).download_as_bytes())

    def assert_valid(self, message: dict[str, Any]) -> None:
        """Every published message must match the versioned JSON Schema in the repository."""
        jsonschema.validate(message["body"], RESULT_SCHEMA)
        body = message["body"]
        assert message["attributes"] == {
            "status": body["status"],
            "bucket": body["file"]["bucket"],
            "object": body["file"]["object"],
        }

    def results_for(
        self, subscription: str, name: str, deadline_s: float = 60
    ) -> list[dict[str, Any]]:
        messages = pull_results(
            subscription,
            until=lambda got: any(m["attributes"]["object"] == name for m in got),
            deadline_s=deadline_s,
        )
        found = [m for m in messages if m["attributes"]["object"] == name]
        for message in found:
            self.assert_valid(message)
        return found

    def no_more_results(self, subscription: str, name: str, window_s: float = 3) -> bool:
        """True when no further message for ``name`` arrives within ``window_s``."""
        try:
            self.results_for(subscription, name, deadline_s=window_s)
        except TimeoutError:
            return True
        return False

    def sim_requests(self, action: str | None = None) -> list[dict[str, Any]]:
        reply = requests.get(self.cloud.leanplum_admin_url + "/requests", timeout=10)
        reply.raise_for_status()
        entries: list[dict[str, Any]] = reply.json()["requests"]
        return [e for e in entries if action is None or e.get("action") == action]

    def sim_config(self, **knobs: Any) -> None:
        requests.post(self.cloud.leanplum_admin_url + "/config", json=knobs, timeout=10)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = Path(tmp_path_factory.mktemp("local-cloud"))
    with LocalCloud(Settings(state_dir=state)) as running:
        yield running


@pytest.fixture
def pipeline(cloud: LocalCloud) -> Pipeline:
    cloud.check_alive()
    return Pipeline(cloud)
