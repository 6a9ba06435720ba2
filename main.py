"""Cloud Functions entry points. Only parsing, configuration and outcome mapping live here.

- ``on_csv_finalized``: CloudEvent ``google.cloud.storage.object.v1.finalized`` (Eventarc).
  Returns normally when the event needs no redelivery; raises for a transient fault, so that
  Eventarc (retries on) delivers it again.
- ``poll_import``: HTTP, called by Cloud Tasks. Non-2xx asks the queue to retry with backoff.

Configuration is checked when the runtime loads this module (``FUNCTION_TARGET`` names the
function being served), so a deployment with a missing variable fails at start-up with a
message naming it, not at the first file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from functions import ingest, poller
from functions.config import Config, FunctionName, load_config
from functions.logs import error, register_secret

_TARGETS: dict[str, FunctionName] = {"on_csv_finalized": "ingest", "poll_import": "poller"}


@lru_cache(maxsize=2)
def _config(function: FunctionName) -> Config:
    config = load_config(function)
    register_secret(config.leanplum_dev_key)
    return config


if os.environ.get("FUNCTION_TARGET") in _TARGETS:
    _config(_TARGETS[os.environ["FUNCTION_TARGET"]])


@functions_framework.cloud_event
def on_csv_finalized(cloud_event: CloudEvent) -> None:
    """Import the CSV object named by a finalize event (at most one Leanplum job per file)."""
    data: Any = cloud_event.data
    if not isinstance(data, dict) or not {"bucket", "name", "generation"} <= data.keys():
        error("Not a storage object event: ignored", step="filter", ce_type=cloud_event["type"])
        return
    try:
        ingest.handle_event(data, _config("ingest"))
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
    outcome = poller.handle_poll(payload, headers, _config("poller"))
    return outcome.text, outcome.status
