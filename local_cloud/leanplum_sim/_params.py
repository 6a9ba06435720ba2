"""Merge the parameters of one API request: query string, then the body (form, multipart, JSON)."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl


class BadRequest(ValueError):
    """The body cannot be read as the content type it claims."""


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("multipart body could not be parsed")
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        out[name] = raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    return out


def _sniffed_boundary(body: bytes) -> str | None:
    """curl ``--form`` with a forced ``Content-Type: application/json`` sends multipart anyway."""
    if not body.startswith(b"--"):
        return None
    first = body.split(b"\r\n", 1)[0][2:].strip()
    return first.decode("ascii", errors="replace") or None


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if ctype == "multipart/form-data":
        return _multipart(content_type, body)
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if ctype in {"application/json", ""}:
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            boundary = _sniffed_boundary(body)
            if boundary:
                return _multipart(f'multipart/form-data; boundary="{boundary}"', body)
            raise BadRequest("body is not valid JSON") from None
        if not isinstance(value, dict):
            raise BadRequest("JSON body must be an object")
        return value
    raise BadRequest(f"unsupported Content-Type {ctype!r}")


def merge(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Query parameters first; body parameters override them ([DOC] both places are allowed)."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_body(content_type, body))
    return params
