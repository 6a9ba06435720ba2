"""Checking the local Cloud Tasks emulator's OIDC tokens the way the cloud checks real ones.

Why: in the cloud only Cloud Tasks can call the poller: Cloud Run verifies the Google-signed
ID token (issuer, audience, expiry, signature) and IAM admits only the tasks service account,
before the function runs. Locally nothing stands in front of the poller, so any request with
the right header names would be obeyed. The local emulator signs its tokens with a key shared
with the poller through ``CLOUD_TASKS_EMULATOR_TOKEN_KEY`` (an emulator variable, never set in
the cloud), and the poller checks them with :class:`LocalTokenVerifier`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

#: The emulator variable holding the shared signing key (hex).
TOKEN_KEY_ENV = "CLOUD_TASKS_EMULATOR_TOKEN_KEY"
ISSUER = "https://accounts.google.com"
#: Clock skew allowed on ``exp`` and ``iat``, as Google's verifiers allow.
LEEWAY_SECONDS = 60


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def signature(key: bytes, signing_input: bytes) -> str:
    """HS256 over ``header.payload``, base64url without padding (as JWTs write it)."""
    digest = hmac.new(key, signing_input, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class LocalTokenVerifier:
    """Verifies ``Authorization: Bearer <token>`` minted by the local Cloud Tasks emulator."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def problem(self, authorization: str, audience: str) -> str | None:
        """Why the header is not a valid token for ``audience``, or ``None`` when it is."""
        token = authorization.removeprefix("Bearer ").strip()
        parts = token.split(".")
        if len(parts) != 3:
            return "the bearer token is not a JWT"
        expected = signature(self._key, f"{parts[0]}.{parts[1]}".encode("ascii"))
        if not hmac.compare_digest(expected, parts[2]):
            return "the token's signature is not the Cloud Tasks emulator's"
        try:
            claims: Any = json.loads(_b64decode(parts[1]))
        except ValueError:
            return "the token's claims are unreadable"
        if not isinstance(claims, dict):
            return "the token's claims are unreadable"
        now = self._clock()
        if claims.get("iss") != ISSUER:
            return f"the token's issuer is not {ISSUER}"
        if claims.get("aud", "").rstrip("/") != audience.rstrip("/"):
            return "the token was minted for another audience"
        if not isinstance(claims.get("exp"), int) or claims["exp"] + LEEWAY_SECONDS < now:
            return "the token has expired"
        if not isinstance(claims.get("iat"), int) or claims["iat"] - LEEWAY_SECONDS > now:
            return "the token was issued in the future"
        return None
