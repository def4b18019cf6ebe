"""`pullwatch explain`: a pasted scanner, docker or kubelet error line -> which limit, what to do.

Pure pattern matching over the text (nothing is sent anywhere). The most specific match wins:
the abuse limit's `HAP429` before a generic 429, an authenticated pull-limit message (it names
the account) before the generic one. Whatever of the input is echoed back is redacted first:
Docker's authenticated 429 names the user and a `dckr_jti_` token id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pullwatch.advice import (
    PROOF,
    abuse_limit_steps,
    auth_failed_steps,
    authenticate_step,
    more_quota_steps,
    pull_less_step,
    when_back_step,
)
from pullwatch.redact import one_line

MAX_INPUT = 20_000  # characters read from a paste; the rest is ignored


@dataclass(frozen=True, slots=True)
class Explanation:
    kind: str  # abuse_limit, pull_limit, pull_limit_anonymous, pull_limit_authenticated, ...
    limit: str  # which limit it is, in a few words
    meaning: str
    steps: tuple[str, ...]
    proof: str = PROOF
    retry_after: float | None = None
    excerpt: str = ""  # the matched part of the input, redacted ("" when nothing matched)

    @property
    def recognised(self) -> bool:
        return self.kind != "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recognised": self.recognised,
            "limit": self.limit,
            "meaning": self.meaning,
            "steps": list(self.steps),
            "proof": self.proof,
            "retry_after": self.retry_after,
            "excerpt": self.excerpt,
        }

    def as_text(self) -> str:
        """Text not recognised says so on its first line; a recognised line starts with what
        matched."""
        lines = [f"Which limit: {self.limit}", f"Meaning: {self.meaning}"]
        if self.excerpt and self.recognised:
            lines.insert(0, f"Matched: {self.excerpt}")
        if self.steps:
            lines.append("What to do:")
            lines += [f"  {n}. {step}" for n, step in enumerate(self.steps, start=1)]
        lines.append(self.proof)
        return "\n".join(lines)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_HAP429 = _rx(r"HAP\s*429")
_ANON_PULL = _rx(r"unauthenticated pull rate limit")
_PULL_LIMIT = _rx(r"reached your pull rate limit|increase-rate-limit|pull rate limit")
_AUTHENTICATED = _rx(r"\bas\s+'[^']*'|dckr_jti_")
_TOOMANY = _rx(r"toomanyrequests|too many requests|\b429\b")
_BAD_LOGIN = _rx(r"incorrect username or password|unauthorized: incorrect")
_INVALID_TOKEN = _rx(r"invalid_token")
_AUTH_REQUIRED = _rx(
    r"authentication required|requested access to the resource is denied|\bdenied\b|"
    r"insufficient_scope|pull access denied"
)
_NOT_FOUND = _rx(r"manifest unknown|not found: manifest|name unknown")
_TLS = _rx(r"x509:|certificate signed by unknown authority|tls: ")
_NETWORK = _rx(
    r"i/o timeout|no such host|connection refused|connection reset|TLS handshake timeout|"
    r"context deadline exceeded|network is unreachable|Client\.Timeout"
)
_SERVER = _rx(r"\b50[0234]\b|service unavailable|bad gateway|internal server error")
_RETRY_AFTER = _rx(r"retry[- ]after[\"':=\s]+(\d{1,5})")
_TAGS_LIST = _rx(r"/tags/list")


def _excerpt(text: str, match: re.Match[str], span: int = 120) -> str:
    start = max(match.start() - span // 2, 0)
    end = min(match.end() + span // 2, len(text))
    cut = text[start:end]
    return one_line(("…" if start else "") + cut + ("…" if end < len(text) else ""), 200)


def explain(text: str) -> Explanation:
    """Classify an error line (or a few) into the limit it reports and the next steps."""
    text = text[:MAX_INPUT]
    retry = _RETRY_AFTER.search(text)
    retry_after = float(retry.group(1)) if retry else None

    if match := _HAP429.search(text):
        tags_note = (
            " The failing request was a tags listing, which is not a pull: only the abuse limit "
            "applies to it."
            if _TAGS_LIST.search(text)
            else ""
        )
        return Explanation(
            "abuse_limit",
            "Docker Hub's abuse limit (HAP429), not the pull rate limit",
            "Too many requests of any kind (tags/list, manifests, tokens) from one IP address or "
            "/64 in a short time; Docker answers a plain-text 429 with Retry-After: 60. Lowering "
            "a scanner's Cap or scan frequency helps because it cuts requests too." + tags_note,
            abuse_limit_steps(retry_after or 60),
            retry_after=retry_after,
            excerpt=_excerpt(text, match),
        )
    if match := _ANON_PULL.search(text):
        return Explanation(
            "pull_limit_anonymous",
            "the pull rate limit for unauthenticated pulls (per IP address or IPv6 /64)",
            "This address has used its anonymous pulls in the window; every pull of a manifest "
            "(once per architecture) counts, HEAD requests do not.",
            (authenticate_step(), when_back_step(None), pull_less_step()),
            retry_after=retry_after,
            excerpt=_excerpt(text, match),
        )
    if match := _PULL_LIMIT.search(text):
        if _AUTHENTICATED.search(text):
            return Explanation(
                "pull_limit_authenticated",
                "the pull rate limit of an authenticated account",
                "The account named in the message (redacted here) has used its pulls in the "
                "window; with a login the limit is per account, whatever the address.",
                (*more_quota_steps(), when_back_step(None), pull_less_step()),
                retry_after=retry_after,
                excerpt=_excerpt(text, match),
            )
        return Explanation(
            "pull_limit",
            "the pull rate limit (anonymous per IP, or the logged-in account's)",
            "Docker Hub refused a manifest pull because the bucket it charges is empty. The "
            "message does not say whether the pull was anonymous: if the client logged in, it "
            "is the account's limit, otherwise the IP address's.",
            (
                authenticate_step(),
                *more_quota_steps(),
                when_back_step(None),
                pull_less_step(),
            ),
            retry_after=retry_after,
            excerpt=_excerpt(text, match),
        )
    if match := _BAD_LOGIN.search(text):
        return Explanation(
            "auth_failed",
            "not a rate limit: the login was refused",
            "Docker Hub's token endpoint refused the username and secret.",
            auth_failed_steps(),
            excerpt=_excerpt(text, match),
        )
    if match := _INVALID_TOKEN.search(text):
        return Explanation(
            "invalid_token",
            "not a rate limit: the registry refused the token",
            "The token was expired, or issued for another service or scope.",
            auth_failed_steps(invalid_token=True)[:1],
            excerpt=_excerpt(text, match),
        )
    if match := _TOOMANY.search(text):
        return Explanation(
            "too_many_requests",
            "a 429 that does not say which limit: the pull limit or the abuse limit",
            "A HEAD answers 429 without a body when the pull quota is empty, and the abuse limit "
            "answers 429 too. If `pullwatch check` shows pulls remaining for the client's "
            "identity, it was the abuse limit.",
            (
                "Run `pullwatch check` from the same host (same egress address) to see the pull "
                "quota without spending a pull.",
                *abuse_limit_steps(retry_after)[:2],
                authenticate_step(),
            ),
            retry_after=retry_after,
            excerpt=_excerpt(text, match),
        )
    if match := _NOT_FOUND.search(text):
        return Explanation(
            "not_found",
            "not a rate limit: the image or tag does not exist",
            "The registry does not know this repository, tag or digest.",
            ("Check the image name and tag (Docker Hub's official images live under library/).",),
            excerpt=_excerpt(text, match),
        )
    if match := _AUTH_REQUIRED.search(text):
        return Explanation(
            "auth_required",
            "not a rate limit: access denied",
            "The repository is private or does not exist, or the client's token lacks the pull "
            "scope.",
            (
                "Log in as an account that can read the repository, and check its name.",
                *auth_failed_steps()[:2],
            ),
            excerpt=_excerpt(text, match),
        )
    if match := _TLS.search(text):
        return Explanation(
            "tls",
            "not a rate limit: a TLS problem",
            "The client did not trust the certificate it was shown: often a TLS-intercepting "
            "proxy.",
            ("Trust the proxy's CA on the pulling host, or check the system clock.",),
            excerpt=_excerpt(text, match),
        )
    if match := _NETWORK.search(text):
        return Explanation(
            "network",
            "not a rate limit: the network",
            "The client could not reach the registry in time.",
            ("Check DNS, firewall and HTTPS_PROXY / NO_PROXY on the pulling host.",),
            excerpt=_excerpt(text, match),
        )
    if match := _SERVER.search(text):
        return Explanation(
            "server_error",
            "not a rate limit: a server error",
            "Docker Hub (or a proxy on the way) answered a 5xx error.",
            ("Check https://www.dockerstatus.com and retry later with backoff.",),
            excerpt=_excerpt(text, match),
        )
    return Explanation(  # nothing matched: no excerpt, so nothing reads as if it had
        "unknown",
        "not recognised",
        "This does not look like a Docker Hub limit or login error pullwatch knows.",
        (
            "Paste the whole error line, including the part after 'error' (e.g. "
            "'toomanyrequests: ...' or '... (HAP429)').",
        ),
    )
