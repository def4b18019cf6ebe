"""Failures, classified: a transport exception or an error answer -> an error kind and one line.

Every network failure a probe can meet ends here as an `ErrorKind` and a short reason without a
step prefix (the client adds the step: "token request: connection refused"). Nothing raises.
Importing this module does not import httpx (the verdict and the renderers use it).
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from pullwatch.reading import ErrorKind
from pullwatch.redact import one_line

_DNS_TEXT = re.compile(
    r"Name or service not known|nodename nor servname|Temporary failure in name resolution"
    r"|No address associated|getaddrinfo failed"
)
# What OpenSSL says when the other side answered a ClientHello with plain HTTP.
_PLAIN_HTTP_TEXT = re.compile(r"WRONG_VERSION_NUMBER|record layer failure|http request", re.I)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def classify_transport_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map an httpx/asyncio/OS failure to an error kind and a short reason (no step prefix)."""
    # Loaded already whenever there is a transport error to classify.
    import asyncio
    import socket
    import ssl

    import httpx

    from pullwatch.hub.tls import CaCertError

    chain = _chain(exc)
    trust = next((e for e in chain if isinstance(e, CaCertError)), None)
    if trust is not None:  # the trust store itself could not be loaded (hub/tls.py)
        return ErrorKind.TLS, str(trust)
    texts: list[str] = []
    for error in chain:  # each distinct message once: httpx repeats its cause's text
        text = str(error)
        if text and text not in texts:
            texts.append(text)
    text = " ".join(texts)
    if any(isinstance(e, socket.gaierror) for e in chain) or _DNS_TEXT.search(text):
        return ErrorKind.DNS, "cannot resolve the host name (DNS)"
    verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None or "CERTIFICATE_VERIFY" in text:
        reason = verify.verify_message if verify is not None else "certificate verify failed"
        return ErrorKind.TLS, f"TLS certificate not trusted: {reason}"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "[SSL" in text:
        if _PLAIN_HTTP_TEXT.search(text):
            return (
                ErrorKind.PLAIN_HTTP,
                "the server answered plain HTTP to a TLS handshake: it serves http://, not "
                "https:// (http:// is accepted for loopback registries)",
            )
        ssl_error = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
        reason = getattr(ssl_error, "reason", None) or one_line(text, 100)
        return ErrorKind.TLS, f"TLS handshake failed: {one_line(str(reason), 100)}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError | asyncio.TimeoutError):
        if isinstance(exc, httpx.ConnectTimeout):
            return ErrorKind.TIMEOUT, "timed out connecting"
        return ErrorKind.TIMEOUT, "timed out waiting for the answer"
    if isinstance(exc, httpx.TooManyRedirects):
        return ErrorKind.MALFORMED, "redirect loop (too many redirects)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return ErrorKind.CONNECT, "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "reset by peer" in text:
        return ErrorKind.RESET, "connection reset by the server mid-answer"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in text or "disconnected" in text or "closed" in text:
            return ErrorKind.RESET, "connection closed before a complete answer"
        return ErrorKind.MALFORMED, f"malformed HTTP answer: {one_line(str(exc), 100)}"
    if isinstance(exc, httpx.ConnectError):
        return ErrorKind.CONNECT, f"cannot connect: {one_line(str(exc), 100) or 'no reason given'}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return ErrorKind.RESET, "connection lost mid-answer"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ErrorKind.MALFORMED, f"unusable URL: {one_line(str(exc), 100)}"
    if isinstance(exc, httpx.DecodingError):
        return ErrorKind.MALFORMED, "answer could not be decoded"
    if isinstance(exc, OSError):
        return ErrorKind.CONNECT, f"network error: {one_line(str(exc), 100)}"
    return ErrorKind.MALFORMED, f"unexpected {type(exc).__name__}: {one_line(str(exc), 100)}"


def status_phrase(status: int) -> str:
    """`404 Not Found`, or the bare number for a status with no standard phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def error_detail(body: bytes) -> str | None:
    """The server's own words from an error body: Docker Hub's `details`, a registry's
    `errors` list (`[{"code", "message", "detail"}]`), or a short plain-text body. One line,
    redacted and cleaned; None when there is nothing readable.
    """
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = body[:300].decode("utf-8", "replace").strip()
        return one_line(text, 160) if text and not text.startswith("<") else None
    if isinstance(data, dict):
        if isinstance(data.get("details"), str):
            return one_line(data["details"], 160)
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message") or errors[0].get("code")
            if isinstance(message, str):
                return one_line(message, 160)
        for key in ("message", "error", "detail"):
            if isinstance(data.get(key), str):
                return one_line(data[key], 160)
    return None
