"""Cloud Functions entry points. Only parsing, building the clients and outcome mapping live here.

- ``on_csv_finalized``: CloudEvent ``google.cloud.storage.object.v1.finalized`` (Eventarc).
  Returns normally when the event needs no redelivery; raises for a transient fault, so that
  Eventarc (retries on) delivers it again.
- ``poll_import``: HTTP, called by Cloud Tasks. Non-2xx asks the queue to retry with backoff.

Each function's configuration is checked and its clients are built once per instance, when the
runtime loads this module (``FUNCTION_TARGET`` names the function being served): a deployment
with a missing variable fails at start-up with a message naming it, not at the first file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

import flask
import functions_framework
from cloudevents.http.event import CloudEvent
from google.cloud.pubsub import PublisherClient

from functions import ingest, poller
from functions.cloud_tasks_client import make_tasks_client
from functions.config import IngestConfig, PollerConfig, load_ingest_config, load_poller_config
from functions.gcs import GcsStore, make_storage_client
from functions.leanplum import LeanplumClient
from functions.logs import error, register_secret
from functions.poll_tasks import CloudTasksPollScheduler, CloudTasksStartScheduler
from functions.records import RecordStore
from functions.results import PubSubPublisher
from functions.services import IngestServices, LeanplumFactory, PollerServices
from functions.task_tokens import TOKEN_KEY_ENV, LocalTokenVerifier


def _leanplum_factory(config: IngestConfig | PollerConfig) -> LeanplumFactory:
    """A fresh client (its own HTTP session) per event or poll, for the app a record names:
    sessions are not shared between the threads an instance may run."""

    def make(app: str | None) -> LeanplumClient:
        chosen = config.leanplum_app_routes.get(app)
        return LeanplumClient(config.leanplum_api_url, chosen.app_id, chosen.dev_key)

    return make


def _register_keys(config: IngestConfig | PollerConfig) -> None:
    for key in config.leanplum_app_routes.dev_keys:
        register_secret(key)


def _poll_scheduler(config: IngestConfig | PollerConfig) -> CloudTasksPollScheduler:
    return CloudTasksPollScheduler(
        make_tasks_client(),
        queue=config.tasks_queue,
        poller_url=config.poller_url,
        service_account=config.tasks_service_account,
        first_delay_seconds=config.poll_first_delay_seconds,
    )


def build_ingest_services(config: IngestConfig) -> IngestServices:
    """The ingest function's clients for ``config`` (also used by tests that run it in-process)."""
    _register_keys(config)
    objects = GcsStore(make_storage_client())
    return IngestServices(
        config=config,
        objects=objects,
        records=RecordStore(objects, config.state_bucket),
        publisher=PubSubPublisher(PublisherClient(), config.results_topic),
        polls=_poll_scheduler(config),
        starts=CloudTasksStartScheduler(
            make_tasks_client(),
            start_queue=config.start_queue,
            poller_url=config.poller_url,
            service_account=config.tasks_service_account,
        ),
        leanplum=_leanplum_factory(config),
    )


def build_poller_services(config: PollerConfig) -> PollerServices:
    """The poller function's clients for ``config``."""
    _register_keys(config)
    objects = GcsStore(make_storage_client())
    local_key = os.environ.get(TOKEN_KEY_ENV, "")
    return PollerServices(
        config=config,
        objects=objects,
        records=RecordStore(objects, config.state_bucket),
        publisher=PubSubPublisher(PublisherClient(), config.results_topic),
        polls=_poll_scheduler(config),
        leanplum=_leanplum_factory(config),
        verify_task_token=LocalTokenVerifier(bytes.fromhex(local_key)).problem
        if local_key
        else None,
    )


@lru_cache(maxsize=1)
def ingest_services() -> IngestServices:
    """The ingest function's configuration and clients, built once per instance."""
    return build_ingest_services(load_ingest_config())


@lru_cache(maxsize=1)
def poller_services() -> PollerServices:
    """The poller function's configuration and clients, built once per instance."""
    return build_poller_services(load_poller_config())


_BUILDERS = {"on_csv_finalized": ingest_services, "poll_import": poller_services}
if os.environ.get("FUNCTION_TARGET") in _BUILDERS:
    _BUILDERS[os.environ["FUNCTION_TARGET"]]()


@functions_framework.cloud_event
def on_csv_finalized(cloud_event: CloudEvent) -> None:
    """Import the CSV object named by a finalize event (at most one Leanplum job per file)."""
    data: Any = cloud_event.data
    if not isinstance(data, dict) or not {"bucket", "name", "generation"} <= data.keys():
        error("Not a storage object event: ignored", step="filter", ce_type=cloud_event["type"])
        return
    try:
        ingest.handle_event(data, ingest_services())
    except Exception as exc:
        error(
            f"Ingest failed, the event will be redelivered: {exc}",
            step="error",
            error_type=type(exc).__name__,
            bucket=data.get("bucket"),
            object=data.get("name"),
            generation=str(data.get("generation")),
        )
        raise


@functions_framework.http
def poll_import(request: flask.Request) -> tuple[str, int]:
    """Poll the Leanplum jobs of one file; 503 while they run, 2xx when done."""
    payload = request.get_json(silent=True) or {}
    headers = cast(Mapping[str, str], request.headers)  # case-insensitive get()
    outcome = poller.handle_poll(payload, headers, poller_services(), audience=request.url_root)
    return outcome.text, outcome.status
