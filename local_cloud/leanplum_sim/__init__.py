"""A local Leanplum API simulator: a real HTTP server for the importer's tests.

Behaves as Leanplum's documented API does (the team's notes, leanplum-api.md). Start it with
``python -m local_cloud.leanplum_sim --app-id APP --dev-key DEV --prod-key PROD --port N`` or
in-process with :func:`start` / :meth:`LeanplumSimulator.stop`. CSV jobs read the object with
the official google-cloud-storage client (anonymous credentials, project ``local`` when
``STORAGE_EMULATOR_HOST`` is set).

Modules, one job each: ``_config`` (apps and keys, fault knobs), ``_params`` (request parameters),
``_rules`` (documented ``track`` rules), ``_csvfile`` (CSV bytes to actions), ``_actions`` (one
action to one response), ``_jobs`` (job state, the worker that checks the rows), ``_gcs``
(object metadata, download), ``_stats`` (exact job-concurrency counters), ``_state`` (locked
state, seeded randomness, recordings), ``_api`` (the ``/api`` actions), ``_server`` (HTTP,
faults, admin endpoints), ``__main__`` (CLI), ``admin`` (:class:`SimulatorAdmin`, the one
client of the admin endpoints that tests use).

Behaviours INFERRED (not documented by Leanplum; chosen as a careful client would expect):

* Keys: a wrong ``appId``, an unknown or missing ``clientKey`` answers 403 ``Invalid access
  key``; a valid key of the wrong class (production key for a CSV job, development key for
  ``track``) answers 403 ``Invalid access key: ... requires the development key``. A missing
  ``apiVersion`` or ``action`` is 400; any ``apiVersion`` value is accepted. Unknown action: 400.
* Several apps: the main app (development and production keys) and extra apps
  (``--extra-app APP_ID=DEV_KEY``, ``LEANPLUM_SIM_EXTRA_APPS``, ``extra_apps=``; development
  key only). A key is valid only with the ``appId`` of its own app; a key of app A sent with
  app B's id is 403 ``Invalid access key``. Jobs, polling and name limits are per app: a job
  polled by another app is an unknown ``jobId`` (400).
* Request bodies: [DOC] GET reads the query string only (a GET body is ignored). POST: query
  string first, body keys override; the body must be ``application/json`` (an object; values
  as sent, ``createJob`` may be ``true`` or ``"true"``) or ``multipart/form-data`` (plain
  fields; a file part is 400). Any other content type (form-urlencoded included), or a
  non-empty body without one, is 400 ``Unsupported content type ...``; a JSON body that is not
  an object, or is not JSON, is 400 ``Bad request: ...``. A body sent as
  ``Content-Type: application/json`` that is really multipart (curl ``--form`` with a forced
  JSON header, as in Leanplum's own help article) is read as multipart.
* Buckets: with the ``readable_buckets`` knob non-empty, ``multi`` naming another bucket is
  400 ``Leanplum cannot read bucket <name>`` (checked before storage is touched; no job).
  The job reads only the bucket and object ``multi`` named (shown per job, with its app).
* ``GET /_sim/stats``: jobs unfinished (PENDING or RUNNING, hung ones included) now, the peak
  since start, reset or ``POST /_sim/stats/reset``, and jobs created per app; exact, as every
  reading first applies every state change up to that instant under the state lock.
* ``multi`` is a CSV job when ``createJob``, ``gcsBucket`` or ``file`` is given;
  ``createJob`` other than ``true`` is 400. Missing bucket/object: 404; object above
  100 MB: 400; storage unreachable: 502. ``defaultAction`` other than
  ``track``/``setUserAttributes``: 400. Only these, which need nothing but the object's
  metadata, refuse ``multi``: it answers with the ``jobId`` at once, whatever the file's size.
* The job is PENDING for ``pending_seconds``; then it runs in a worker thread: it downloads
  the generation seen by ``multi`` (recorded on the job) and checks every row with "now" =
  that moment. It is RUNNING for at least ``running_seconds`` and until the rows are
  checked, then FINISHED or FAILED. If that generation is gone by then (deleted, replaced
  without versioning) or storage fails, the job ends FAILED with the reason.
  Applied rows show in ``GET /_sim/events`` only once the job is FINISHED (never for FAILED
  or never-ending jobs); their names count towards the per-app limits from when the rows are
  checked. A simulated FAIL decides the job's fate at creation and reads nothing.
  ``POST /_sim/reset`` and ``stop()`` cancel running workers.
* A file with a UTF-8 BOM, invalid UTF-8, an empty file, a header with an empty or duplicated
  column name, or CSV syntax errors (e.g. an unterminated quote): the job is still created and
  ends FAILED with the reason; no rows are applied, no results files.
* Empty cells are absent arguments; unknown columns are ignored; blank lines are not rows; a
  row with more cells than the header gets an error result. ``params.<name>`` and
  ``userAttributes.<name>`` columns become nested objects; parameter values stay strings.
  A row's ``action`` cell overrides ``defaultAction``; with neither the row errors.
* ``time``: >= 1e11 is "plainly milliseconds" (error); negative, or more than one day in the
  future: error. Age > 365 days: success with the documented past-event warning; the event is
  recorded with the import time (``originalTime`` kept). N in the message is whole days.
* ``currencyCode`` must be three upper-case letters known to pycountry's ISO 4217 list.
  ``value`` must be a finite number. Only the first failing rule is reported per row.
* Purely numeric name: ASCII digits with an optional decimal part, or all decimal digits.
* Per-app limits (500 event names, 200 parameter names) are counted, app by app, across
  everything the simulator accepted for that app since start/reset; an action over a limit
  gets an error.
* ``successesCount`` counts ``success:true`` results (including those with a warning);
  ``failuresCount`` the ``success:false`` ones. ``GET /_sim/jobs`` also shows warnings.
* ``getMultiResults`` while PENDING/RUNNING: ``{"success":true,"jobId","state"}`` without
  ``data``. FAILED: ``success:true`` (the poll worked), ``state:"FAILED"``, an ``error``
  object with the reason and empty ``data``. Unknown or missing ``jobId``: 400.
* Results files: newline-delimited JSON, ``results_lines_per_file`` lines each (10,000);
  a job with no rows has no files. Served only once the job is FINISHED.
* ``track`` over HTTP: ``time`` optional (defaults to now); an error result is HTTP 400, a
  warning HTTP 200. Inline ``multi``: over 50 distinct users or 500 actions is 403; otherwise
  HTTP 200 with one result per action.
* Faults happen before the action runs (a 5xx/429 has no effect), except the lost reply: the
  ``multi`` call takes effect, then the connection is closed without an answer.
* ``POST /_sim/reset`` forgets requests, jobs, events, names and job counters, and restores
  the knobs and the random generator given at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping

from local_cloud.leanplum_sim._config import AppConfigError, AppIdentity, Apps, KnobError, Knobs
from local_cloud.leanplum_sim._server import LeanplumSimulator
from local_cloud.leanplum_sim.admin import SimulatorAdmin, SimulatorAdminError

__all__ = [
    "AppConfigError",
    "AppIdentity",
    "Apps",
    "KnobError",
    "Knobs",
    "LeanplumSimulator",
    "SimulatorAdmin",
    "SimulatorAdminError",
    "start",
]


def start(
    app_id: str,
    dev_key: str,
    prod_key: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
    knobs: Knobs | None = None,
    quiet: bool = True,
    extra_apps: Mapping[str, str] | None = None,
) -> LeanplumSimulator:
    """Start a simulator in a background thread; call ``.stop()`` on the result when done.

    ``extra_apps`` maps more app ids to their development keys (see :class:`Apps`).
    """
    identity = AppIdentity(app_id=app_id, dev_key=dev_key, prod_key=prod_key)
    sim = LeanplumSimulator(
        identity, knobs, extra_apps=extra_apps, host=host, port=port, seed=seed, quiet=quiet
    )
    return sim.start()
