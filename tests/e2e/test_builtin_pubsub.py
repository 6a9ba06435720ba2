"""The whole pipeline on the built-in Pub/Sub emulator, the one machines without Google's
official emulator use (the session's other end-to-end tests use the official one where the
machine has it)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud.stack import LocalCloud, Settings

from .conftest import Pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def builtin_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = Path(tmp_path_factory.mktemp("builtin-cloud"))
    with LocalCloud(Settings(state_dir=state, pubsub_kind="builtin")) as running:
        yield running


def test_a_file_through_the_builtin_pubsub_emulator(
    builtin_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_KIND", raising=False)
    assert builtin_cloud.pubsub_kind == "builtin"
    pipeline = Pipeline(builtin_cloud)
    subscription = pipeline.subscribe_results()
    name = f"incoming/builtin-{uuid.uuid4().hex[:8]}.csv"
    now = int(time.time())
    pipeline.upload(name, f"userId,event,time\nu1,open,{now - 60}\nu2,open,{now - 30}\n".encode())
    [result] = pipeline.results_for(subscription, name)
    assert result["body"]["status"] == "SUCCEEDED"
    assert result["body"]["counts"]["leanplum_successes"] == 2
    assert len(pipeline.jobs_for(name)) == 1
    assert pipeline.no_more_results(subscription, name)
