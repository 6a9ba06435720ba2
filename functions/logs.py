"""Structured logs that Cloud Logging understands.

Cloud Functions (2nd gen) forward each line a function writes to stdout to Cloud Logging; a
line that is a JSON object becomes a structured entry whose ``severity`` and ``message`` fields
are read as such and whose other fields stay searchable (``jsonPayload.object``,
``jsonPayload.job_id``). One line per lifecycle step lets a person follow one file with a
single filter.

Secrets: :func:`register_secret` adds a value that is masked in every line written here, so
even an exception text that quotes a request URL cannot leak the Leanplum key.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
MASK = "***"


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 4 are ignored)."""
    if len(value) >= 4:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by :data:`MASK`."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def log(severity: str, message: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one structured log line.

    :param severity: a Cloud Logging severity: DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL.
    :param fields: extra searchable fields (bucket, object, generation, job_id, step, ...).
    """
    entry: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "time": datetime.now(UTC).isoformat(),
    }
    entry.update({key: value for key, value in fields.items() if value is not None})
    line = redact(json.dumps(entry, default=str, ensure_ascii=False))
    out = stream if stream is not None else sys.stdout
    with _LOCK:
        out.write(line + "\n")
        out.flush()


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)
