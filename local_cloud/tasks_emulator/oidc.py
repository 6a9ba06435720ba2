"""OIDC tokens shaped like the ones Cloud Tasks attaches to HTTP tasks.

Real Cloud Tasks sends ``Authorization: Bearer <Google-signed ID token>`` for tasks with an
``oidc_token``. Locally nothing can sign as Google, so the token has the same claims and is
signed (HS256) with the key in ``CLOUD_TASKS_EMULATOR_TOKEN_KEY``, which the local cloud also
gives the poller, so that the poller checks issuer, audience, expiry and signature as the cloud
does (``functions/task_tokens.py``). Without a key the signature is a dummy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

from functions.task_tokens import TOKEN_KEY_ENV, signature

ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME_SECONDS = 3600
_DUMMY_SIGNATURE = b"local-cloud-tasks-emulator-unsigned"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def service_account_subject(email: str) -> str:
    """A stable 21-digit numeric id for a service account, like Google's ``sub`` claim."""
    digest = int.from_bytes(hashlib.sha256(email.encode("utf-8")).digest()[:9], "big")
    return "1" + str(digest).zfill(20)[-20:]


def make_oidc_token(
    service_account_email: str, audience: str, now: float | None = None, key: bytes | None = None
) -> str:
    """A JWT with Google ID-token claims, HS256-signed with ``key`` (default: the key in
    ``CLOUD_TASKS_EMULATOR_TOKEN_KEY``; none: a dummy signature)."""
    if key is None:
        key = bytes.fromhex(os.environ.get(TOKEN_KEY_ENV, ""))
    issued_at = int(time.time() if now is None else now)
    subject = service_account_subject(service_account_email)
    header = {"alg": "HS256" if key else "none", "kid": "local-cloud-tasks-emulator", "typ": "JWT"}
    payload = {
        "aud": audience,
        "azp": subject,
        "email": service_account_email,
        "email_verified": True,
        "exp": issued_at + TOKEN_LIFETIME_SECONDS,
        "iat": issued_at,
        "iss": ISSUER,
        "sub": subject,
    }
    signing_input = ".".join([
        _b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")),
        _b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8")),
    ])  # fmt: skip
    if not key:
        return f"{signing_input}.{_b64url(_DUMMY_SIGNATURE)}"
    return f"{signing_input}.{signature(key, signing_input.encode('ascii'))}"
