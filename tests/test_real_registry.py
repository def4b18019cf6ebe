"""pullwatch against the real CNCF distribution registry (fixtures_registry), defect by defect.

The first tests prove the kit works. The rest run pullwatch - the real CLI as a subprocess
(`pullwatch_cli`), the same CLI in-process (`registry_cli`), or the dashboard under a pilot -
against the no-auth (a), token-auth (b), TLS (c) and pull-through (d) registries. Every test
that probes checks the registry's own access log: pullwatch sent no GET on a manifest or a blob.

Issue 10 found ten defects; each has tests named `test_defect_N_...` that assert the fixed
behaviour and failed before the fix. The last test holds the simulated hub to the real
registry's protocol (status codes, challenges, error codes, header names), so the simulator is
never again the only witness.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from fixtures_registry import (
    KIT_USER,
    NOTAG_REPOSITORY,
    PRIVATE_REPOSITORY,
    PUSHED,
    REPOSITORY,
    SOLO_REPOSITORY,
    TOKEN_SERVICE,
    PullwatchCli,
    RegistryCli,
)
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import Identity
from pullwatch.paths import Paths
from registrykit.accesslog import Request, assert_no_pull, parse_access_log
from registrykit.registry import Registry
from registrykit.tokenserver import TokenServer

MANIFEST = f"/v2/{REPOSITORY}/manifests/latest"
OCI_ACCEPT = "application/vnd.oci.image.manifest.v1+json"
MISSING_REPOSITORY = "nothing/here"  # in no registry, and no token grants it
GRANTED_MISSING = "granted/nowhere"  # in no registry, but a token grants it
WRONG_PASSWORD = "not-the-kit-password"

# What only Docker Hub's wording says: never shown for another registry (defect 6).
HUB_ONLY_WORDING = (
    "Docker ID",
    "documented",
    "hub.docker.com",
    "Docker Hub answered",
    "dockerstatus",
    "e-mail",
    "paid plan",
    "Docker sends",
    "Docker Hub: about",
    "docker login",
    "unlimited",
)


def request(
    registry: Registry | str,
    method: str,
    path: str,
    token: str | None = None,
    *,
    ca_pem: Path | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request from the test itself (no proxy; the registry's CA if it has one):
    status, headers as sent (names in their case) and body."""
    if isinstance(registry, Registry):
        url, ca_pem = registry.url, registry.ca_pem
    else:
        url = registry
    scheme, _, hostport = url.partition("://")
    host, _, port = hostport.partition(":")
    connection: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_pem))
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=5)
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Accept": OCI_ACCEPT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def head(registry: Registry, path: str, token: str | None = None) -> tuple[int, dict[str, str]]:
    status, headers, _ = request(registry, "HEAD", path, token)
    return status, {name.lower(): value for name, value in headers}


def get_token(realm: str, scope: str, creds: tuple[str, str] | None = None) -> str:
    """A token from a token endpoint (the kit's, or the simulator's) for one scope."""
    host, _, rest = realm.partition("://")[2].partition(":")
    port, _, path = rest.partition("/")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {}
    if creds is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(creds).encode()).decode()
    try:
        connection.request("GET", f"/{path}?service={TOKEN_SERVICE}&scope={scope}", headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    return str(body["token"])


def anonymous_token(server: TokenServer, repository: str) -> str:
    return get_token(server.realm, f"repository:{repository}:pull")


def triples(requests: list[Request]) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in requests]


def only_row(document: dict[str, Any]) -> dict[str, Any]:
    rows = document["identities"]
    assert isinstance(rows, list) and len(rows) == 1, rows
    row = rows[0]
    assert isinstance(row, dict)
    return row


def hub_wording(text: str) -> list[str]:
    """The Docker Hub-only phrases in `text` (see HUB_ONLY_WORDING)."""
    return [phrase for phrase in HUB_ONLY_WORDING if phrase.lower() in text.lower()]


def every_rendering(
    run: RegistryCli, registry: str, label: str, repository: str = REPOSITORY
) -> dict[str, str]:
    """Every command that shows a probe of `label`, in every format: name -> stdout+stderr."""
    commands: dict[str, tuple[str, ...]] = {
        "check": ("check",),
        "check --json": ("check", "--json"),
        "head": ("head", label),
        "head --json": ("head", label, "--json"),
        "token": ("token", label),
        "token --json": ("token", label, "--json"),
        "report": ("report",),
        "report --markdown": ("report", "--markdown"),
        "report --json": ("report", "--json"),
    }
    shown = {}
    for name, args in commands.items():
        _, out, err = run(registry, *args, repository=repository)
        shown[name] = out + err
    return shown


async def dashboard_detail(
    runtime: Any, *, select: str | None = None, gauges: dict[str, str] | None = None
) -> str:
    """The dashboard's detail pane (title and body) as plain text, after the first round.

    `gauges`, when given, receives each row's Remaining cell as shown.
    """
    from rich.console import Console
    from textual.widgets import Static

    from pullwatch.tui.app import make_app

    app = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        if select is not None:
            app.dashboard.focus_identity(select)
            await pilot.pause()
        if gauges is not None:
            table = app.dashboard.table
            gauges.update(
                {
                    i.label: table.get_cell(i.label, "remaining").plain
                    for i in app.monitor.identities
                }
            )
        console = Console(width=120, record=True, file=io.StringIO())
        for part in ("#detail-title", "#detail-body"):
            console.print(app.dashboard.detail.query_one(part, Static).content)
        return console.export_text()


def registry_runtime(
    paths: Paths,
    registry: str,
    memory_keyring: MemoryKeyring,
    identities: Iterable[tuple[Identity, str | None]] = (),
    *,
    repository: str = REPOSITORY,
) -> Any:
    """A runtime against `registry` with exactly these identities (secrets in memory)."""
    from pullwatch.runtime import build_runtime

    secrets = SecretStore(memory_keyring, timeout=2.0)
    runtime = build_runtime(
        paths, registry=registry, repository=repository, secrets=secrets, env={}
    )
    wanted = list(identities)
    for identity, secret in wanted:
        if runtime.config.get(identity.label) is None:  # a new config has `anonymous` already
            runtime.store.add(identity, secret=secret)
    if not any(identity.label == "anonymous" for identity, _ in wanted):
        runtime.store.remove("anonymous")
    runtime.reload()
    return runtime


# -- the kit itself -----------------------------------------------------------------------------


def test_access_log_parsing_and_the_no_pull_assertion() -> None:
    log = (
        '127.0.0.1 - - [02/Dec/2026:13:09:11 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"\n'
        'time="2026-12-02T13:09:11Z" level=info msg="not an access log line"\n'
        '127.0.0.1 - - [02/Dec/2026:13:09:11 +0000] "HEAD /v2/a/b/manifests/latest HTTP/1.1" '
        '404 96 "" "pullwatch/0.1"\n'
    )
    seen = parse_access_log(log)
    assert triples(seen) == [("GET", "/v2/", 200), ("HEAD", "/v2/a/b/manifests/latest", 404)]
    assert_no_pull(seen)
    for path in ("/v2/a/manifests/latest", "/v2/a/blobs/sha256:00"):
        with pytest.raises(AssertionError, match="GET on /manifests/ or /blobs/"):
            assert_no_pull([*seen, Request("GET", path, 200)])


def test_the_plain_registry_holds_the_kit_images(plain_registry: Registry) -> None:
    for repository, tag in PUSHED:
        assert head(plain_registry, f"/v2/{repository}/manifests/{tag}")[0] == 200
    assert head(plain_registry, f"/v2/{NOTAG_REPOSITORY}/manifests/latest")[0] == 404
    seen = plain_registry.access_log.assert_no_pull()
    assert [r.method for r in seen] == ["HEAD"] * 4  # the kit's pushes came before the mark


def test_the_token_server_grants_only_what_is_allowed(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    public = anonymous_token(server, REPOSITORY)
    assert head(token_registry, MANIFEST, public)[0] == 200
    private = anonymous_token(server, PRIVATE_REPOSITORY)
    status, headers = head(token_registry, f"/v2/{PRIVATE_REPOSITORY}/manifests/latest", private)
    assert status == 401
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert [r.granted for r in server.requests] == [
        ({"type": "repository", "name": REPOSITORY, "actions": ["pull"]},),
        (),  # anonymous may not pull the private repository: an empty access list
    ]
    server.configure(use_x5c=True)  # the certificate in the JWT header instead of a kid
    assert head(token_registry, MANIFEST, anonymous_token(server, REPOSITORY))[0] == 200
    token_registry.access_log.assert_no_pull()


# -- (a) no auth --------------------------------------------------------------------------------


def test_check_against_the_plain_registry(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done, document = pullwatch_cli.check_json(plain_registry.url)
    assert done.returncode == 0, done.stderr
    row = only_row(document)
    assert (row["state"], row["http_status"], row["step"]) == ("unmetered", 200, "head")
    assert row["detail"] == (
        "no rate-limit headers: this registry does not report Docker Hub's pull limit"
    )
    seen = plain_registry.access_log.assert_no_pull()
    assert triples(seen) == [("GET", "/v2/", 200), ("HEAD", MANIFEST, 200)]


# -- (b) token auth -----------------------------------------------------------------------------


def test_check_against_the_token_registry(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    server = token_registry.token_server
    assert server is not None
    pullwatch_cli.add_identity(token_registry.url, "kit", *KIT_USER)
    done, document = pullwatch_cli.check_json(token_registry.url)
    assert done.returncode == 0, done.stderr
    states = {row["label"]: (row["state"], row["http_status"]) for row in document["identities"]}
    assert states == {"anonymous": ("unmetered", 200), "kit": ("unmetered", 200)}
    seen = token_registry.access_log.assert_no_pull()
    assert Counter(triples(seen)) == Counter({("GET", "/v2/", 401): 1, ("HEAD", MANIFEST, 200): 2})
    asked = sorted((r.username or "", r.status, tuple(r.scopes)) for r in server.requests)
    scope = (f"repository:{REPOSITORY}:pull",)
    assert asked == [("", 200, scope), (KIT_USER[0], 200, scope)]
    assert all(r.query["service"] == [TOKEN_SERVICE] for r in server.requests)


def test_anonymous_refused_by_the_token_server(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    assert token_registry.token_server is not None
    token_registry.token_server.configure(allow_anonymous=False, anonymous_denied_details="no")
    done, document = pullwatch_cli.check_json(token_registry.url)
    assert done.returncode == 2, done.stderr
    row = only_row(document)
    assert (row["state"], row["step"], row["http_status"]) == ("auth_failed", "token", 401)
    assert row["detail"] == "no (anonymous token refused)"
    assert "HEAD" not in [r.method for r in token_registry.access_log.assert_no_pull()]


def test_insufficient_scope_is_an_auth_failure(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done, document = pullwatch_cli.check_json(token_registry.url, repository=PRIVATE_REPOSITORY)
    assert done.returncode == 2, done.stderr
    row = only_row(document)
    assert row["state"] == "auth_failed" and row["http_status"] == 401
    assert row["detail"] == (
        f"not allowed to pull {PRIVATE_REPOSITORY} (insufficient_scope): anonymous pulls are "
        "not granted this repository (private, or it does not exist)"
    )
    seen = token_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{PRIVATE_REPOSITORY}/manifests/latest", 401) in triples(seen)


# -- (c) TLS ------------------------------------------------------------------------------------


def test_check_trusts_the_ca_given_in_ssl_cert_file(
    tls_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    untrusted, document = pullwatch_cli.check_json(
        tls_registry.url, env={"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}
    )
    assert untrusted.returncode == 3
    assert only_row(document)["error_kind"] == "tls"
    assert tls_registry.access_log.requests() == []  # refused in the handshake
    done, document = pullwatch_cli.check_json(
        tls_registry.url, env={"SSL_CERT_FILE": str(tls_registry.ca_pem)}
    )
    assert done.returncode == 0, done.stdout
    assert only_row(document)["state"] == "unmetered"
    assert triples(tls_registry.access_log.assert_no_pull())[-1] == ("HEAD", MANIFEST, 200)


async def test_hub_client_with_the_ca_passed_explicitly(tls_registry: Registry) -> None:
    from pullwatch.hub.client import HubClient, Target
    from pullwatch.reading import State

    context = ssl.create_default_context(cafile=str(tls_registry.ca_pem))
    async with HubClient(tls_registry.url, REPOSITORY, verify=context) as client:
        result = await client.probe(Target("anonymous"))
    assert result.reading.state is State.UNMETERED, result.reading.detail
    assert triples(tls_registry.access_log.assert_no_pull()) == [
        ("GET", "/v2/", 200),
        ("HEAD", MANIFEST, 200),
    ]


def _private_trust_store(ca_pem: Path, workdir: Path) -> tuple[str, ...]:
    """A command prefix that runs its command with `ca_pem` added to the system trust store.

    The system bundle is bind-mounted over in a private mount namespace (root only), so the
    machine's own trust store is never touched. Skips when that is not possible.
    """
    system_bundle = Path(ssl.get_default_verify_paths().openssl_cafile).resolve()
    if not system_bundle.is_file():
        pytest.skip(f"no system CA bundle at {system_bundle}")
    bundle = workdir / "system-bundle-plus-test-ca.pem"
    bundle.write_bytes(system_bundle.read_bytes() + b"\n" + ca_pem.read_bytes())
    prefix = (
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
        str(bundle), str(system_bundle),
    )  # fmt: skip
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot make a private mount namespace: {exc}")
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace: {probe.stderr.decode().strip()}")
    return prefix


def test_defect_1_a_ca_in_the_system_trust_store_is_trusted(
    tls_registry: Registry, pullwatch_cli: PullwatchCli, tmp_path: Path
) -> None:
    """Defect 1: a CA installed in the system store (as update-ca-certificates does) is
    trusted, as curl and skopeo trust it (before: certifi's bundle only)."""
    assert tls_registry.ca_pem is not None
    prefix = _private_trust_store(tls_registry.ca_pem, tmp_path)
    no_overrides: dict[str, str | None] = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}
    control = subprocess.run(
        [*prefix, sys.executable, "-c",
         "import ssl, sys, urllib.request as u; "
         "u.urlopen(sys.argv[1], context=ssl.create_default_context(), timeout=5)",
         f"{tls_registry.url}/v2/"],
        env=pullwatch_cli.env(no_overrides), capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    if control.returncode != 0:  # the set-up, not pullwatch
        pytest.fail(f"the system trust store does not hold the test CA: {control.stderr}")
    done, document = pullwatch_cli.check_json(tls_registry.url, env=no_overrides, prefix=prefix)
    tls_registry.access_log.assert_no_pull()
    assert only_row(document)["state"] == "unmetered", only_row(document)["detail"]
    assert done.returncode == 0


def test_defect_1_ca_cert_trusts_a_private_ca(
    tls_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 1: `--ca-cert FILE`, PULLWATCH_CA_CERT and the config's `ca_cert` add a CA."""
    ca = str(tls_registry.ca_pem)
    clean: dict[str, str | None] = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}
    untrusted, document = pullwatch_cli.check_json(tls_registry.url, env=clean)
    assert untrusted.returncode == 3
    row = only_row(document)
    assert (row["state"], row["error_kind"]) == ("error", "tls")
    assert "--ca-cert FILE" in " ".join(row["advice"])  # the way out is named
    assert tls_registry.access_log.requests() == []  # refused in the handshake

    flag, document = pullwatch_cli.check_json(tls_registry.url, "--ca-cert", ca, env=clean)
    assert (flag.returncode, only_row(document)["state"]) == (0, "unmetered"), flag.stderr
    env, document = pullwatch_cli.check_json(
        tls_registry.url, env={**clean, "PULLWATCH_CA_CERT": ca}
    )
    assert (env.returncode, only_row(document)["state"]) == (0, "unmetered"), env.stderr
    pullwatch_cli.config_dir.mkdir(parents=True, exist_ok=True)
    config_file = pullwatch_cli.config_dir / "config.toml"
    config_file.write_text(
        f'version = 1\n\n[settings]\nca_cert = "{ca}"\n\n[[identity]]\nlabel = "anonymous"\n'
    )
    config, document = pullwatch_cli.check_json(tls_registry.url, env=clean)
    assert (config.returncode, only_row(document)["state"]) == (0, "unmetered"), config.stderr
    seen = tls_registry.access_log.assert_no_pull()
    assert triples(seen).count(("HEAD", MANIFEST, 200)) == 3


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("missing", "--ca-cert {path}: no such file"),
        ("directory", "--ca-cert {path}: is a directory, not a PEM file"),
        ("not PEM", "--ca-cert {path}: no PEM certificate in it"),
        ("broken PEM", "--ca-cert {path}: not a readable PEM certificate"),
    ],
)
def test_defect_1_an_unusable_ca_cert_is_a_one_line_error(
    tls_registry: Registry, pullwatch_cli: PullwatchCli, tmp_path: Path, what: str, message: str
) -> None:
    path = tmp_path / "ca.pem"
    if what == "directory":
        path.mkdir()
    elif what == "not PEM":
        path.write_text("just some text\n")
    elif what == "broken PEM":
        path.write_text(
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
        )
    done = pullwatch_cli.run(tls_registry.url, "check", "--ca-cert", str(path))
    assert done.returncode == 3  # check: the config is unusable, so unknown
    assert done.stdout == ""
    assert done.stderr.startswith(f"pullwatch: error: {message.format(path=path)}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert tls_registry.access_log.requests() == []  # said before any request


def test_a_missing_ssl_cert_file_is_a_one_line_error(
    tls_registry: Registry, pullwatch_cli: PullwatchCli, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.pem"
    done = pullwatch_cli.run(tls_registry.url, "check", env={"SSL_CERT_FILE": str(missing)})
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == f"pullwatch: error: SSL_CERT_FILE={missing}: no such file\n"
    assert tls_registry.access_log.requests() == []


# -- (d) pull-through cache ---------------------------------------------------------------------


def test_a_head_through_a_cold_mirror_makes_it_get_the_manifest_upstream(
    mirror_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Why pullwatch warns about mirrors: it sends the mirror only HEADs, yet the cold mirror
    GETs the manifest from upstream - on Docker Hub, a pull charged to the mirror's login."""
    upstream = mirror_registry.upstream
    assert upstream is not None
    done, document = pullwatch_cli.check_json(mirror_registry.url)
    assert done.returncode == 0, done.stderr
    assert only_row(document)["state"] == "unmetered"
    assert triples(mirror_registry.access_log.assert_no_pull()) == [
        ("GET", "/v2/", 200),
        ("HEAD", MANIFEST, 200),
    ]
    assert ("GET", MANIFEST, 200) in triples(upstream.access_log.requests())


def test_defect_4_a_mirror_is_not_reported_as_a_paid_plan(
    mirror_registry: Registry, registry_cli: RegistryCli
) -> None:
    """Defect 4: a registry that is not Docker Hub and sends no rate-limit headers does not
    report Docker Hub's limit (not "paid plan or exempt"), and `check`, `head` (text and
    JSON) and `report` warn that probing through a pull-through cache may cost an upstream
    pull and that the mirror's Hub limit is watched by probing Docker Hub directly."""
    shown = every_rendering(registry_cli, mirror_registry.url, "anonymous")
    seen = mirror_registry.access_log.assert_no_pull()
    assert {r.method for r in seen} == {"GET", "HEAD"}  # GET only on /v2/
    not_reported = "this registry does not report Docker Hub's pull limit"
    for name in ("check", "check --json", "head", "head --json", "report", "report --json"):
        assert not_reported in shown[name], (name, shown[name])
        assert "paid plan" not in shown[name], (name, shown[name])
        assert "may cost an upstream pull" in shown[name], (name, shown[name])
        assert "probing Docker Hub directly" in shown[name], (name, shown[name])
    from pullwatch.advice import MIRROR_CAVEAT  # the whole caveat, nowhere cut short

    head_json = json.loads(shown["head --json"])
    assert MIRROR_CAVEAT in head_json["advice"]["steps"]
    assert MIRROR_CAVEAT in head_json["reading"]["advice"]
    assert f"next 1. {MIRROR_CAVEAT}" in shown["head"]
    assert f"anonymous: {MIRROR_CAVEAT}" in shown["check"]
    assert MIRROR_CAVEAT in shown["report"]
    assert "| anonymous | unmetered | not reported |" in shown["report --markdown"]
    assert "unlimited" not in " ".join(shown.values())


async def test_defect_4_the_detail_pane_warns_about_mirrors(
    mirror_registry: Registry, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    runtime = registry_runtime(
        paths, mirror_registry.url, memory_keyring, [(Identity("anonymous"), None)]
    )
    gauges: dict[str, str] = {}
    text = " ".join((await dashboard_detail(runtime, gauges=gauges)).split())
    mirror_registry.access_log.assert_no_pull()
    assert gauges == {"anonymous": "not reported"}  # not "unlimited": nothing was said
    assert "unmetered no rate-limit headers: this registry does not report Docker Hub's" in text
    assert "a HEAD through it may cost an upstream pull" in text
    assert "Watch the Hub limit of the mirror's credentials by probing Docker Hub directly" in text
    assert "paid plan" not in text


# -- defects 2, 3 and 5: naming the probe and the registry ------------------------------------


def test_defect_2_a_one_part_repository_is_probed_as_named(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 2: only Docker Hub has `library/`: `solo` is `/v2/solo/...` elsewhere."""
    done, document = pullwatch_cli.check_json(plain_registry.url, repository=SOLO_REPOSITORY)
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{SOLO_REPOSITORY}/manifests/latest", 200) in triples(seen), seen
    assert (done.returncode, only_row(document)["state"]) == (0, "unmetered")
    assert document["repository"] == f"{SOLO_REPOSITORY}:latest"


def test_defect_3_a_tag_other_than_latest_can_be_probed(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 3: `--repository NAME:TAG`."""
    done, document = pullwatch_cli.check_json(
        plain_registry.url, repository=f"{NOTAG_REPOSITORY}:v1"
    )
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{NOTAG_REPOSITORY}/manifests/v1", 200) in triples(seen), done.stderr
    assert (done.returncode, only_row(document)["state"]) == (0, "unmetered")


def test_defect_3_a_digest_can_be_probed(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 3: `--repository NAME@sha256:DIGEST`."""
    status, headers = head(plain_registry, f"/v2/{NOTAG_REPOSITORY}/manifests/v1")
    digest = headers["docker-content-digest"]
    assert status == 200 and digest.startswith("sha256:")
    plain_registry.access_log.mark()
    done, document = pullwatch_cli.check_json(
        plain_registry.url, repository=f"{NOTAG_REPOSITORY}@{digest}"
    )
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{NOTAG_REPOSITORY}/manifests/{digest}", 200) in triples(seen)
    assert (done.returncode, only_row(document)["state"]) == (0, "unmetered")


def test_defect_3_a_missing_tag_is_not_called_a_missing_repository(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 3: a 404 names the manifest (`NAME:TAG`, repository or tag) and is a
    configuration error, not "retried with backoff"."""
    done = pullwatch_cli.run(plain_registry.url, "head", "anonymous", repository=NOTAG_REPOSITORY)
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{NOTAG_REPOSITORY}/manifests/latest", 404) in triples(seen)
    assert done.returncode == 3, done.stderr
    assert (
        f"state: error: no manifest {NOTAG_REPOSITORY}:latest (repository or tag not found): "
        "check --repository"
    ) in done.stdout
    assert "not retried with backoff" in done.stdout
    assert "Retried with backoff" not in done.stdout
    _, document = pullwatch_cli.check_json(plain_registry.url, repository=NOTAG_REPOSITORY)
    assert only_row(document)["error_kind"] == "not_found"
    plain_registry.access_log.assert_no_pull()


def test_defect_5_a_registry_without_a_scheme_on_plain_http_is_explained(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 5: https to a plain-HTTP registry says so once and suggests http://."""
    done, document = pullwatch_cli.check_json(plain_registry.host)
    assert plain_registry.access_log.assert_no_pull() == []  # a TLS hello is no request
    assert done.returncode == 3
    row = only_row(document)
    assert row["error_kind"] == "plain_http"
    assert row["detail"] == (
        "registry ping: the server answered plain HTTP to a TLS handshake: it serves http://, "
        "not https:// (http:// is accepted for loopback registries)"
    )
    assert "WRONG_VERSION_NUMBER" not in json.dumps(document)
    assert not any("TLS-intercepting" in step for step in row["advice"]), row["advice"]
    assert any("http://HOST:PORT" in step for step in row["advice"]), row["advice"]


# -- defect 6: wording that follows the registry and the identity -----------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        "plain: anonymous, unmetered",
        "plain: anonymous, missing tag",
        "token: anonymous refused by the token server",
        "token: anonymous, private repository (insufficient_scope)",
        "token: login refused",
        "token: login, unmetered",
    ],
)
def test_defect_6_no_docker_hub_wording_on_another_registry(
    plain_registry: Registry, token_registry: Registry, registry_cli: RegistryCli, scenario: str
) -> None:
    """Defect 6: `check`, `head`, `token` and `report`, in every format, say nothing that only
    Docker Hub makes true (Docker ID, documented limits, hub.docker.com, paid plans...)."""
    server = token_registry.token_server
    assert server is not None
    registry, label, repository = plain_registry, "anonymous", REPOSITORY
    if scenario.startswith("token"):
        registry = token_registry
    if scenario == "plain: anonymous, missing tag":
        repository = NOTAG_REPOSITORY
    elif scenario == "token: anonymous refused by the token server":
        server.configure(allow_anonymous=False)
    elif scenario == "token: anonymous, private repository (insufficient_scope)":
        repository = PRIVATE_REPOSITORY
    elif scenario.startswith("token: login"):
        label = "kit"
        secret = WRONG_PASSWORD if scenario == "token: login refused" else KIT_USER[1]
        registry_cli.add_identity(registry.url, label, KIT_USER[0], secret)
    shown = every_rendering(registry_cli, registry.url, label, repository)
    registry.access_log.assert_no_pull()
    for name, text in shown.items():
        assert hub_wording(text) == [], (scenario, name, text)
    if label == "kit":
        assert f"username {KIT_USER[0]}" in shown["report"]  # not "Docker ID kituser"


def test_defect_6_token_check_against_a_registry_without_auth(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 6: `token` on a registry that asks for no auth is an honest "no token needed"
    (before: "Docker Hub answered a server error")."""
    done = pullwatch_cli.run(plain_registry.url, "token", "anonymous", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["ok"], result["state"], result["advice"]) == (True, "ok", None)
    assert result["detail"].startswith("this registry asks for no authentication: no token")
    text = pullwatch_cli.run(plain_registry.url, "token", "anonymous")
    assert text.returncode == 0
    assert "result: this registry asks for no authentication: no token is needed" in text.stdout
    seen = plain_registry.access_log.assert_no_pull()
    assert set(triples(seen)) == {("GET", "/v2/", 200)}  # pings only: no token, no HEAD


async def test_defect_6_the_detail_pane_follows_the_registry(
    token_registry: Registry, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    """Defect 6, in the dashboard: a refused login on another registry is a `username`, with
    no Docker ID, e-mail or hub.docker.com advice."""
    runtime = registry_runtime(
        paths, token_registry.url, memory_keyring, [(Identity("bad", KIT_USER[0]), WRONG_PASSWORD)]
    )
    text = " ".join((await dashboard_detail(runtime)).split())
    token_registry.access_log.assert_no_pull()
    assert f"bad username {KIT_USER[0]}" in text
    assert "auth failed" in text
    assert hub_wording(text) == [], text


async def test_defect_6_the_detail_pane_of_an_anonymous_private_repository(
    token_registry: Registry, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    runtime = registry_runtime(
        paths,
        token_registry.url,
        memory_keyring,
        [(Identity("anonymous"), None)],
        repository=PRIVATE_REPOSITORY,
    )
    text = " ".join((await dashboard_detail(runtime)).split())
    token_registry.access_log.assert_no_pull()
    assert "insufficient_scope" in text
    assert f"Anonymous pulls of {PRIVATE_REPOSITORY} are not allowed" in text
    assert hub_wording(text) == [], text


def test_defect_6_docker_hub_wording_stays_for_the_simulated_hub(
    cli: Any, simhub: Any, paths: Paths
) -> None:
    """The control: the simulated hub speaks as Docker Hub (its token service is
    registry.docker.io), so Docker Hub's wording is still there."""
    cli.add("bad", "alice", "not-alices-token")
    simhub.model.consume("anonymous", simhub.model.anonymous_limit)
    code, out, _ = cli("check")
    assert code == 2
    assert "Use the Docker ID (the username shown on hub.docker.com)" in out
    assert "Docker documents 100 pulls per 6 h per IP without a login" in out
    _, report, _ = cli("report")
    assert "Docker ID alice" in report
    _, token, _ = cli("token", "bad")
    assert "hub.docker.com" in token


async def test_defect_6_the_detail_pane_speaks_as_docker_hub_for_the_simulator(
    demo: Any,
) -> None:
    """The control, in the dashboard: the demo's refused login gets Docker Hub's advice."""
    text = " ".join((await dashboard_detail(demo.runtime, select="old-bot")).split())
    assert "Docker ID" in text and "hub.docker.com" in text


# -- defects 7, 8, 9 and 10 ---------------------------------------------------------------------


def test_defect_7_the_displayed_challenge_keeps_its_realm(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 7: redaction removes credentials, not the `realm=` parameter name."""
    assert token_registry.token_server is not None
    done = pullwatch_cli.run(token_registry.url, "head", "anonymous")
    assert done.returncode == 0, done.stderr
    token_registry.access_log.assert_no_pull()
    challenges = [line for line in done.stdout.splitlines() if "Www-Authenticate:" in line]
    assert challenges, done.stdout
    assert f'realm="{token_registry.token_server.realm}"' in challenges[0], challenges[0]


async def test_defect_8_a_refused_login_shows_no_head_status(
    token_registry: Registry, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    """Defect 8: the 401 of a refused login came from the token request: no "HEAD 401"."""
    runtime = registry_runtime(
        paths, token_registry.url, memory_keyring, [(Identity("bad", KIT_USER[0]), WRONG_PASSWORD)]
    )
    text = await dashboard_detail(runtime)
    seen = token_registry.access_log.assert_no_pull()
    assert "HEAD" not in [r.method for r in seen]  # the token was refused: no HEAD was sent
    assert "auth failed" in text, text
    assert re.search(r"HEAD\W.*401", text) is None, text
    assert re.search(r"Token request\s+HTTP 401", text), text


def test_defect_9_history_keeps_registries_and_repositories_apart(
    plain_registry: Registry, token_registry: Registry, registry_cli: RegistryCli
) -> None:
    """Defect 9: readings of one identity against two registries, or two repositories, are
    two histories (and two recovery estimates), not one."""
    for registry, repository in (
        (plain_registry, REPOSITORY),
        (plain_registry, REPOSITORY),
        (plain_registry, SOLO_REPOSITORY),
        (token_registry, REPOSITORY),
    ):
        registry_cli(registry.url, "check", repository=repository)

    def history(registry: Registry, repository: str) -> dict[str, Any]:
        code, out, err = registry_cli(
            registry.url, "history", "anonymous", "--json", repository=repository
        )
        assert code == 0, err
        document = json.loads(out)
        assert isinstance(document, dict)
        return document

    assert len(history(plain_registry, REPOSITORY)["readings"]) == 2
    assert len(history(plain_registry, SOLO_REPOSITORY)["readings"]) == 1
    assert len(history(token_registry, REPOSITORY)["readings"]) == 1
    plain_registry.access_log.assert_no_pull()
    token_registry.access_log.assert_no_pull()


def test_defect_10_the_token_request_names_the_account(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    """Defect 10: `account=<username>` in the token request, as docker and skopeo send it."""
    server = token_registry.token_server
    assert server is not None
    pullwatch_cli.add_identity(token_registry.url, "kit", *KIT_USER)
    done = pullwatch_cli.run(token_registry.url, "check", "--identity", "kit")
    assert done.returncode == 0, done.stdout + done.stderr
    token_registry.access_log.assert_no_pull()
    [request] = [r for r in server.requests if r.username == KIT_USER[0]]
    assert request.query.get("account") == [KIT_USER[0]], request.query


# -- the simulator follows the real registry ----------------------------------------------------

# Docker Hub's own headers, which the simulated hub adds and distribution never sends.
HUB_HEADERS = frozenset({"ratelimit-limit", "ratelimit-remaining", "docker-ratelimit-source"})
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _protocol(
    status: int, headers: list[tuple[str, str]], body: bytes, *, manifest: bool
) -> dict[str, Any]:
    """What the conformance test compares: status, header names as written, the challenge's
    parameter names (and its scope and error), content type and error codes - not values."""
    names = sorted({name for name, _ in headers if name.lower() not in HUB_HEADERS})
    found = {name.lower(): value for name, value in headers}
    challenge = found.get("www-authenticate")
    params = dict(CHALLENGE.findall(challenge)) if challenge else {}
    seen: dict[str, Any] = {
        "status": status,
        "header names": names,
        "challenge": None
        if challenge is None
        else {
            "scheme": challenge.split(" ", 1)[0],
            "parameters": sorted(params),
            "scope": params.get("scope"),
            "error": params.get("error"),
        },
    }
    if not manifest:  # a manifest's media type is the image's own: the kit's is OCI, Hub's not
        seen["content-type"] = found.get("content-type")
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            seen["body"] = body.decode()
        else:
            errors = document.get("errors") if isinstance(document, dict) else None
            seen["error codes"] = [e["code"] for e in errors] if errors else None
            seen["body keys"] = sorted(document) if isinstance(document, dict) else None
    return seen


def test_the_simulator_answers_as_the_real_registry(token_registry: Registry) -> None:
    """The same requests to the real token registry and to the simulated hub: the same status
    codes, challenges, error codes and header names (Docker Hub's own headers aside)."""
    from pullwatch.simhub import HubModel, SimHubServer

    server = token_registry.token_server
    assert server is not None
    # Docker Hub's token service grants nothing on a repository that does not exist, and the
    # simulator models that: the kit's token server is told so for this test.
    server.configure(private_repositories=frozenset({PRIVATE_REPOSITORY, MISSING_REPOSITORY}))
    model = HubModel(
        service=TOKEN_SERVICE,
        repositories=(
            f"{REPOSITORY}:latest",
            f"{NOTAG_REPOSITORY}:v1",
            f"{SOLO_REPOSITORY}:latest",
        ),
    )
    with SimHubServer(model) as simhub:
        sides: dict[str, tuple[str, str]] = {
            "real": (token_registry.url, server.realm),
            "simulated": (simhub.url, f"{simhub.url}/token"),
        }
        # (what, method, path, token scope or None or "invalid")
        cases: list[tuple[str, str, str, str | None]] = [
            ("ping without a token", "GET", "/v2/", None),
            ("ping with a token", "GET", "/v2/", f"repository:{REPOSITORY}:pull"),
            ("HEAD without a token", "HEAD", MANIFEST, None),
            ("HEAD with an invalid token", "HEAD", MANIFEST, "invalid"),
            ("HEAD of a manifest", "HEAD", MANIFEST, f"repository:{REPOSITORY}:pull"),
            (
                "HEAD of a missing tag",
                "HEAD",
                f"/v2/{NOTAG_REPOSITORY}/manifests/latest",
                f"repository:{NOTAG_REPOSITORY}:pull",
            ),
            (
                "HEAD of a missing repository",
                "HEAD",
                f"/v2/{MISSING_REPOSITORY}/manifests/latest",
                f"repository:{MISSING_REPOSITORY}:pull",
            ),
            (
                "HEAD with a token for another repository",
                "HEAD",
                f"/v2/{SOLO_REPOSITORY}/manifests/latest",
                f"repository:{REPOSITORY}:pull",
            ),
            (
                "tags of a repository",
                "GET",
                f"/v2/{NOTAG_REPOSITORY}/tags/list",
                f"repository:{NOTAG_REPOSITORY}:pull",
            ),
            (
                "HEAD of a repository a token grants but no one holds",
                "HEAD",
                f"/v2/{GRANTED_MISSING}/manifests/latest",
                f"granted:{GRANTED_MISSING}",
            ),
            (
                "tags of a repository a token grants but no one holds",
                "GET",
                f"/v2/{GRANTED_MISSING}/tags/list",
                f"granted:{GRANTED_MISSING}",
            ),
            ("tags without a token", "GET", f"/v2/{REPOSITORY}/tags/list", None),
            ("a path no route matches", "GET", "/nothing/here", None),
        ]
        answers: dict[str, dict[str, Any]] = {}
        for side, (url, realm) in sides.items():
            for what, method, path, scope in cases:
                token = None
                if scope == "invalid":
                    token = "e30.e30.c2lnbmF0dXJl"  # a JWT no one signed
                elif scope is not None and scope.startswith("granted:"):
                    name = scope.removeprefix("granted:")
                    token = (  # the kit's token server grants any name it is not told to keep
                        get_token(realm, f"repository:{name}:pull")
                        if side == "real"
                        else model.issue_token(None, TOKEN_SERVICE, [name]).grant.token
                    )
                elif scope is not None:
                    token = get_token(realm, scope)
                status, headers, body = request(url, method, path, token)
                answers[f"{side}: {what}"] = _protocol(
                    status, headers, body, manifest="/manifests/" in path
                )
        differences = {
            what: (answers[f"real: {what}"], answers[f"simulated: {what}"])
            for what, *_ in cases
            if answers[f"real: {what}"] != answers[f"simulated: {what}"]
        }
        assert differences == {}, json.dumps(differences, indent=1)
        assert model.counters["manifest_get"] == 0
    token_registry.access_log.assert_no_pull()
    # What was compared, spelled out once: the answers a probe meets.
    expected: Mapping[str, tuple[int, str | None]] = {
        "ping without a token": (401, None),
        "HEAD without a token": (401, None),
        "HEAD with an invalid token": (401, "invalid_token"),
        "HEAD of a manifest": (200, None),
        "HEAD of a missing tag": (404, None),
        "HEAD of a missing repository": (401, "insufficient_scope"),
        "HEAD with a token for another repository": (401, "insufficient_scope"),
        "HEAD of a repository a token grants but no one holds": (404, None),
    }
    for what, (status, error) in expected.items():
        real = answers[f"real: {what}"]
        assert real["status"] == status, (what, real)
        assert (real["challenge"] or {}).get("error") == error, (what, real)
    assert answers["real: ping without a token"]["error codes"] == ["UNAUTHORIZED"]
    assert answers["real: tags of a repository a token grants but no one holds"]["error codes"] == [
        "NAME_UNKNOWN"
    ]
    assert answers["real: a path no route matches"]["content-type"] == "text/plain; charset=utf-8"
    assert "Www-Authenticate" in answers["real: HEAD without a token"]["header names"]
