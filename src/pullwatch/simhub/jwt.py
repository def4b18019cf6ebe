"""JWT-shaped tokens for the simulator: `header.payload.signature`, base64url without padding.

The simulator signs with HMAC-SHA256 under a per-model random key only so the token looks like
a real one; it never verifies signatures (it remembers the tokens it issued instead). Clients
decode the payload unverified, exactly as they do with Docker Hub's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


def b64url_encode(data: bytes) -> str:
    """base64url without `=` padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url_encode`; accepts missing padding. Raises ValueError on junk."""
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _json_segment(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def encode(payload: Mapping[str, Any], key: bytes, kid: str = "simhub") -> str:
    """An HS256 JWT of `payload`."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(signature)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a JWT without checking the signature. Raises ValueError on junk."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JWT: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("JWT header and payload must be JSON objects")
    return header, payload
