"""The token endpoint's answer: a pure parse of the JSON body and of the JWT's claims.

The claims are decoded without verification: they are hints to show in a token check (which
scope, which limit the auth service thinks applies), never the truth about the limit - the
registry's headers are.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from pullwatch.redact import one_line

DEFAULT_EXPIRES_IN = 60  # the distribution spec's default when `expires_in` is absent
MAX_TRUSTED_LIFETIME = 3600  # a token claiming to live longer is still renewed hourly
RENEW_MARGIN = 10  # renew this many seconds before expiry


class TokenParseError(ValueError):
    """The token endpoint's 200 answer is not a usable token. str() is one line."""


@dataclass(frozen=True, slots=True)
class PullLimit:
    limit: int | None
    interval: int | None


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The interesting parts of the JWT payload."""

    subject: str | None  # account UUID; "" or None for anonymous
    issuer: str | None
    audience: str | None
    issued_at: float | None
    expires_at: float | None
    jwt_id: str | None
    access: tuple[dict[str, Any], ...] = ()

    @property
    def pull_limit(self) -> PullLimit | None:
        for entry in self.access:
            params = entry.get("parameters")
            if isinstance(params, dict) and (
                "pull_limit" in params or "pull_limit_interval" in params
            ):
                return PullLimit(
                    limit=_as_int(params.get("pull_limit")),
                    interval=_as_int(params.get("pull_limit_interval")),
                )
        return None

    @property
    def scopes(self) -> tuple[str, ...]:
        out = []
        for entry in self.access:
            actions = entry.get("actions")
            acts = ",".join(str(a) for a in actions) if isinstance(actions, list) else ""
            out.append(f"{entry.get('type', '?')}:{entry.get('name', '?')}:{acts}")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A usable token. `token` is secret: it is never shown, stored or logged."""

    token: str = field(repr=False)
    expires_in: int  # as the server said (after defaults), seconds
    issued_at: float | None  # from `issued_at`, epoch seconds
    claims: TokenClaims | None

    def cache_lifetime(self) -> float:
        """How long to reuse this token: up to ~10 s before it runs out, capped at an hour.

        0 means "use once": the server said the token expires at once.
        """
        lifetime = float(min(self.expires_in, MAX_TRUSTED_LIFETIME))
        if lifetime <= 0:
            return 0.0
        if self.claims and self.claims.expires_at and self.claims.issued_at:
            lifetime = min(lifetime, self.claims.expires_at - self.claims.issued_at)
        margin = RENEW_MARGIN if lifetime > 2 * RENEW_MARGIN else lifetime / 2
        return max(lifetime - margin, 0.0)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        return int(value.strip())
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
        return int(value)
    return None


def _as_time(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and 0 <= value < 1e11:
        return float(value)
    return None


def parse_issued_at(text: Any) -> float | None:
    """Docker's RFC 3339 with nanoseconds (`2020-11-01T06:33:32.689989417Z`) -> epoch."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _text(value: Any, limit: int = 200) -> str | None:
    """A claim's string, cleaned for display (claims come from the network), or None."""
    return one_line(value, limit) if isinstance(value, str) else None


def _access_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One `access` claim entry with every string cleaned (nothing raw reaches a screen)."""
    actions = entry.get("actions")
    params = entry.get("parameters")
    return {
        "type": _text(entry.get("type"), 40) or "?",
        "name": _text(entry.get("name"), 200) or "?",
        "actions": [_text(a, 40) or "?" for a in actions[:20]] if isinstance(actions, list) else [],
        "parameters": {
            str(_text(k, 60)): (v if isinstance(v, int | float) else _text(str(v), 60))
            for k, v in list(params.items())[:20]
        }
        if isinstance(params, dict)
        else {},
    }


def decode_claims(token: str) -> TokenClaims | None:
    """The JWT payload (second dot-separated part, base64url), unverified; None if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64_000:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    access = data.get("access")
    entries = (
        tuple(_access_entry(e) for e in access[:50] if isinstance(e, dict))
        if isinstance(access, list)
        else ()
    )
    aud = data.get("aud")
    if isinstance(aud, list):
        aud = ",".join(str(a) for a in aud[:10])
    jti = data.get("jti")
    return TokenClaims(
        subject=_text(data.get("sub")),
        issuer=_text(data.get("iss")),
        audience=_text(aud),
        issued_at=_as_time(data.get("iat")),
        expires_at=_as_time(data.get("exp")),
        jwt_id=_text(jti, 120),
        access=entries,
    )


def parse_token_response(body: bytes) -> TokenGrant:
    """Parse a 200 answer of the token endpoint; raises TokenParseError with a one-line reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        start = body[:40].decode("utf-8", "replace").strip()
        if start.lower().startswith(("<!doctype", "<html")):
            raise TokenParseError(
                "token endpoint answered with an HTML page, not JSON (a proxy or captive portal?)"
            ) from None
        raise TokenParseError("token endpoint answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise TokenParseError("token endpoint answered JSON that is not an object")
    token = data.get("token")
    if not isinstance(token, str) or not token:
        token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenParseError("token endpoint answered without a token or access_token")
    # It travels in an HTTP header: printable ASCII only (a JWT is), and not absurdly long.
    if not (token.isascii() and token.isprintable()) or " " in token or len(token) > 64_000:
        raise TokenParseError("token endpoint answered with a token that is not usable")
    raw_expires = data.get("expires_in")
    expires_in = DEFAULT_EXPIRES_IN if raw_expires is None else _as_int(raw_expires)
    if expires_in is None:
        raise TokenParseError("token endpoint answered with an expires_in that is not a number")
    return TokenGrant(
        token=token,
        expires_in=expires_in,
        issued_at=parse_issued_at(data.get("issued_at")),
        claims=decode_claims(token),
    )
