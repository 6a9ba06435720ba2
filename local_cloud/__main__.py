"""``python -m local_cloud COMMAND``: run the importer locally.

Commands:
  demo                 start everything, import samples/events.csv, print the result, stop
  up                   start the local cloud in the background (``down`` stops it)
  down                 stop the background local cloud
  serve                run the local cloud in the foreground until Ctrl-C
  upload FILE [NAME]   upload a file as incoming/NAME; says at once if the importer will
                       ignore that name, and why; --wait prints that version's own result
  results              every result so far, one line per file (--json: the full messages,
                       --follow: keep waiting for more); reading them never consumes them
  cat gs://BUCKET/NAME print an object of the local emulator (a report, rejected rows, a part
                       in the state bucket importer-state); a name ending in / lists objects

``demo``, ``up`` and ``serve`` take the functions' settings from the caller's environment
(``MAX_RUNNING_JOBS=2 make up``; see :mod:`local_cloud.caller_env`); with ``LEANPLUM_API_URL``,
``LEANPLUM_APP_ID`` and ``LEANPLUM_DEV_KEY`` set they start no simulator and the functions talk
to that Leanplum.

Why these: a person trying the importer should not need emulator URLs or a Pub/Sub client to
see what happened to a file. The commands talk to the cloud that ``up`` started through the
endpoints it wrote to ``.local-cloud/endpoints.json`` (``LOCAL_CLOUD_DIR`` names another
directory, as the tests do); result messages are kept in a journal there (see
:mod:`local_cloud.results`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_cloud.launch import leanplum_lines, settings_from_environment
from local_cloud.stack import BUCKET, REPO_ROOT, LocalCloud

if TYPE_CHECKING:
    from local_cloud.results import Journal

STATE_DIR = Path(os.environ.get("LOCAL_CLOUD_DIR") or REPO_ROOT / ".local-cloud")
PID_FILE = STATE_DIR / "serve.pid"
ENDPOINTS = STATE_DIR / "endpoints.json"
#: Statuses after which ``upload --wait`` exits 0: the file is in Leanplum (or already was).
GOOD_STATUSES = ("SUCCEEDED", "PARTIAL", "DUPLICATE")
#: How long the demo waits for its result: a simulated job takes a second, a real one minutes.
DEMO_DEADLINE_S = {"simulator": 120.0, "real": 600.0}


def _say(text: str) -> None:
    print(text, flush=True)


def _upload(path: Path, name: str) -> int:
    from functions import gcs

    blob = gcs.make_storage_client().bucket(BUCKET).blob(name)
    kind = "application/gzip" if path.name.lower().endswith(".gz") else "text/csv"
    blob.upload_from_filename(str(path), content_type=kind)
    return int(blob.generation or 0)


def _read_uri(uri: str) -> str:
    from functions import gcs

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return str(gcs.make_storage_client().bucket(bucket).blob(name).download_as_text())


def _show_outputs(body: dict[str, Any]) -> None:
    """What a person checks next: the file Leanplum read and the validation report."""
    normalized = body["uris"].get("normalized")
    parts = body["uris"].get("parts") or []
    if normalized:
        text = _read_uri(normalized)
        _say(f"The upload, normalised in place ({normalized}); Leanplum read the same bytes")
        _say(f"from the importer's own copy ({', '.join(parts)}):")
        _say("  " + "\n  ".join(text.splitlines()[:12]))
    report_uri = body["uris"].get("report")
    if report_uri:
        report = json.loads(_read_uri(report_uri))
        _say(f"Validation report ({report_uri}):")
        _say(f"  column mapping: {json.dumps(report.get('column_mapping', {}))}")
        for warning in report.get("warnings", []):
            _say(f"  warning: {warning}")


def demo(_: argparse.Namespace) -> int:
    """The README's first command: one sample file through the whole pipeline."""
    from local_cloud.results import for_object, pull_results

    started = time.monotonic()
    cloud = LocalCloud(settings_from_environment(STATE_DIR / "demo"))
    leanplum = "Leanplum simulator" if cloud.uses_simulator else "no simulator"
    _say(f"Starting the local cloud (GCS, Pub/Sub, Cloud Tasks, {leanplum}, functions)...")
    with cloud:
        up = time.monotonic()
        _say(f"  ready in {up - started:.1f} s (Pub/Sub emulator: {cloud.pubsub_kind})")
        info = cloud.describe()
        for line in leanplum_lines(info):
            _say(line)
        name = f"incoming/sample-{time.strftime('%Y%m%dT%H%M%S')}.csv"
        sample = REPO_ROOT / "samples" / "events.csv"
        generation = _upload(sample, name)
        uploaded = time.monotonic()
        _say(f"Uploaded {sample.relative_to(REPO_ROOT)} to gs://{BUCKET}/{name}#{generation}")
        _say("Waiting for the result message on " + cloud.results_subscription + " ...")
        try:
            messages = pull_results(
                cloud.results_subscription,
                until=for_object(name),
                deadline_s=DEMO_DEADLINE_S[info["leanplum"]["mode"]],
            )
        except TimeoutError as exc:
            _say(f"FAILED: {exc}. Logs: {cloud.log_dir}")
            return 1
        result = next(m for m in messages if m["attributes"]["object"] == name)
        _say("Result message attributes: " + json.dumps(result["attributes"], sort_keys=True))
        _say(json.dumps(result["body"], indent=2, sort_keys=True))
        _show_outputs(result["body"])
        _say(
            f"Upload to result message: {time.monotonic() - uploaded:.1f} s; "
            f"demo total: {time.monotonic() - started:.1f} s. Stopping."
        )
        return 0 if result["body"]["status"] in ("SUCCEEDED", "PARTIAL") else 1


def serve(args: argparse.Namespace) -> int:
    """Run in the foreground until SIGTERM or Ctrl-C; every child stops with us."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cloud = LocalCloud(settings_from_environment(STATE_DIR, args.pubsub))
    _journal_path().unlink(missing_ok=True)  # results of an earlier cloud name lost objects
    with cloud:
        PID_FILE.write_text(str(os.getpid()))
        _say(json.dumps(cloud.describe(), indent=2))
        while not stop.wait(1.0):
            cloud.check_alive()
    PID_FILE.unlink(missing_ok=True)
    ENDPOINTS.unlink(missing_ok=True)
    return 0


def up(args: argparse.Namespace) -> int:
    if PID_FILE.exists():
        _say(f"Already running (pid {PID_FILE.read_text()}); `make down` stops it.")
        return 0
    settings_from_environment(
        STATE_DIR, args.pubsub
    )  # a wrong environment fails here, before any process
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    ENDPOINTS.unlink(missing_ok=True)
    log = (STATE_DIR / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cloud", "serve", "--pubsub", args.pubsub],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    end = time.monotonic() + 90
    while not (ENDPOINTS.exists() and PID_FILE.exists()):
        if process.poll() is not None or time.monotonic() > end:
            _say(f"The local cloud did not start; see {STATE_DIR / 'serve.log'}")
            process.terminate()
            return 1
        time.sleep(0.2)
    info: dict[str, Any] = json.loads(ENDPOINTS.read_text())
    exports = " ".join(f"{key}={value}" for key, value in info["env"].items())
    _say(f"The local cloud is up (pid {process.pid}). Endpoints: {ENDPOINTS}")
    for line in leanplum_lines(info):
        _say(line)
    _say("Drop a file:    .venv/bin/python -m local_cloud upload my-events.csv --wait")
    _say("See results:    .venv/bin/python -m local_cloud results [--json] [--follow]")
    _say("Read a gs:// URI of a result: .venv/bin/python -m local_cloud cat gs://BUCKET/NAME")
    _say(f"Use any client: export {exports}")
    _say(f"Logs:           {info['logs']}")
    _say("Stop:           make down")
    return 0


def down(_: argparse.Namespace) -> int:
    if not PID_FILE.exists():
        _say("Not running.")
        return 0
    pid = int(PID_FILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        PID_FILE.unlink(missing_ok=True)
        _say("Was not running any more; cleaned up.")
        return 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    PID_FILE.unlink(missing_ok=True)
    _say("The local cloud is stopped.")
    return 0


def _running_endpoints() -> dict[str, Any]:
    if not ENDPOINTS.exists():
        raise SystemExit("The local cloud is not running: `make up` first.")
    info: dict[str, Any] = json.loads(ENDPOINTS.read_text())
    os.environ.update(info["env"])
    return info


def _journal_path() -> Path:
    from local_cloud.results import JOURNAL_NAME

    return ENDPOINTS.parent / JOURNAL_NAME


def _journal(info: dict[str, Any]) -> Journal:
    from local_cloud.results import Journal

    return Journal(_journal_path(), info["results_subscription"])


def _show_result(message: dict[str, Any], as_json: bool) -> None:
    from local_cloud.results import summary_line

    _say(json.dumps(message, sort_keys=True) if as_json else summary_line(message))


def upload(args: argparse.Namespace) -> int:
    from functions.object_rules import ignore_reason
    from local_cloud.results import find_version, for_version, readable_uris

    info = _running_endpoints()
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"No such file: {path}")
    name = "incoming/" + (args.name or path.name)
    # The importer's own rules, checked before the upload: an ignored object gets no result.
    reason = ignore_reason(name, path.stat().st_size, info.get("incoming_prefix", "incoming/"))
    if reason:
        _say(f"gs://{BUCKET}/{name} will NOT be imported: {reason}.")
        _say("The importer will ignore it: no record, no job, no result message.")
    generation = _upload(path, name)
    _say(f"Uploaded {path} to gs://{BUCKET}/{name}#{generation}")
    if not args.wait:
        return 0
    if reason:
        return 1
    _say(f"Waiting up to {args.timeout:.0f} s for its result...")
    try:
        messages = _journal(info).wait(for_version(name, generation), args.timeout)
    except TimeoutError:
        _say(f"No result for gs://{BUCKET}/{name}#{generation} within {args.timeout:.0f} s.")
        return 1
    message = find_version(messages, name, generation)
    assert message is not None
    _show_result(message, args.json)
    if not args.json:
        for what, uri in readable_uris(message):
            _say(f"  {what}: python -m local_cloud cat {uri}")
    return 0 if message["body"].get("status") in GOOD_STATUSES else 1


def results(args: argparse.Namespace) -> int:
    from local_cloud.results import one_per_file

    journal = _journal(_running_endpoints())
    try:
        messages = journal.wait(bool, args.wait) if args.wait else journal.read()
    except TimeoutError:
        messages = []
    shown = one_per_file(messages)
    for message in shown:
        _show_result(message, args.json)
    if not args.follow:
        if not shown:
            print("No result message yet.", file=sys.stderr)
        return 0 if shown else 1
    seen = {m["body"].get("result_id") for m in shown}
    try:
        while True:
            time.sleep(0.5)
            for message in one_per_file(journal.read()):
                if message["body"].get("result_id") not in seen:
                    seen.add(message["body"].get("result_id"))
                    _show_result(message, args.json)
    except KeyboardInterrupt:
        return 0


def cat(args: argparse.Namespace) -> int:
    from google.api_core import exceptions as gexc

    from functions import gcs

    _running_endpoints()
    if not args.uri.startswith("gs://"):
        raise SystemExit(f"Not a gs:// URI: {args.uri}")
    bucket, _, name = args.uri.removeprefix("gs://").partition("/")
    name, _, generation = name.partition("#")
    client = gcs.make_storage_client()
    try:
        if not name or name.endswith("/"):
            for blob in client.list_blobs(bucket, prefix=name or None):
                _say(f"gs://{bucket}/{blob.name}#{blob.generation}  {blob.size} bytes")
            return 0
        blob = client.bucket(bucket).blob(name, generation=int(generation) if generation else None)
        data = blob.download_as_bytes()
    except gexc.NotFound:
        print(f"No object {args.uri} in the local emulator.", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo").set_defaults(run=demo)
    for name, run in (("up", up), ("serve", serve)):
        command = commands.add_parser(name)
        command.add_argument(
            "--pubsub",
            default=os.environ.get("PUBSUB_EMULATOR_KIND", "auto"),
            choices=["auto", "official", "builtin"],
        )
        command.set_defaults(run=run)
    commands.add_parser("down").set_defaults(run=down)
    command = commands.add_parser("upload")
    command.add_argument("file")
    command.add_argument("name", nargs="?", help="object name under incoming/ (default: FILE's)")
    command.add_argument("--wait", action="store_true", help="wait for this version's result")
    command.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits")
    command.add_argument("--json", action="store_true", help="the full result message")
    command.set_defaults(run=upload)
    command = commands.add_parser("results")
    command.add_argument("--json", action="store_true", help="full messages, one JSON a line")
    command.add_argument("--follow", action="store_true", help="keep waiting (Ctrl-C stops)")
    command.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a first")
    command.set_defaults(run=results)
    command = commands.add_parser("cat")
    command.add_argument("uri", help="gs://BUCKET/NAME[#GENERATION], or gs://BUCKET/PREFIX/")
    command.set_defaults(run=cat)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `results | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
