"""Pytest plugin: the real CNCF distribution registry, images pushed with real skopeo.

Everything runs on 127.0.0.1 with free ports, in temporary directories, every wait bounded.
The registries are session-scoped and the images are pushed once; the function-scoped fixtures
hand them out with the access log marked (the kit's pushes and readiness polls never count) and,
for the token registry, the token server's policy and request log reset.

- `plain_registry` (a): no auth, plain http.
- `token_registry` (b): `auth: token`, with `token_registry.token_server` (also the fixture
  `token_server`; a `TokenServer`: anonymous pull allowed except on `PRIVATE_REPOSITORY`, the user
  `KIT_USER`; `.configure(...)` changes the policy for one test, `.requests` is its log).
- `tls_registry` (c): https with a certificate from a private CA (`tls_registry.ca_pem`).
- `mirror_registry` (d): a cold pull-through cache of (a), new for each test
  (`mirror_registry.upstream` is (a)).

Each registry holds `ratelimitpreview/test:latest`, `solo:latest` and `ratelimitpreview/notag:v1`
(no `latest`); the token registry also `private/secret:latest`. A test reads what a registry saw
with `registry.access_log.requests()` (method, path, status since the mark; `mark()` moves it) and
proves no pull was spent with `registry.access_log.assert_no_pull()`.

`pullwatch_cli` runs `python -m pullwatch` as a subprocess with its own config, data and home
directories, no proxy variables and no keyring (anonymous needs none); `add_identity` switches
its processes to a plain-file keyring in the temporary home (opted into explicitly with
PULLWATCH_ALLOW_PLAINTEXT_KEYRING: test passwords only, and no Argon2 cost per process).
`registry_cli` runs the same commands in this process (`pullwatch.cli.main`, an in-memory
keyring, no proxy or TLS variables): the same code path without an interpreter start per
command, for tests that render many commands.

Underneath: `registry_tools` (the executables), `kit_image` (the OCI layout), `skopeo` (skopeo
with a private home), and `registrykit/` (registry process, token server, image, access log).
Start and push times are printed in pytest's terminal summary ("real registry kit").

If `docker-registry` or `skopeo` is missing the tests using these fixtures are skipped - except
when CI=true, where they fail instead (as the `secret_service` fixture does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from registrykit.oci import OciImage, Skopeo, SkopeoError, write_oci_layout
from registrykit.registry import (
    Registry,
    RegistryStartError,
    TlsFiles,
    TokenAuth,
    start_registry,
)
from registrykit.tokenserver import SigningKey, TokenPolicy, TokenServer

REPOSITORY = "ratelimitpreview/test"  # pullwatch's default probe repository, tag latest
SOLO_REPOSITORY = "solo"  # a one-part name: Docker Hub would call it library/solo
NOTAG_REPOSITORY = "ratelimitpreview/notag"  # only the tag v1, no latest
PRIVATE_REPOSITORY = "private/secret"  # token registry only: anonymous may not pull it
PUSHED: tuple[tuple[str, str], ...] = (
    (REPOSITORY, "latest"),
    (SOLO_REPOSITORY, "latest"),
    (NOTAG_REPOSITORY, "v1"),
)
KIT_USER = ("kituser", "kit-password-0c4f")  # the token server's one user (push and pull)
TOKEN_SERVICE = "registrykit"
TOKEN_ISSUER = "registrykit-issuer"
CLI_TIMEOUT = 60.0

# Seconds spent starting each registry and pushing to it, shown in pytest's terminal summary.
TIMINGS: dict[str, float] = {}


# -- availability -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryTools:
    registry: str  # the docker-registry executable
    skopeo: str


def _unavailable(reason: str) -> NoReturn:
    message = f"real registry tests need {reason}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message + " (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def registry_tools() -> RegistryTools:
    """The `docker-registry` and `skopeo` executables (skip if missing; fail under CI=true)."""
    registry = shutil.which("docker-registry")
    skopeo = shutil.which("skopeo")
    missing = [
        name for name, path in (("docker-registry", registry), ("skopeo", skopeo)) if not path
    ]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} (Debian packages docker-registry and skopeo; .ci/run "
            "installs them)"
        )
    assert registry is not None and skopeo is not None
    return RegistryTools(registry, skopeo)


@pytest.fixture(scope="session")
def kit_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """The tiny OCI image (an OCI layout with tags `latest` and `v1`), made once."""
    return write_oci_layout(tmp_path_factory.mktemp("oci-image"), ("latest", "v1"))


@pytest.fixture(scope="session")
def skopeo(registry_tools: RegistryTools, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """skopeo with a private home directory, auth file and temp directory."""
    return Skopeo(registry_tools.skopeo, tmp_path_factory.mktemp("skopeo-home"))


def _start(registry_tools: RegistryTools, base: Path, **options: Any) -> Registry:
    try:
        registry = start_registry(registry_tools.registry, base, **options)
    except RegistryStartError as exc:  # installed but not working: a failure, never a skip
        pytest.fail(str(exc), pytrace=False)
    TIMINGS[f"{registry.name}: start"] = registry.startup_seconds
    return registry


def _push_all(
    registry: Registry,
    skopeo: Skopeo,
    image: OciImage,
    pushes: tuple[tuple[str, str], ...] = PUSHED,
    **options: Any,
) -> None:
    before = skopeo.seconds
    try:
        for repository, tag in pushes:
            skopeo.push(image, tag, f"{registry.host}/{repository}:{tag}", **options)
    except SkopeoError as exc:
        registry.stop()
        pytest.fail(f"{registry.name}: {exc}\nregistry log: {registry.log_tail()}", pytrace=False)
    TIMINGS[f"{registry.name}: push {len(pushes)} images"] = skopeo.seconds - before


# -- (a) no auth --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def plain_registry_session(
    registry_tools: RegistryTools,
    skopeo: Skopeo,
    kit_image: OciImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    registry = _start(registry_tools, tmp_path_factory.mktemp("registry-plain"), name="plain")
    try:
        _push_all(registry, skopeo, kit_image)
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def plain_registry(plain_registry_session: Registry) -> Registry:
    """(a) The no-auth registry over http, with the images; its access log marked."""
    plain_registry_session.access_log.mark()
    return plain_registry_session


# -- (b) token auth -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def token_registry_session(
    registry_tools: RegistryTools,
    skopeo: Skopeo,
    kit_image: OciImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("registry-token")
    key = SigningKey.generate()
    policy = TokenPolicy(
        users={KIT_USER[0]: KIT_USER[1]},
        private_repositories=frozenset({PRIVATE_REPOSITORY}),
    )
    server = TokenServer(key, service=TOKEN_SERVICE, issuer=TOKEN_ISSUER, policy=policy).start()
    try:
        auth = TokenAuth(
            realm=server.realm,
            service=TOKEN_SERVICE,
            issuer=TOKEN_ISSUER,
            rootcertbundle=key.write_bundle(base / "token-bundle.pem"),
        )
        registry = _start(registry_tools, base / "registry", name="token", token=auth)
        registry.token_server = server
        try:
            pushes = (*PUSHED, (PRIVATE_REPOSITORY, "latest"))
            _push_all(registry, skopeo, kit_image, pushes, creds=KIT_USER)
            yield registry
        finally:
            registry.stop()
    finally:
        server.stop()


@pytest.fixture
def token_registry(token_registry_session: Registry) -> Iterator[Registry]:
    """(b) The token-auth registry; its token server reset and both logs cleared."""
    server = token_registry_session.token_server
    assert server is not None
    server.reset()
    token_registry_session.access_log.mark()
    try:
        yield token_registry_session
    finally:
        server.reset()


@pytest.fixture
def token_server(token_registry: Registry) -> TokenServer:
    """The token server of `token_registry` (reset for this test)."""
    assert token_registry.token_server is not None
    return token_registry.token_server


# -- (c) TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_registry_session(
    registry_tools: RegistryTools,
    skopeo: Skopeo,
    kit_image: OciImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    import trustme

    base = tmp_path_factory.mktemp("registry-tls")
    ca = trustme.CA(organization_name="registrykit test CA")
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(
        certificate=base / "server-chain.pem",
        key=base / "server-key.pem",
        ca_pem=base / "ca.pem",
    )
    files.certificate.write_bytes(b"".join(p.bytes() for p in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca_pem))
    cert_dir = base / "skopeo-certs"  # skopeo trusts every *.crt in here
    cert_dir.mkdir()
    shutil.copy(files.ca_pem, cert_dir / "ca.crt")
    registry = _start(registry_tools, base / "registry", name="tls", tls=files)
    try:
        _push_all(registry, skopeo, kit_image, cert_dir=cert_dir)
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def tls_registry(tls_registry_session: Registry) -> Registry:
    """(c) The https registry; `tls_registry.ca_pem` is the CA (PEM) that signed its cert."""
    tls_registry_session.access_log.mark()
    return tls_registry_session


# -- (d) pull-through cache ---------------------------------------------------------------------


@pytest.fixture
def mirror_registry(
    registry_tools: RegistryTools, plain_registry: Registry, tmp_path: Path
) -> Iterator[Registry]:
    """(d) A cold pull-through cache of `plain_registry`, new for this test; both logs marked."""
    mirror = _start(
        registry_tools, tmp_path / "mirror", name="mirror", proxy_remote=plain_registry.url
    )
    mirror.upstream = plain_registry
    try:
        mirror.access_log.mark()
        plain_registry.access_log.mark()
        yield mirror
    finally:
        mirror.stop()


# -- pullwatch as a user runs it ----------------------------------------------------------------


@dataclass
class PullwatchCli:
    """`python -m pullwatch` in a subprocess with directories of its own (see the module)."""

    base: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    file_keyring: bool = False  # set by add_identity: secrets in a file in the temporary home

    @property
    def config_dir(self) -> Path:
        return self.base / "config"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def env(self, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
            and not key.startswith(("PULLWATCH_", "XDG_", "DOCKER_", "KEYRING_", "DBUS_"))
            and key != "PYTHON_KEYRING_BACKEND"
        }
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            NO_COLOR="1",
            COLUMNS="200",
        )
        if self.file_keyring:
            # keyrings.cryptfile's plain file, under the temporary XDG_DATA_HOME, opted into
            # explicitly: test passwords only, and no Argon2 (seconds per call) on every run.
            env.update(
                PYTHON_KEYRING_BACKEND="keyrings.cryptfile.file.PlaintextKeyring",
                PULLWATCH_ALLOW_PLAINTEXT_KEYRING="1",
            )
        else:
            env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
        env.update(self.extra_env)
        for key, value in (overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, registry: str, *args: str, repository: str | None = REPOSITORY) -> list[str]:
        argv = [
            sys.executable, "-m", "pullwatch",
            "--config-dir", str(self.config_dir),
            "--data-dir", str(self.data_dir),
            "--registry", registry,
        ]  # fmt: skip
        if repository is not None:
            argv += ["--repository", repository]
        return [*argv, *args]

    def run(
        self,
        registry: str,
        *args: str,
        repository: str | None = REPOSITORY,
        env: Mapping[str, str | None] | None = None,
        stdin: str | None = None,
        prefix: tuple[str, ...] = (),
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run pullwatch; `prefix` goes in front of the command (a wrapper such as unshare)."""
        return subprocess.run(
            [*prefix, *self.command(registry, *args, repository=repository)],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=timeout,
            check=False,
        )

    def check_json(
        self, registry: str, *args: str, **options: Any
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """`check --json`: the process and its parsed document."""
        done = self.run(registry, "check", "--json", *args, **options)
        try:
            document = json.loads(done.stdout)
        except ValueError:
            raise AssertionError(
                f"check --json printed no JSON (exit {done.returncode}): "
                f"stdout={done.stdout!r} stderr={done.stderr!r}"
            ) from None
        return done, document

    def add_identity(self, registry: str, label: str, username: str, secret: str) -> None:
        """`identity add LABEL --username U --password-stdin` (secret in the file keyring)."""
        self.file_keyring = True
        done = self.run(
            registry, "identity", "add", label, "--username", username, "--password-stdin",
            stdin=secret + "\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture
def pullwatch_cli(tmp_path: Path) -> PullwatchCli:
    """Runs the real pullwatch CLI as a subprocess in this test's own directories."""
    return PullwatchCli(tmp_path / "pullwatch")


@dataclass
class RegistryCli:
    """`pullwatch.cli.main` in this process, in the test's own directories (see the module)."""

    base: Path
    capsys: pytest.CaptureFixture[str]
    outputs: list[str] = field(default_factory=list)  # every stdout and stderr, in order

    def __call__(
        self,
        registry: str,
        *args: str,
        repository: str | None = REPOSITORY,
        stdin: str | None = None,
    ) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of one command."""
        import io

        from pullwatch.cli import main

        argv = [
            "--config-dir", str(self.base / "config"),
            "--data-dir", str(self.base / "data"),
            "--registry", registry,
        ]  # fmt: skip
        if repository is not None:
            argv += ["--repository", repository]
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main([*argv, *args])
        finally:
            sys.stdin = old_stdin
        out, err = self.capsys.readouterr()
        self.outputs += [out, err]
        return code, out, err

    def add_identity(self, registry: str, label: str, username: str, secret: str) -> None:
        code, _, err = self(
            registry, "identity", "add", label, "--username", username, "--password-stdin",
            stdin=secret + "\n",
        )  # fmt: skip
        assert code == 0, err


@pytest.fixture
def registry_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryCli]:
    """Runs pullwatch commands in-process against the kit's registries (see the module)."""
    import keyring

    from pullwatch.identities.secrets import MemoryKeyring

    for name in list(os.environ):
        if name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ) or name.startswith(("PULLWATCH_", "SSL_CERT_", "DOCKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        yield RegistryCli(tmp_path / "pullwatch-in-process", capsys)
    finally:
        keyring.set_keyring(previous)


# -- reporting ----------------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.write_sep("-", "real registry kit")
    for what, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{what}: {seconds:.3f} s")
