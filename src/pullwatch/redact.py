"""Scrubbing secrets out of anything pullwatch shows or stores.

Two layers: patterns that catch credentials by their shape (bearer and basic authorizations,
JWTs, Docker `dckr_jti_`/`dckr_pat_` ids, `"token": ...` fields, the username a 429 echoes), and
the literal values pullwatch itself handled (secrets read from the keyring, tokens it received),
registered by the client as it uses them. `one_line` also strips control characters (C0,
C1, escape sequences, bidirectional overrides) so a hostile server cannot paint the terminal.

Order matters: a value is redacted whole, then cleaned, then shortened - shortening first
would cut a token into pieces that no longer look like one.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"

# Each shape with the strings (lower case) one of which every match contains: an ASCII text
# with none of them cannot match, and most texts (header values, URLs) skip every pattern.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (
        # a credential after the scheme, but not a challenge's parameters (`Bearer realm="..."`)
        re.compile(
            r"(?i)\b(bearer|basic)(\s+)"
            r"(?!(?:realm|service|scope|error|error_description|error_uri|charset)\s*=)"
            r"[A-Za-z0-9._~+/=-]{4,}"
        ),
        rf"\1\2{REDACTED}",
        ("bearer", "basic"),
    ),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED, ("eyj",)),
    (re.compile(r"dckr_(jti|pat|oat)_[A-Za-z0-9_-]+"), rf"dckr_\1_{REDACTED}", ("dckr_",)),
    # JSON fields ("token": "...") and query or form parameters (token=...)
    (
        re.compile(r"""(?i)(["'](?:access_|refresh_|identity)?token["']\s*:\s*["']?)[^"',\s}]+"""),
        rf"\1{REDACTED}",
        ("token",),
    ),
    (re.compile(r"(?i)\b((?:access_|refresh_)?token=)[^&\s\"']+"), rf"\1{REDACTED}", ("token=",)),
    (
        re.compile(r"""(?i)(["'](?:password|passwd|secret)["']\s*:\s*["']?)[^"',\s}]+"""),
        rf"\1{REDACTED}",
        ("passw", "secret"),
    ),
    (
        re.compile(r"(?i)\b((?:password|passwd|secret)=)[^&\s\"']+"),
        rf"\1{REDACTED}",
        ("password=", "passwd=", "secret="),
    ),
    # Docker's authenticated 429 echoes the user: "... rate limit as 'alice': dckr_jti_..."
    (re.compile(r"(?i)(\bas\s+')[^'\n]{1,200}(')"), rf"\1{REDACTED}\2", ("'",)),
)

_CONTROL = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI sequences
    r"|[\x1b][\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # their 8-bit (C1) forms
    r"|[\x9b][0-9;?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x00-\x1f\x7f-\x9f]"  # C0, DEL, C1
    r"|[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"  # zero-width and bidi controls
)
# Every pattern's strings in one search: an ASCII text with none of them skips the patterns
# with one scan instead of one per pattern (history rows are re-read through here by the
# thousand at the dashboard's start).
_ANY_TRIGGER = re.compile("|".join(re.escape(t) for _, _, triggers in _PATTERNS for t in triggers))
_SPACE = re.compile(r"\s+")

_MIN_LITERAL = 4  # shorter registered values would redact ordinary words


class _Literals:
    """Process-wide registry of secret values seen, keyed so a renewed token replaces the old.

    A lookup costs the same however many values are registered: each value is indexed by its
    last `_MIN_LITERAL` characters and a text is checked through its own windows of that length.
    (One regex of every value cost a recompile per new value and O(values) per text: a round
    of 1000 identities spent minutes compiling it.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._by_tail: dict[str, dict[str, int]] = {}  # last chars -> value -> keys holding it

    def register(self, key: str, value: str | None) -> None:
        with self._lock:
            old = self._values.get(key)
            if value and len(value) >= _MIN_LITERAL:
                if old == value:
                    return
                self._values[key] = value
                holders = self._by_tail.setdefault(value[-_MIN_LITERAL:], {})
                holders[value] = holders.get(value, 0) + 1
            elif old is not None:
                del self._values[key]
            else:
                return
            if old is not None:
                tail = old[-_MIN_LITERAL:]
                holders = self._by_tail[tail]
                holders[old] -= 1
                if not holders[old]:
                    del holders[old]
                    if not holders:
                        del self._by_tail[tail]

    def scrub(self, text: str) -> str:
        """`text` with every registered value in it replaced (longest first)."""
        width = _MIN_LITERAL
        with self._lock:
            index = self._by_tail
            if not index or len(text) < width:
                return text
            tails = {t for i in range(len(text) - width + 1) if (t := text[i : i + width]) in index}
            found = [v for tail in tails for v in index[tail] if v in text]
        for value in sorted(found, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


_literals = _Literals()

# Words shaped like an opaque token: what a fingerprint of an earlier run's token is checked on.
_TOKEN_WORD = re.compile(r"[A-Za-z0-9._~+/=-]{20,}")


class _Fingerprints:
    """Salted digests of tokens issued in earlier runs (see `ledger.py`): a registry that
    echoes one later is still redacted, though this process never saw the token itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._salt = ""
        self._digests: set[str] = set()

    def load(self, salt: str, digests: Iterable[str]) -> None:
        with self._lock:
            self._salt, self._digests = salt, set(digests)

    def add(self, digest: str) -> None:
        with self._lock:
            self._digests.add(digest)

    def scrub(self, text: str) -> str:
        if not self._digests or len(text) < 20:
            return text
        with self._lock:
            salt = self._salt
            words = [w for w in set(_TOKEN_WORD.findall(text))]
            found = [w for w in words if fingerprint(salt, w) in self._digests]
        for word in found:
            text = text.replace(word, REDACTED)
        return text


_fingerprints = _Fingerprints()


def fingerprint(salt: str, value: str) -> str:
    """A salted SHA-256 of a token: says "the same token", never reveals it."""
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()[:32]


def register_secret(key: str, value: str | None) -> None:
    """Remember `value` (a secret or token) under `key`; None forgets the key's value."""
    _literals.register(key, value)


def load_fingerprints(salt: str, digests: Iterable[str]) -> None:
    """Redact, from now on, any token whose salted digest is one of `digests`."""
    _fingerprints.load(salt, digests)


def add_fingerprint(digest: str) -> None:
    """One more digest to redact (made with the salt `load_fingerprints` was given)."""
    _fingerprints.add(digest)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known secret and anything shaped like a credential replaced."""
    if not text:
        return text
    for value in sorted((v for v in extra if v and len(v) >= _MIN_LITERAL), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _literals.scrub(text)
    text = _fingerprints.scrub(text)
    # In ASCII text lower() folds case exactly as the patterns' (?i) does; other text (where
    # (?i) also folds e.g. "ſ" to "s") goes through every pattern.
    plain = text.isascii()
    low = text.lower()
    if plain and not _ANY_TRIGGER.search(low):
        return text
    for pattern, replacement, triggers in _PATTERNS:
        if plain and not any(trigger in low for trigger in triggers):
            continue
        changed = pattern.sub(replacement, text)
        if changed != text:
            text, low = changed, changed.lower()
    return text


# Longer values are cut before anything else: no header or body field pullwatch shows is
# legitimately this long, and redaction must stay cheap whatever a hostile server sends.
MAX_SCANNED = 64 * 1024


def strip_controls(text: str) -> str:
    """`text` with escape sequences and control, zero-width and bidi characters made spaces."""
    return _CONTROL.sub(" ", text)


def one_line(text: str, limit: int = 200) -> str:
    """Redacted (whole), control characters removed, whitespace collapsed, at most `limit`."""
    text = redact(text[:MAX_SCANNED])
    text = _SPACE.sub(" ", strip_controls(text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_headers(headers: Iterable[tuple[str, str]], limit: int = 300) -> list[tuple[str, str]]:
    """Headers safe to show: credentials blanked, every value redacted and made one line."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        clean_name = one_line(name, 80)
        if clean_name.lower() in _SENSITIVE_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value.strip() else ""
            out.append((clean_name, f"{one_line(scheme, 20)} {REDACTED}".strip()))
        else:
            out.append((clean_name, one_line(value, limit)))
    return out
