"""The ``/api`` actions: key checks, CSV jobs, polling, inline ``multi``, ``track``.

``multi`` with ``createJob`` answers as soon as the object's metadata is read (bucket not
readable by Leanplum: 400, missing: 404, too large: 400, storage down: 502); the rows are
checked later by the job (see ``_jobs``). A request acts for the app its ``appId`` names, once
its ``clientKey`` proved to be one of that app's keys: jobs, polling and name limits are per app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_cloud.leanplum_sim import _gcs, _jobs
from local_cloud.leanplum_sim._actions import SUPPORTED_ACTIONS, error, run_action
from local_cloud.leanplum_sim._config import DEVELOPMENT, INVALID, PRODUCTION
from local_cloud.leanplum_sim._jobs import SIMULATED_FAILURE, Job
from local_cloud.leanplum_sim._state import SimState

API_VERSION = "1.0.6"
DEV, PROD = DEVELOPMENT, PRODUCTION
MULTI_MAX_USERS = 50  # [DOC] inline multi limits
MULTI_MAX_ACTIONS = 500


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def reply(self) -> Reply:
        return Reply(self.status, {"response": [error(self.message)]})


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _required(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Missing argument {name}")
    return str(value)


class Api:
    def __init__(self, state: SimState, base_url: Callable[[], str]) -> None:
        self.state = state
        self.base_url = base_url

    def key_class(self, params: Mapping[str, Any]) -> str:
        """``development``, ``production`` or ``invalid`` for the app ``appId`` names."""
        app_id, key = params.get("appId"), params.get("clientKey")
        return self.state.apps.key_class(
            app_id if isinstance(app_id, str) else None, key if isinstance(key, str) else None
        )

    def handle(self, params: Mapping[str, Any], key_class: str) -> Reply:
        try:
            if key_class == INVALID:
                raise ApiError(403, "Invalid access key")
            app_id = str(params["appId"])  # a valid key class implies a known app id
            _required(params, "apiVersion")
            action = _required(params, "action")
            if action == "multi":
                if "createJob" in params or "gcsBucket" in params or "file" in params:
                    return self._create_job(app_id, params, key_class)
                return self._inline_multi(app_id, params, key_class)
            if action == "getMultiResults":
                return self._get_multi_results(app_id, params, key_class)
            if action in SUPPORTED_ACTIONS:
                return self._single(app_id, action, params, key_class)
            raise ApiError(400, f"Unknown action {action!r}")
        except ApiError as exc:
            return exc.reply()

    @staticmethod
    def _need(key_class: str, wanted: str, what: str) -> None:
        if key_class != wanted:
            raise ApiError(403, f"Invalid access key: {what} requires the {wanted} key")

    # multi with createJob ------------------------------------------------------------------
    def _create_job(self, app_id: str, params: Mapping[str, Any], key_class: str) -> Reply:
        self._need(key_class, DEV, "multi with createJob")
        if not _truthy(params.get("createJob")):
            raise ApiError(400, "createJob must be true to import a file")
        bucket = _required(params, "gcsBucket")
        name = _required(params, "file")
        default_action = params.get("defaultAction") or None
        if default_action is not None and default_action not in SUPPORTED_ACTIONS:
            raise ApiError(400, f"Unsupported defaultAction {default_action!r}")
        knobs = self.state.snapshot()
        if not knobs.bucket_readable(bucket):  # refused before storage is touched
            raise ApiError(400, f"Leanplum cannot read bucket {bucket}")
        try:  # only the metadata now; the job downloads the file when it runs
            info = _gcs.stat_object(bucket, name, max_bytes=knobs.max_file_bytes)
        except _gcs.ObjectMissing as exc:
            raise ApiError(404, str(exc)) from None
        except _gcs.ObjectTooLarge as exc:
            raise ApiError(400, str(exc)) from None
        except _gcs.StorageUnavailable as exc:
            raise ApiError(502, str(exc)) from None
        job = Job(
            job_id=self.state.new_job_id(),
            app_id=app_id,
            bucket=bucket,
            file=name,
            generation=info.generation,
            size=info.size,
            default_action=default_action,
            pending_seconds=knobs.pending_seconds,
            running_seconds=knobs.running_seconds,
            lines_per_file=max(1, knobs.results_lines_per_file),
            fate=self.state.decide_fate(),
        )
        max_bytes = knobs.max_file_bytes

        def read() -> bytes:
            try:
                return _gcs.download(bucket, name, info.generation, max_bytes=max_bytes)
            except (_gcs.ObjectMissing, _gcs.ObjectTooLarge, _gcs.StorageUnavailable) as exc:
                raise _jobs.FileUnreadable(str(exc)) from None

        catalog = self.state.catalog(app_id)
        context = _jobs.JobContext(read, catalog, frozenset(knobs.warn_events))
        self.state.add_job(job)
        _jobs.start(job, context)
        return Reply(200, {"response": [{"success": True, "jobId": job.job_id}]})

    # getMultiResults -----------------------------------------------------------------------
    def _get_multi_results(self, app_id: str, params: Mapping[str, Any], key_class: str) -> Reply:
        self._need(key_class, DEV, "getMultiResults")
        job_id = _required(params, "jobId")
        job = self.state.job(job_id, app_id)  # another app's job is unknown to this app
        if job is None:
            raise ApiError(400, f"Unknown jobId {job_id!r}")
        state = job.state()
        item: dict[str, Any] = {"success": True, "jobId": job.job_id, "state": state}
        if state == "FINISHED":
            base = self.base_url()
            files = [f"{base}/_sim/results/{job.job_id}/{i}.json" for i in range(job.file_count())]
            item["data"] = {
                "successesCount": job.successes,
                "failuresCount": job.failures,
                "files": files,
            }
            item["files"] = list(files)
        elif state == "FAILED":
            item["data"] = {"successesCount": 0, "failuresCount": 0, "files": []}
            item["error"] = {"message": job.error or SIMULATED_FAILURE}
        return Reply(200, {"response": [item]})

    # inline multi, track, setUserAttributes ------------------------------------------------
    def _inline_multi(self, app_id: str, params: Mapping[str, Any], key_class: str) -> Reply:
        self._need(key_class, PROD, "inline multi")
        data = params.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                raise ApiError(400, "Invalid data: not a JSON list of actions") from None
        if not isinstance(data, list):
            raise ApiError(400, "Missing argument data (a JSON list of actions)")
        users = {str(a.get("userId")) for a in data if isinstance(a, dict) and a.get("userId")}
        if len(data) > MULTI_MAX_ACTIONS or len(users) > MULTI_MAX_USERS:
            raise ApiError(
                403,
                f"multi over its limits: at most {MULTI_MAX_USERS} users and "
                f"{MULTI_MAX_ACTIONS} actions per call (found {len(users)} and {len(data)})",
            )
        knobs = self.state.snapshot()
        default_action = params.get("defaultAction")
        catalog = self.state.catalog(app_id)
        now = time.time()
        results, records = [], []
        for item in data:
            if not isinstance(item, dict):
                results.append(error("Invalid action: expected a JSON object"))
                continue
            action = dict(item)
            if not action.get("action") and default_action:
                action["action"] = default_action
            outcome = run_action(
                action,
                now=now,
                catalog=catalog,
                warn_events=set(knobs.warn_events),
                require_time=False,
            )
            results.append(outcome.result)
            if outcome.record is not None:
                records.append(outcome.record)
        self.state.record_events("multi", app_id, records)
        return Reply(200, {"response": results})

    def _single(self, app_id: str, action: str, params: Mapping[str, Any], key_class: str) -> Reply:
        self._need(key_class, PROD, action)
        knobs = self.state.snapshot()
        outcome = run_action(
            params,
            now=time.time(),
            catalog=self.state.catalog(app_id),
            warn_events=set(knobs.warn_events),
            require_time=False,
        )
        if outcome.record is not None:
            self.state.record_events(action, app_id, [outcome.record])
        status = 200 if outcome.result.get("success") else 400
        return Reply(status, {"response": [outcome.result]})
