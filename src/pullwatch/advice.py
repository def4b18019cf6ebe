"""What a reading means and what to do next, in plain language.

`advise()` is the one entry point the dashboard, the check screens, `check` and the triage
report use. The steps are the seed article's remedies (hub-protocol.md §5) made specific to the
reading: which limit it is, which other identity has room now, when pulls come back. The step
texts are built by small functions that `explain` (pasted error lines) reuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pullwatch.hub.headers import format_window, parse_source
from pullwatch.reading import ErrorKind, Reading, State

STATE_MEANINGS: dict[State, str] = {
    State.OK: "Metered, with pulls to spare.",
    State.LOW: "Metered, and at or under the warning threshold: pulls will soon fail with 429.",
    State.EXHAUSTED: "No pulls left in this bucket: pulls fail with 429 until the rolling window "
    "gives some back.",
    State.UNMETERED: "Docker Hub sent no rate-limit headers: a paid plan or an exempt image or IP. "
    "No quota to show.",
    State.AUTH_FAILED: "The credentials (or the token) were refused. Not retried automatically: "
    "repeated bad logins lock a username out for about 10 minutes.",
    State.THROTTLED: "Rate-limited by the token endpoint or by the abuse limit (HAP429): not the "
    "pull quota. Backing off as Retry-After asks.",
    State.ERROR: "The probe could not complete (network, TLS, server error, odd answer or the "
    "keyring). Retried with backoff.",
    State.UNKNOWN: "Not probed yet.",
}

DOCUMENTED_LIMITS = (
    "Docker documents 100 pulls per 6 h per IP without a login, 200 per 6 h for a free account"
)
PROOF = (
    "Prove it without spending a pull: `pullwatch check` (or `pullwatch head LABEL`) reads the "
    "live ratelimit headers with a HEAD request."
)


@dataclass(frozen=True, slots=True)
class Advice:
    meaning: str
    steps: tuple[str, ...] = ()  # what to do next, most useful first; empty when nothing to do


# -- step texts (shared with `explain`) ---------------------------------------------------------


def at_most_minutes(seconds: float) -> str:
    """An upper bound rounded up to the minute: `≤ 5m`, `≤ 5h13m`."""
    minutes = max(math.ceil(seconds / 60), 1)
    if minutes < 60:
        return f"≤ {minutes}m"
    return f"≤ {minutes // 60}h{minutes % 60:02d}m"


def authenticate_step(live: str | None = None) -> str:
    tail = f"; the live limit here is {live}" if live else ""
    return (
        "Authenticate the pulling client (`docker login -u <Docker ID>` with a personal access "
        f"token, or the scanner's registry credentials): {DOCUMENTED_LIMITS}{tail}."
    )


def more_quota_steps() -> tuple[str, ...]:
    return (
        "Spread the pulls over another account, or move this one to a paid plan (Pro, Team, "
        "Business: no pull limit).",
        "Put a pull-through cache or mirror in front of Docker Hub (a registry mirror for "
        "dockerd/containerd or the cluster, Harbor, Artifactory, Nexus) so each image is pulled "
        "from the Hub once.",
    )


def pull_less_step() -> str:
    return (
        "Pull less: a scanner's Cap (tags per repository; 1 = newest only), a longer scan "
        "interval (72 h instead of 24 h), fewer architectures - `pullwatch plan` works out what "
        "fits the limit."
    )


def when_back_step(window: int | None, recovers_in: float | None = None) -> str:
    if recovers_in is not None:
        return (
            f"Wait: the next pull comes back {at_most_minutes(recovers_in)} (an estimate from "
            "watching this bucket; the window rolls, Docker sends no reset time)."
        )
    if not window:
        return (
            "Wait: pulls come back one by one as the rolling window passes (6 h documented; "
            "`pullwatch check` shows the live w=); Docker sends no reset time."
        )
    span = format_window(window)
    return (
        f"Wait: pulls come back one by one as the rolling {span} window passes (Docker sends no "
        f"reset time); every pull counted now is back within {span} at the latest."
    )


def abuse_limit_steps(retry_after: float | None = None) -> tuple[str, ...]:
    wait = (
        f"Honour Retry-After: wait {retry_after:.0f} s before the next request"
        if retry_after
        else "Honour Retry-After (Docker sends 60 s) before the next request"
    )
    return (
        "Slow the client down: fewer parallel requests (scanner concurrency, tags/list and "
        "manifest calls), and spread scans over time.",
        f"{wait}; a client that retries at once keeps itself blocked.",
        "This is not the pull quota: logging in or a paid plan does not lift it. Check the pull "
        "quota separately with `pullwatch check`.",
    )


def auth_failed_steps(invalid_token: bool = False) -> tuple[str, ...]:
    steps = []
    if invalid_token:
        steps.append(
            "The registry refused the token itself (invalid_token): refresh this identity; if it "
            "keeps happening, the token came from the wrong service - check --registry."
        )
    steps += [
        "Use the Docker ID (the username shown on hub.docker.com), not the e-mail address.",
        "A personal access token that expired or was revoked looks exactly like a wrong "
        "password: create a new one (hub.docker.com → Account settings → Personal access tokens) "
        "and edit the identity.",
        "With two-factor authentication or SSO a password is refused: use a personal access token.",
        "Do not retry in a loop: repeated bad logins lock the username out for about 10 minutes. "
        "pullwatch retries only when you edit or refresh the identity.",
    ]
    return tuple(steps)


def credentials_not_applied_step(source: str) -> str:
    return (
        f"Fix the identity: its requests are charged to {source}, not to an account, so the "
        "credentials are not being applied (check the Docker ID and token); until then it shares "
        "this address's anonymous limit."
    )


def network_steps(kind: ErrorKind | None, detail: str = "") -> tuple[str, ...]:
    if kind is ErrorKind.SECRET:
        return (
            "Make the keyring available (over SSH: start a Secret Service for the session, see "
            "the README's 'Over SSH'), or store the token again by editing the identity.",
        )
    if kind is ErrorKind.TLS:
        return (
            "A TLS-intercepting proxy? Trust its CA (SSL_CERT_FILE) or check the system clock.",
        )
    if kind is ErrorKind.HTTP and "404" in detail:
        return ("Check --repository: the probe repository must exist on the registry.",)
    if kind is ErrorKind.HTTP:
        return (
            "Docker Hub answered a server error: check https://www.dockerstatus.com; pullwatch "
            "retries with backoff.",
        )
    if kind is ErrorKind.MALFORMED:
        return (
            "Something between you and Docker Hub (a proxy, a captive portal) may be answering: "
            "check HTTPS_PROXY and --registry.",
        )
    return (
        "Check this host's way to the registry: DNS, firewall, HTTPS_PROXY / NO_PROXY. pullwatch "
        "retries with backoff.",
    )


# -- the reading's advice -----------------------------------------------------------------------


def _live(reading: Reading) -> str | None:
    if reading.limit is None:
        return None
    return f"{reading.limit} per {format_window(reading.window_seconds)}"


def _not_applied(reading: Reading) -> str | None:
    """The source an identity with credentials was charged to, when it is an IP."""
    source = parse_source(reading.source)
    if reading.username and source is not None and source.is_ip:
        return source.value
    return None


def _has_room(reading: Reading) -> bool:
    return reading.state is State.UNMETERED or (
        reading.state in (State.OK, State.LOW) and (reading.remaining or 0) > 0
    )


def room_elsewhere(reading: Reading, others: Sequence[Reading]) -> str | None:
    """Which other identities (in another bucket) can pull now, best first; None if no others."""
    candidates = [o for o in others if o.label != reading.label]
    if not candidates:
        return None
    roomy = sorted(
        (
            o
            for o in candidates
            if _has_room(o) and (o.source is None or o.source != reading.source)
        ),
        key=lambda o: (o.state is not State.UNMETERED, -(o.remaining or 0)),
    )
    if not roomy:
        return "No other identity has room right now."
    names = []
    for other in roomy[:3]:
        if other.state is State.UNMETERED:
            names.append(f"{other.label} (not metered)")
        else:
            names.append(f"{other.label} ({other.remaining}/{other.limit or '?'} left)")
    return f"Room now: {', '.join(names)} - pull as that identity while this bucket recovers."


def advise(
    reading: Reading,
    others: Sequence[Reading] = (),
    *,
    recovers_in: float | None = None,
) -> Advice:
    """The meaning of `reading` and the next steps.

    `others` are the other identities' latest readings (to say which one has room now);
    `recovers_in` is the estimated seconds until this bucket's next pull comes back, if known.
    """
    state = reading.state
    not_applied = _not_applied(reading)
    steps: list[str] = []
    meaning = STATE_MEANINGS[state]
    if not_applied and state in (State.OK, State.LOW, State.EXHAUSTED):
        steps.append(credentials_not_applied_step(not_applied))

    if state is State.EXHAUSTED:
        anonymous = reading.anonymous or not_applied is not None
        who = "this address's anonymous pulls" if anonymous else "this account's pulls"
        meaning = (
            f"No pulls left: {who} fail with 429 'toomanyrequests' until the rolling window "
            "gives some back."
        )
        if reading.http_status == 429 and reading.raw_remaining is None:
            meaning += " (A HEAD 429 without headers can also be the abuse limit, HAP429.)"
        if anonymous and not not_applied:
            steps.append(authenticate_step(_live(reading)))
        room = room_elsewhere(reading, others)
        if room:
            steps.append(room)
        steps.append(when_back_step(reading.window_seconds, recovers_in))
        if not anonymous:
            steps.extend(more_quota_steps())
        steps.append(pull_less_step())
    elif state is State.LOW:
        if recovers_in is not None:
            steps.append(when_back_step(reading.window_seconds, recovers_in))
        if reading.anonymous:
            steps.append(authenticate_step(_live(reading)))
        room = room_elsewhere(reading, others)
        if room and room.startswith("Room now"):
            steps.append(room)
        steps.append(pull_less_step())
    elif state is State.THROTTLED:
        detail = reading.detail or ""
        if "token endpoint" in detail:
            meaning = (
                "The token endpoint answered 429: too many token requests from here. Not the pull "
                "quota."
            )
            steps.append(
                "Reuse tokens until they expire (Docker Hub's last 300 s) instead of fetching one "
                "per request; slow the client down."
            )
            steps.append(abuse_limit_steps(reading.retry_after)[1])
        else:
            meaning = (
                "Docker Hub's abuse limit (HAP429): too many requests of any kind from this IP "
                "address or /64 per minute. Not the pull quota."
            )
            steps.extend(abuse_limit_steps(reading.retry_after))
    elif state is State.AUTH_FAILED:
        steps.extend(auth_failed_steps("invalid_token" in (reading.detail or "")))
    elif state is State.UNMETERED:
        if reading.anonymous:
            meaning = (
                "No rate-limit headers for anonymous pulls: this address or the probe image is "
                "exempt (a partner network or a sponsored image). Docker shows no quota."
            )
            steps.append(
                "If you expected a limit, check the probe repository (--repository): an exempt "
                "image is never metered."
            )
        else:
            meaning = (
                "No rate-limit headers: a paid plan (Pro, Team, Business) or an exempt image. "
                "No pull limit applies, and Docker shows no quota (fair use still applies)."
            )
    elif state is State.ERROR:
        steps.extend(network_steps(reading.error_kind, reading.detail or ""))
    return Advice(meaning=meaning, steps=tuple(steps))
