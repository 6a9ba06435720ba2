"""OIDC tokens shaped like the ones Cloud Tasks attaches to HTTP tasks.

Real Cloud Tasks sends ``Authorization: Bearer <Google-signed ID token>`` for tasks with an
``oidc_token``. Locally nothing can sign as Google, so the token has the same header and claims
but a dummy signature: handlers that decode claims without verifying (as local code must) work
unchanged; anything that verifies the signature rightly rejects it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME_SECONDS = 3600
_DUMMY_SIGNATURE = b"local-cloud-tasks-emulator-unsigned"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def service_account_subject(email: str) -> str:
    """A stable 21-digit numeric id for a service account, like Google's ``sub`` claim."""
    digest = int.from_bytes(hashlib.sha256(email.encode("utf-8")).digest()[:9], "big")
    return "1" + str(digest).zfill(20)[-20:]


def make_oidc_token(service_account_email: str, audience: str, now: float | None = None) -> str:
    """Build an unsigned (dummy-signature) JWT with Google ID-token claims."""
    issued_at = int(time.time() if now is None else now)
    subject = service_account_subject(service_account_email)
    header = {"alg": "RS256", "kid": "local-cloud-tasks-emulator", "typ": "JWT"}
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
    parts = [
        _b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")),
        _b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8")),
        _b64url(_DUMMY_SIGNATURE),
    ]
    return ".".join(parts)
