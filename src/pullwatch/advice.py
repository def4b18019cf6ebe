"""What a reading means and what to do next, in plain language.

`advise()` is called by `assess` (which every front end renders) and by the check screens. The
steps are the remedies of the vendor article pullwatch started from (docs/protocol.md, "The
remedies") made specific to the reading: which limit it is, which other identity has room now,
when pulls come back. The step texts are built by small functions that `explain` (pasted error
lines) reuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pullwatch.durations import at_most, format_span
from pullwatch.reading import ErrorKind, Reading, State, Step

STATE_MEANINGS: dict[State, str] = {
    State.OK: "Metered, with pulls to spare.",
    State.LOW: "Metered, and at or under the warning threshold: pulls will soon fail with 429.",
    State.EXHAUSTED: "No pulls left in this bucket: pulls fail with 429 until the rolling window "
    "gives some back.",
    State.UNMETERED: "The registry sent no rate-limit headers: on Docker Hub a paid plan or an "
    "exempt image or IP. No quota to show.",
    State.AUTH_FAILED: "The credentials (or the token) were refused. Not retried automatically: "
    "repeated bad logins lock a username out for about 10 minutes.",
    State.THROTTLED: "Rate-limited by the token endpoint or by the abuse limit (HAP429): not the "
    "pull quota. Backing off as Retry-After asks.",
    State.ERROR: "The probe could not complete (network, TLS, server error, odd answer or the "
    "keyring). Retried with backoff.",
    State.UNKNOWN: "Not probed yet, or the registry's rate-limit headers could not be read: "
    "pullwatch shows no number it cannot vouch for.",
}

DOCUMENTED_LIMITS = (
    "Docker documents 100 pulls per 6 h per IP without a login, 200 per 6 h for a free account"
)
PROOF = (
    "Prove it without spending a pull: `pullwatch check` (or `pullwatch head LABEL`) reads the "
    "live ratelimit headers with a HEAD request."
)
MIRROR_CAVEAT = (
    "If this registry is a pull-through cache or mirror: a HEAD through it may cost an upstream "
    "pull (a cold cache fetches the manifest from Docker Hub), and no Hub rate-limit headers come "
    "back. Watch the Hub limit of the mirror's credentials by probing Docker Hub directly with "
    "them."
)
NOT_HUB_UNMETERED = (
    "This registry sends no rate-limit headers: it does not report Docker Hub's pull limit (a "
    "private registry, or a mirror that does not pass the headers on). No quota to show."
)


@dataclass(frozen=True, slots=True)
class Advice:
    meaning: str
    steps: tuple[str, ...] = ()  # what to do next, most useful first; empty when nothing to do


# -- step texts (shared with `explain`) ---------------------------------------------------------


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


def when_back_step(
    window: int | None, recovers_in: float | None = None, *, docker_hub: bool = True
) -> str:
    sender = "Docker" if docker_hub else "the registry"
    if recovers_in is not None:
        return (
            f"Wait: the next pull comes back {at_most(recovers_in)} (an estimate from "
            f"watching this bucket; the window rolls, {sender} sends no reset time)."
        )
    if not window:
        documented = "6 h documented; " if docker_hub else ""
        return (
            f"Wait: pulls come back one by one as the rolling window passes ({documented}"
            f"`pullwatch check` shows the live w=); {sender} sends no reset time."
        )
    span = format_span(window)
    return (
        f"Wait: pulls come back one by one as the rolling {span} window passes ({sender} sends "
        f"no reset time); every pull counted now is back within {span} at the latest."
    )


def abuse_limit_steps(
    retry_after: float | None = None, *, docker_hub: bool = True
) -> tuple[str, ...]:
    if retry_after:
        wait = f"Honour Retry-After: wait {retry_after:.0f} s before the next request"
    elif docker_hub:
        wait = "Honour Retry-After (Docker sends 60 s) before the next request"
    else:
        wait = "Wait before the next request (honour Retry-After when the registry sends it)"
    last = (
        "This is not the pull quota: logging in or a paid plan does not lift it. Check the pull "
        "quota separately with `pullwatch check`."
        if docker_hub
        else "This is the registry's own request limit: ask its operator what it allows."
    )
    return (
        "Slow the client down: fewer parallel requests (scanner concurrency, tags/list and "
        "manifest calls), and spread scans over time.",
        f"{wait}; a client that retries at once keeps itself blocked.",
        last,
    )


def auth_failed_steps(
    invalid_token: bool = False, *, docker_hub: bool = True, anonymous: bool = False
) -> tuple[str, ...]:
    steps = []
    if invalid_token:
        steps.append(
            "The registry refused the token itself (invalid_token): refresh this identity; if it "
            "keeps happening, the token came from the wrong service - check --registry."
        )
    if anonymous:
        steps.append(
            "The registry refused an anonymous token: it wants a login for this repository. "
            "Add an identity with a username and token, or probe a public repository "
            "(--repository)."
        )
        return tuple(steps)
    if docker_hub:
        steps += [
            "Use the Docker ID (the username shown on hub.docker.com), not the e-mail address.",
            "A personal access token that expired or was revoked looks exactly like a wrong "
            "password: create a new one (hub.docker.com → Account settings → Personal access "
            "tokens) and edit the identity.",
            "With two-factor authentication or SSO a password is refused: use a personal "
            "access token.",
        ]
    else:
        steps.append(
            "Check the username and the password or token this registry expects (an expired or "
            "revoked token looks exactly like a wrong password), and edit the identity."
        )
    lockout = " (Docker Hub: about 10 minutes)" if docker_hub else ""
    steps.append(
        f"Do not retry in a loop: repeated bad logins can lock the username out{lockout}. "
        "pullwatch retries only when you edit or refresh the identity, or pass --retry-auth."
    )
    return tuple(steps)


def scope_steps(name: str, *, anonymous: bool) -> tuple[str, ...]:
    """An `insufficient_scope` refusal: the repository is private, missing, or not granted."""
    if anonymous:
        return (
            f"Anonymous pulls of {name} are not allowed: probe a public repository "
            "(--repository), or add an identity whose login may pull it.",
        )
    return (
        f"This login may not pull {name}: check the repository name (--repository) and the "
        "account's access to it (a token's scope can exclude it).",
    )


def credentials_not_applied_step(source: str) -> str:
    return (
        f"Fix the identity: its requests are charged to {source}, not to an account, so the "
        "credentials are not being applied (check the username and token); until then it shares "
        "this address's anonymous limit."
    )


def network_steps(
    kind: ErrorKind | None, detail: str = "", *, docker_hub: bool = True
) -> tuple[str, ...]:
    registry = "Docker Hub" if docker_hub else "the registry"
    if kind is ErrorKind.SECRET:
        return (
            "Make the keyring available (over SSH: start a Secret Service for the session, see "
            "the README's 'Over SSH'), or store the token again by editing the identity.",
        )
    if kind is ErrorKind.PLAIN_HTTP:
        return (
            "The registry speaks plain HTTP: give it as http://HOST:PORT (pullwatch accepts "
            "plain HTTP for loopback registries only).",
        )
    if kind is ErrorKind.TLS:
        return (
            "Trust the registry's CA: install it in the system trust store "
            "(update-ca-certificates), or pass --ca-cert FILE (or SSL_CERT_FILE); behind a "
            "TLS-intercepting proxy, trust the proxy's CA. Check the system clock too.",
        )
    if kind is ErrorKind.NOT_FOUND:
        return (
            "Check --repository (NAME[:TAG|@DIGEST]): the probe manifest must exist on the "
            "registry. This is a configuration error: it is checked again each round, without "
            "backoff.",
        )
    if kind is ErrorKind.HTTP:
        status = "https://www.dockerstatus.com" if docker_hub else "the registry's status"
        return (
            f"{registry} answered an unexpected status: check {status}; pullwatch retries with "
            "backoff.",
        )
    if kind is ErrorKind.MALFORMED:
        return (
            f"Something between you and {registry} (a proxy, a captive portal) may be answering, "
            "or the answer is unreadable: `pullwatch head LABEL` shows every header; check "
            "HTTPS_PROXY and --registry.",
        )
    if kind is ErrorKind.RESET:
        return (
            f"The connection was cut mid-answer: a proxy or load balancer dropping it, or "
            f"{registry} restarting. pullwatch retries with backoff.",
        )
    if kind is ErrorKind.DEADLINE:
        return (
            "The probe did not finish within the command's deadline (--timeout): the registry "
            "or the network is slow; the other identities were not held up.",
        )
    return (
        "Check this host's way to the registry: DNS, firewall, HTTPS_PROXY / NO_PROXY. pullwatch "
        "retries with backoff.",
    )


# -- the reading's advice -----------------------------------------------------------------------


def _live(reading: Reading) -> str | None:
    if reading.limit is None:
        return None
    return f"{reading.limit} per {format_span(reading.window_seconds)}"


def _not_applied(reading: Reading) -> str | None:
    """The source an identity with credentials was charged to, when it is an IP."""
    source = reading.source
    if reading.username and source is not None and source.is_ip:
        return source.value
    return None


def has_room(reading: Reading) -> bool:
    """Can this identity pull now, by its latest reading?"""
    if reading.state is State.UNMETERED:
        return True
    return (
        reading.state in (State.OK, State.LOW)
        and reading.quota_valid
        and (reading.remaining or 0) > 0
    )


def room_elsewhere(reading: Reading, others: Sequence[Reading]) -> str | None:
    """Which other identities (in another bucket) can pull now, best first; None if no others."""
    candidates = [o for o in others if o.label != reading.label]
    if not candidates:
        return None
    mine = reading.bucket_key
    roomy = sorted(
        (o for o in candidates if has_room(o) and (o.bucket_key is None or o.bucket_key != mine)),
        key=lambda o: (o.state is not State.UNMETERED, -(o.remaining or 0)),
    )
    if not roomy:
        return "No other identity has room right now."
    names = []
    for other in roomy[:3]:
        if other.state is State.UNMETERED:
            names.append(f"{other.label} (not metered)")
        else:
            names.append(f"{other.label} ({other.remaining}/{other.limit} left)")
    return f"Room now: {', '.join(names)} - pull as that identity while this bucket recovers."


def advise(
    reading: Reading,
    others: Sequence[Reading] = (),
    *,
    recovers_in: float | None = None,
    state: State | None = None,
) -> Advice:
    """The meaning of `reading` and the next steps.

    `state` is the assessed state (`low` is decided by the user's threshold; a 429 can be read
    as the abuse limit), when it differs from the reading's; `others` are the other identities'
    latest readings (to say which one has room now); `recovers_in` is the estimated seconds
    until this bucket's next pull comes back, if known. Wording follows the registry (Docker
    Hub or another) and the identity (anonymous or a login).
    """
    state = state or reading.state
    hub = reading.docker_hub
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
        if reading.http_status == 429 and reading.remaining is None:
            meaning += " (A HEAD 429 without headers can also be the abuse limit, HAP429.)"
        if anonymous and not not_applied and hub:
            steps.append(authenticate_step(_live(reading)))
        room = room_elsewhere(reading, others)
        if room:
            steps.append(room)
        steps.append(when_back_step(reading.window_seconds, recovers_in, docker_hub=hub))
        if not anonymous and hub:
            steps.extend(more_quota_steps())
        steps.append(pull_less_step())
    elif state is State.LOW:
        if recovers_in is not None:
            steps.append(when_back_step(reading.window_seconds, recovers_in, docker_hub=hub))
        if reading.anonymous and hub:
            steps.append(authenticate_step(_live(reading)))
        room = room_elsewhere(reading, others)
        if room and room.startswith("Room now"):
            steps.append(room)
        steps.append(pull_less_step())
    elif state is State.THROTTLED:
        detail = reading.detail or ""
        if reading.step is Step.TOKEN or detail.startswith("token"):
            meaning = (
                "The token endpoint answered 429: too many token requests from here. Not the pull "
                "quota."
            )
            lifetime = " (Docker Hub's last 300 s)" if hub else ""
            steps.append(
                f"Reuse tokens until they expire{lifetime} instead of fetching one per request; "
                "slow the client down."
            )
            steps.append(abuse_limit_steps(reading.retry_after, docker_hub=hub)[1])
        else:
            meaning = (
                "Docker Hub's abuse limit (HAP429): too many requests of any kind from this IP "
                "address or /64 per minute. Not the pull quota."
                if hub
                else "The registry's own rate limiting (429): too many requests from here."
            )
            if reading.http_status == 429 and reading.remaining is None:
                meaning += (
                    " (A HEAD 429 without rate-limit headers, for an identity that is not "
                    "metered: it cannot be the pull quota.)"
                )
            steps.extend(abuse_limit_steps(reading.retry_after, docker_hub=hub))
    elif state is State.AUTH_FAILED:
        detail = reading.detail or ""
        if "insufficient_scope" in detail:
            meaning = (
                "The registry does not let this identity pull the probe repository "
                "(insufficient_scope): it is private, or it does not exist."
            )
            name = (reading.repository or "the repository").split(":")[0].split("@")[0]
            steps.extend(scope_steps(name, anonymous=reading.anonymous))
        else:
            if not hub:
                meaning = (
                    "The credentials (or the token) were refused. Not retried automatically: "
                    "repeated bad logins can lock a username out."
                )
            steps.extend(
                auth_failed_steps(
                    "invalid_token" in detail, docker_hub=hub, anonymous=reading.anonymous
                )
            )
    elif state is State.UNMETERED:
        if not hub:
            meaning = NOT_HUB_UNMETERED
            steps.append(MIRROR_CAVEAT)
        elif reading.anonymous:
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
        if reading.error_kind is ErrorKind.NOT_FOUND:
            meaning = (
                "The probe manifest does not exist on this registry: a configuration error, "
                "checked again each round (not retried with backoff)."
            )
        steps.extend(network_steps(reading.error_kind, reading.detail or "", docker_hub=hub))
    elif state is State.UNKNOWN and reading.probed:
        meaning = (
            "The registry answered, but its rate-limit headers could not be read: pullwatch "
            "shows no number it cannot vouch for (the raw values are shown)."
        )
        steps.append(
            "`pullwatch head LABEL` shows every header as received; a proxy or a non-Docker "
            "registry may be rewriting them. The last good reading is kept, marked stale."
        )
    return Advice(meaning=meaning, steps=tuple(steps))
