"""Which certificate authorities an https registry is checked against: one `ssl.SSLContext`.

As pip (24.2 and later), curl and skopeo do, pullwatch trusts the operating system's store,
through the `truststore` package: on Linux the bundle that `update-ca-certificates` writes
(OpenSSL's default locations), on macOS the Keychain, on Windows the certificate store. Then:

- `SSL_CERT_FILE` / `SSL_CERT_DIR`, when set, are trusted *instead of* the system store, as
  OpenSSL reads them (and as httpx, which pullwatch used before, did);
- `--ca-cert FILE` (env `PULLWATCH_CA_CERT`, config `ca_cert`): a PEM file of CAs trusted *in
  addition*, for a private registry's CA without touching the system.

`load_ca_cert` reads and checks that file when a command starts, so a missing, unreadable or
non-PEM file is a one-line `CaCertError` before any request. `build_context` runs when the first
https request is sent (the transport calls it lazily), so a plain-http registry never loads a
trust store and `pullwatch --help` never imports one: importing this module imports neither
`ssl` nor `truststore`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pullwatch.hub.urls import ConfigurationError

if TYPE_CHECKING:
    import ssl

ENV_CA_CERT = "PULLWATCH_CA_CERT"
ENV_CERT_FILE = "SSL_CERT_FILE"
ENV_CERT_DIR = "SSL_CERT_DIR"
MAX_CA_FILE = 4 * 1024 * 1024  # a bundle of every public CA is ~200 KiB
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class CaCertError(ConfigurationError):
    """A CA file pullwatch was told to trust cannot be used. str() is one line."""


@dataclass(frozen=True, slots=True)
class TrustConfig:
    """What to trust for https, resolved once per command (no file is opened here)."""

    ca_pem: str | None = None  # extra CAs (PEM text, read and checked by `load_ca_cert`)
    ca_file: str | None = None  # where `ca_pem` came from, for messages
    cert_file: str | None = None  # SSL_CERT_FILE: trusted instead of the system store
    cert_dir: str | None = None  # SSL_CERT_DIR: likewise

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        ca_pem: str | None = None,
        ca_file: str | None = None,
    ) -> TrustConfig:
        """`SSL_CERT_FILE` / `SSL_CERT_DIR` from `env` (default: this process's), plus the
        extra CAs already read from `ca_file`."""
        env = os.environ if env is None else env
        return cls(
            ca_pem=ca_pem,
            ca_file=ca_file,
            cert_file=env.get(ENV_CERT_FILE) or None,
            cert_dir=env.get(ENV_CERT_DIR) or None,
        )

    @property
    def replaces_system_store(self) -> bool:
        return bool(self.cert_file or self.cert_dir)

    def describe(self) -> str:
        """`the system trust store and --ca-cert /etc/x.pem`: for messages and reports."""
        if self.replaces_system_store:
            parts = [
                f"{name}={value}"
                for name, value in ((ENV_CERT_FILE, self.cert_file), (ENV_CERT_DIR, self.cert_dir))
                if value
            ]
            base = " and ".join(parts)
        else:
            base = "the system trust store"
        return base + (f" and --ca-cert {self.ca_file}" if self.ca_pem else "")


def load_ca_cert(path: str | Path, *, what: str = "--ca-cert") -> str:
    """The PEM text of the CA file at `path`, checked: at least one certificate OpenSSL can
    read. Raises `CaCertError` (one line, naming `what` and the path) otherwise."""
    import ssl

    shown = str(path)
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_CA_FILE + 1)
    except FileNotFoundError:
        raise CaCertError(f"{what} {shown}: no such file") from None
    except IsADirectoryError:
        raise CaCertError(f"{what} {shown}: is a directory, not a PEM file") from None
    except PermissionError:
        raise CaCertError(f"{what} {shown}: permission denied") from None
    except OSError as exc:
        raise CaCertError(f"{what} {shown}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_CA_FILE:
        raise CaCertError(f"{what} {shown}: larger than {MAX_CA_FILE // 1024 // 1024} MiB")
    text = data.decode("ascii", "replace")
    if PEM_CERTIFICATE not in text:
        raise CaCertError(
            f"{what} {shown}: no PEM certificate in it (expected {PEM_CERTIFICATE} ...)"
        )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise CaCertError(f"{what} {shown}: not a readable PEM certificate ({reason})") from None
    return text


def check_environment(trust: TrustConfig) -> None:
    """SSL_CERT_FILE / SSL_CERT_DIR, when set, must exist (else OpenSSL trusts nothing, and
    every https probe would fail with a puzzling verify error). Raises `CaCertError`."""
    if trust.cert_file and not Path(trust.cert_file).is_file():
        raise CaCertError(f"{ENV_CERT_FILE}={trust.cert_file}: no such file")
    if trust.cert_dir and not Path(trust.cert_dir).is_dir():
        raise CaCertError(f"{ENV_CERT_DIR}={trust.cert_dir}: no such directory")


def build_context(trust: TrustConfig | None = None) -> ssl.SSLContext:
    """A verifying client context for `trust` (default: the system store and the environment).

    Raises `CaCertError` when SSL_CERT_FILE / SSL_CERT_DIR cannot be loaded.
    """
    import ssl

    trust = trust if trust is not None else TrustConfig.from_environment()
    context: ssl.SSLContext
    if trust.replaces_system_store:
        try:
            context = ssl.create_default_context(cafile=trust.cert_file, capath=trust.cert_dir)
        except (OSError, ssl.SSLError) as exc:
            raise CaCertError(
                f"{trust.describe()}: cannot load it: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    else:
        try:
            import truststore
        except ImportError:  # a dependency, but an install without it still trusts OpenSSL's
            context = ssl.create_default_context()
        else:
            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trust.ca_pem:
        context.load_verify_locations(cadata=trust.ca_pem)
    return context


def unverified_context() -> ssl.SSLContext:
    """A context that checks nothing (`verify=False`: tests only, never a user's choice)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
