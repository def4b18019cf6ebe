"""Where to probe: the registry URL and the manifest reference, normalised and validated.

Pure functions; a bad value is a `ConfigurationError` with a one-line reason, raised before any
request is sent. Only Docker Hub has the `library/` namespace for one-part names (`alpine` is
`library/alpine` there); every other registry takes a name as written (docs/protocol.md,
"Other registries").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_REGISTRY = "https://registry-1.docker.io"
DEFAULT_REPOSITORY = "ratelimitpreview/test"
DEFAULT_TAG = "latest"

DOCKER_HUB_HOSTS = frozenset(
    {"registry-1.docker.io", "docker.io", "index.docker.io", "registry.docker.io", "hub.docker.com"}
)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
MAX_NAME = 255


class ConfigurationError(ValueError):
    """A registry URL or repository name pullwatch cannot use. str() is one line."""


def is_loopback(host: str) -> bool:
    """`localhost`, a `.localhost` name (RFC 6761 keeps them on loopback), or a loopback IP."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_registry(url: str) -> str:
    """`registry-1.docker.io` -> `https://registry-1.docker.io`; `docker.io` means Docker Hub.

    `http://` is accepted only for loopback (the simulator, a local registry).
    """
    text = url.strip().rstrip("/")
    if not text:
        raise ConfigurationError("registry URL is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"registry URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigurationError("registry URL must not carry credentials; add an identity")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"registry URL {url!r} must be scheme://host[:port] only")
    if parts.hostname in DOCKER_HUB_HOSTS and parts.port is None:
        return DEFAULT_REGISTRY
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(f"registry URL {url!r} is plain http: only loopback may use http")
    return f"{parts.scheme}://{parts.netloc}"


def is_docker_hub(registry: str) -> bool:
    """Whether a normalised registry URL is Docker Hub's (the only one with Hub's pull limit)."""
    return registry == DEFAULT_REGISTRY


def registry_host(registry: str) -> str:
    """`https://registry-1.docker.io` -> `registry-1.docker.io` (for labels and headings)."""
    return registry.split("://", 1)[-1]


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """The manifest a probe HEADs: a repository name and a tag or a digest."""

    name: str
    reference: str = DEFAULT_TAG

    @property
    def is_digest(self) -> bool:
        return ":" in self.reference

    @property
    def display(self) -> str:
        """`name:tag` or `name@sha256:...`: what the user would write."""
        return (
            f"{self.name}@{self.reference}" if self.is_digest else f"{self.name}:{self.reference}"
        )

    @property
    def path(self) -> str:
        return f"/v2/{self.name}/manifests/{self.reference}"

    @property
    def scope(self) -> str:
        return f"repository:{self.name}:pull"

    def __str__(self) -> str:
        return self.display


def parse_manifest_ref(text: str, registry: str = DEFAULT_REGISTRY) -> ManifestRef:
    """`NAME[:TAG|@DIGEST]` -> a `ManifestRef`; `library/` is added only on Docker Hub.

    Raises ConfigurationError for anything that is not a valid reference.
    """
    raw = text.strip()
    if not raw:
        raise ConfigurationError("repository is empty")
    name, reference = raw, DEFAULT_TAG
    if "@" in raw:
        name, _, reference = raw.partition("@")
        if not _DIGEST.match(reference):
            raise ConfigurationError(
                f"repository {text!r}: {reference!r} is not a digest (like sha256:<64 hex>)"
            )
    else:
        head, sep, tail = raw.rpartition(":")
        if sep and "/" not in tail:  # a colon before the last slash would be a host:port
            name, reference = head, tail
            if not _TAG.match(reference):
                raise ConfigurationError(f"repository {text!r}: {reference!r} is not a valid tag")
    name = name.strip("/")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise ConfigurationError(
            f"repository {text!r} is not a valid repository name (lower-case letters, digits "
            "and . _ - separators, parts joined by /)"
        )
    if is_docker_hub(registry) and "/" not in name:
        name = f"library/{name}"
    return ManifestRef(name, reference)
