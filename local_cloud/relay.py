"""The local stand-in for Eventarc's Cloud Storage trigger.

Eventarc delivers a GCS ``OBJECT_FINALIZE`` notification to a 2nd-gen function as a CloudEvent
in binary mode: ``ce-type: google.cloud.storage.object.v1.finalized``, ``ce-source:
//storage.googleapis.com/projects/_/buckets/BUCKET``, ``ce-subject: objects/NAME``, the object
resource as JSON data. Underneath it is a Pub/Sub push subscription, so a function that fails
gets the event again. This relay is that push endpoint: it turns the push body into the
CloudEvent (headers from :mod:`local_cloud.cloudevents`), posts it to the function and answers
Pub/Sub with the function's own status (2xx acks; anything else makes Pub/Sub redeliver).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from local_cloud.cloudevents import storage_finalized_headers
from local_cloud.processes import serve_until_signalled


def cloud_event_headers(push: dict[str, Any]) -> tuple[dict[str, str], bytes] | None:
    """The binary-mode CloudEvent for one Pub/Sub push body, or ``None`` if it is not a finalize."""
    message = push.get("message") or {}
    attributes = message.get("attributes") or {}
    if attributes.get("eventType") != "OBJECT_FINALIZE":
        return None
    data = base64.b64decode(message.get("data") or "")
    resource = json.loads(data or b"{}")
    bucket = attributes.get("bucketId") or resource.get("bucket", "")
    name = attributes.get("objectId") or resource.get("name", "")
    event_time = (
        attributes.get("eventTime") or message.get("publishTime") or resource.get("updated")
    )
    headers = storage_finalized_headers(
        bucket,
        name,
        event_id=str(message.get("messageId") or message.get("message_id") or ""),
        time=str(event_time),
    )
    return headers, data


def make_handler(target: str) -> type[BaseHTTPRequestHandler]:
    class RelayHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or 0)
            try:
                push = json.loads(self.rfile.read(length) or b"{}")
                event = cloud_event_headers(push)
            except (ValueError, TypeError) as exc:
                self._answer(400, f"not a Pub/Sub push body: {exc}")
                return
            if event is None:
                self._answer(204, "not a finalize event: acknowledged")
                return
            headers, data = event
            try:
                response = requests.post(target, headers=headers, data=data, timeout=600)
            except requests.RequestException as exc:
                self._answer(502, f"function unreachable: {type(exc).__name__}")
                return
            # Pass the function's verdict back: a failure makes Pub/Sub redeliver the event.
            self._answer(response.status_code, response.text[:200])

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stdout.write(
                json.dumps({"severity": "INFO", "message": "relay " + (format % args)}) + "\n"
            )
            sys.stdout.flush()

    return RelayHandler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pub/Sub push -> CloudEvent relay (Eventarc)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="URL of the CloudEvent function")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.target))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="relay", daemon=True)

    def start() -> str:
        thread.start()
        return f"{args.host}:{args.port}"

    def stop() -> None:
        server.shutdown()
        server.server_close()

    serve_until_signalled(start, stop)


if __name__ == "__main__":
    main()
