"""A tiny OCI image written by hand, and `skopeo copy` to push it. No network, no daemon.

`write_oci_layout(dir, tags)` writes an OCI image layout: one gzip'd tar layer holding one small
file, a config JSON, the image manifest, `index.json` naming it once per tag, and `oci-layout`.
Everything is deterministic (fixed mtimes), so the digests are the same on every run.

`Skopeo` runs skopeo with HOME, the XDG directories, TMPDIR and the auth file in a directory of
its own (never the user's), no proxy variables, `--insecure-policy` (no policy.json needed) and a
timeout on every call.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
PRIVATE_PREFIXES = ("XDG_", "DOCKER_", "CONTAINERS_")  # replaced or dropped for skopeo


@dataclass(frozen=True)
class OciImage:
    layout: Path
    tags: tuple[str, ...]
    manifest_digest: str
    manifest_size: int
    config_digest: str
    layer_digest: str


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = _digest(data)
    (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    return digest


def _layer_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_oci_layout(
    layout: Path, tags: Sequence[str] = ("latest",), content: bytes = b"hello from registrykit\n"
) -> OciImage:
    """One single-layer linux/amd64 image in an OCI layout at `layout`, under each of `tags`."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    tar = _layer_tar(content)
    layer = gzip.compress(tar, mtime=0)
    layer_digest = _write_blob(layout, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
        "history": [{"created_by": "registrykit", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = _write_blob(layout, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = _write_blob(layout, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {REF_NAME: tag},
            }
            for tag in tags
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return OciImage(
        layout,
        tuple(tags),
        manifest_digest,
        len(manifest_bytes),
        config_digest,
        layer_digest,
    )


class SkopeoError(RuntimeError):
    """A skopeo call failed or timed out; the message has its stderr."""


@dataclass
class Skopeo:
    """skopeo with a private home (see the module). `seconds` adds up the time spent in copies."""

    executable: str
    home: Path
    timeout: float = 60.0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        for sub in ("config", "data", "cache", "run", "tmp"):
            (self.home / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.auth_file = self.home / "auth.json"
        self.auth_file.write_text('{"auths": {}}')

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key.lower() not in PROXY_VARIABLES and not key.startswith(PRIVATE_PREFIXES)
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_DATA_HOME=str(self.home / "data"),
            XDG_CACHE_HOME=str(self.home / "cache"),
            XDG_RUNTIME_DIR=str(self.home / "run"),
            TMPDIR=str(self.home / "tmp"),
            REGISTRY_AUTH_FILE=str(self.auth_file),
        )
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [self.executable, "--insecure-policy", *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SkopeoError(f"skopeo timed out after {self.timeout:g} s: {args}") from exc
        if done.returncode != 0:
            raise SkopeoError(f"skopeo {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
        return done

    def push(
        self,
        image: OciImage,
        tag: str,
        destination: str,
        *,
        creds: tuple[str, str] | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        """`skopeo copy oci:LAYOUT:TAG docker://DESTINATION` (host:port/repo:tag).

        Without `cert_dir` TLS is not verified (and plain http is allowed); with it the
        destination is verified against the CA certificates (`*.crt`) in that directory.
        """
        args = ["copy", "--quiet", "--retry-times", "0"]
        if cert_dir is not None:
            args += ["--dest-cert-dir", str(cert_dir), "--dest-tls-verify=true"]
        else:
            args.append("--dest-tls-verify=false")
        if creds is not None:
            args += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        else:
            args.append("--dest-no-creds")
        started = time.monotonic()
        try:
            self.run(*args, f"oci:{image.layout}:{tag}", f"docker://{destination}")
        finally:
            self.seconds += time.monotonic() - started
