"""pullwatch against the real distribution registry (fixtures_registry), as it is today.

The first tests prove the kit works. The rest run the real CLI as a subprocess against the
no-auth (a), token-auth (b), TLS (c) and pull-through (d) registries, and every one of them checks
the registry's access log: no GET on a manifest or a blob. Tests marked xfail(strict=True)
document a current defect (its number in the reason) and flip to a failure once it is fixed:
then drop the mark.
"""

from __future__ import annotations

import http.client
import io
import json
import ssl
import subprocess
import sys
from collections import Counter
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
)
from pullwatch.hub.client import HubClient, Target
from pullwatch.identities.secrets import MemoryKeyring, SecretStore
from pullwatch.identities.store import Identity
from pullwatch.paths import Paths
from pullwatch.reading import State
from registrykit.accesslog import Request, assert_no_pull, parse_access_log
from registrykit.registry import Registry
from registrykit.tokenserver import TokenServer

MANIFEST = f"/v2/{REPOSITORY}/manifests/latest"
OCI_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def defect(number: int, what: str) -> pytest.MarkDecorator:
    """A current defect: the test asserts the fixed behaviour and fails (an AssertionError)."""
    return pytest.mark.xfail(
        strict=True, raises=AssertionError, reason=f"defect ({number}): {what}"
    )


def head(registry: Registry, path: str, token: str | None = None) -> http.client.HTTPResponse:
    """One HEAD from the test itself (no proxy, the registry's CA if it has one)."""
    connection: http.client.HTTPConnection
    if registry.ca_pem is not None:
        context = ssl.create_default_context(cafile=str(registry.ca_pem))
        connection = http.client.HTTPSConnection("127.0.0.1", registry.port, context=context)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=5)
    headers = {"Accept": OCI_ACCEPT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("HEAD", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def anonymous_token(server: TokenServer, repository: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        scope = f"repository:{repository}:pull"
        connection.request("GET", f"/token?service={TOKEN_SERVICE}&scope={scope}")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    return str(body["token"])


def triples(requests: list[Request]) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in requests]


def only_row(document: dict[str, Any]) -> dict[str, Any]:
    rows = document["identities"]
    assert isinstance(rows, list) and len(rows) == 1, rows
    row = rows[0]
    assert isinstance(row, dict)
    return row


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
        assert head(plain_registry, f"/v2/{repository}/manifests/{tag}").status == 200
    assert head(plain_registry, f"/v2/{NOTAG_REPOSITORY}/manifests/latest").status == 404
    seen = plain_registry.access_log.assert_no_pull()
    assert [r.method for r in seen] == ["HEAD"] * 4  # the kit's pushes came before the mark


def test_the_token_server_grants_only_what_is_allowed(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    public = anonymous_token(server, REPOSITORY)
    assert head(token_registry, MANIFEST, public).status == 200
    private = anonymous_token(server, PRIVATE_REPOSITORY)
    refused = head(token_registry, f"/v2/{PRIVATE_REPOSITORY}/manifests/latest", private)
    assert refused.status == 401
    assert 'error="insufficient_scope"' in (refused.getheader("WWW-Authenticate") or "")
    assert [r.granted for r in server.requests] == [
        ({"type": "repository", "name": REPOSITORY, "actions": ["pull"]},),
        (),  # anonymous may not pull the private repository: an empty access list
    ]
    server.configure(use_x5c=True)  # the certificate in the JWT header instead of a kid
    assert head(token_registry, MANIFEST, anonymous_token(server, REPOSITORY)).status == 200
    token_registry.access_log.assert_no_pull()


# -- (a) no auth --------------------------------------------------------------------------------


def test_check_against_the_plain_registry(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done, document = pullwatch_cli.check_json(plain_registry.url)
    assert done.returncode == 0, done.stderr
    row = only_row(document)
    assert (row["state"], row["http_status"]) == ("unmetered", 200)
    assert row["detail"] == "no rate-limit headers (paid plan or exempt)"
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
    assert (row["state"], row["detail"]) == ("auth_failed", "anonymous token refused: no")
    assert "HEAD" not in [r.method for r in token_registry.access_log.assert_no_pull()]


def test_insufficient_scope_is_an_auth_failure(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done, document = pullwatch_cli.check_json(token_registry.url, repository=PRIVATE_REPOSITORY)
    assert done.returncode == 2, done.stderr
    row = only_row(document)
    assert row["state"] == "auth_failed" and row["http_status"] == 401
    assert row["detail"] == "registry rejected the token (insufficient_scope)"
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


@defect(1, "a registry whose CA is only in the system trust store is refused (certifi only)")
def test_a_ca_in_the_system_trust_store_is_trusted(
    tls_registry: Registry, pullwatch_cli: PullwatchCli, tmp_path: Path
) -> None:
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
    if control.returncode != 0:  # the set-up, not pullwatch: a real failure, not the xfail
        pytest.fail(f"the system trust store does not hold the test CA: {control.stderr}")
    _, document = pullwatch_cli.check_json(tls_registry.url, env=no_overrides, prefix=prefix)
    tls_registry.access_log.assert_no_pull()
    assert only_row(document)["state"] == "unmetered", only_row(document)["detail"]


# -- (d) pull-through cache ---------------------------------------------------------------------


def test_a_head_through_a_cold_mirror_makes_it_get_the_manifest_upstream(
    mirror_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    upstream = mirror_registry.upstream
    assert upstream is not None
    done, document = pullwatch_cli.check_json(mirror_registry.url)
    assert done.returncode == 0, done.stderr
    assert only_row(document)["state"] == "unmetered"
    assert triples(mirror_registry.access_log.assert_no_pull()) == [
        ("GET", "/v2/", 200),
        ("HEAD", MANIFEST, 200),
    ]
    # pullwatch sent only a HEAD, but the cold mirror fetched the manifest: upstream, a pull.
    assert ("GET", MANIFEST, 200) in triples(upstream.access_log.requests())


@defect(4, "through a pull-through cache pullwatch says 'paid plan or exempt'")
def test_a_mirror_is_not_reported_as_a_paid_plan(
    mirror_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    _, document = pullwatch_cli.check_json(mirror_registry.url)
    mirror_registry.access_log.assert_no_pull()
    assert "paid plan or exempt" not in str(only_row(document)["detail"])


# -- current defects against (a) and (b) --------------------------------------------------------


@defect(2, "--repository solo probes /v2/library/solo/... on any registry")
def test_a_one_part_repository_is_probed_as_named(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    pullwatch_cli.check_json(plain_registry.url, repository=SOLO_REPOSITORY)
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{SOLO_REPOSITORY}/manifests/latest", 200) in triples(seen), seen


@defect(3, "only the tag latest can be probed (repo:tag is refused as a repository name)")
def test_a_tag_other_than_latest_can_be_probed(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done = pullwatch_cli.run(
        plain_registry.url, "check", "--json", repository=f"{NOTAG_REPOSITORY}:v1"
    )
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{NOTAG_REPOSITORY}/manifests/v1", 200) in triples(seen), done.stderr


@defect(3, "a missing tag is worded as a missing repository, 'retried with backoff'")
def test_a_missing_tag_is_not_called_a_missing_repository(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done = pullwatch_cli.run(plain_registry.url, "head", "anonymous", repository=NOTAG_REPOSITORY)
    seen = plain_registry.access_log.assert_no_pull()
    assert ("HEAD", f"/v2/{NOTAG_REPOSITORY}/manifests/latest", 404) in triples(seen)
    assert f"repository '{NOTAG_REPOSITORY}' not found" not in done.stdout  # the tag is missing
    assert "Retried with backoff" not in done.stdout  # a one-shot command retries nothing


@defect(5, "--registry HOST:PORT on plain http: the SSL error twice, TLS-proxy advice")
def test_a_registry_without_a_scheme_on_plain_http_is_explained(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    _, document = pullwatch_cli.check_json(plain_registry.host)
    assert plain_registry.access_log.assert_no_pull() == []  # a TLS hello is no request
    row = only_row(document)
    assert str(row["detail"]).count("WRONG_VERSION_NUMBER") <= 1, row["detail"]
    assert not any("TLS-intercepting" in step for step in row["advice"]), row["advice"]


@defect(6, "`token` against a registry without auth says 'Docker Hub answered a server error'")
def test_token_check_against_a_registry_without_auth(
    plain_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    done = pullwatch_cli.run(plain_registry.url, "token", "anonymous", "--json")
    plain_registry.access_log.assert_no_pull()
    result = json.loads(done.stdout)
    assert not any("server error" in step for step in result["advice"]["steps"]), result["advice"]


@defect(7, "redaction eats realm= out of a displayed WWW-Authenticate header")
def test_the_displayed_challenge_keeps_its_realm(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    assert token_registry.token_server is not None
    done = pullwatch_cli.run(token_registry.url, "head", "anonymous")
    assert done.returncode == 0, done.stderr
    token_registry.access_log.assert_no_pull()
    challenges = [line for line in done.stdout.splitlines() if "Www-Authenticate:" in line]
    assert challenges, done.stdout
    assert f'realm="{token_registry.token_server.realm}"' in challenges[0], challenges[0]


@defect(8, "a refused login shows 'Last HEAD HTTP 401' though no HEAD was sent")
async def test_a_refused_login_shows_no_head_status(
    token_registry: Registry, paths: Paths, memory_keyring: MemoryKeyring
) -> None:
    from rich.console import Console
    from textual.widgets import Static

    from pullwatch.runtime import build_runtime
    from pullwatch.tui.app import make_app

    secrets = SecretStore(memory_keyring, timeout=2.0)
    runtime = build_runtime(paths, registry=token_registry.url, secrets=secrets, env={})
    runtime.store.add(Identity("bad", KIT_USER[0]), secret="not-the-password")
    runtime.store.remove("anonymous")
    runtime.reload()
    app = make_app(runtime, interval=60, watch_terminal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_for_round()
        await pilot.pause()
        body = app.dashboard.detail.query_one("#detail-body", Static)
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(body.content)
        text = console.export_text()
    seen = token_registry.access_log.assert_no_pull()
    assert "HEAD" not in [r.method for r in seen]  # the token was refused: no HEAD was sent
    assert "auth failed" in text, text
    assert "Last HEAD" not in text or "HTTP 401" not in text, text


@defect(10, "the token request of a user identity lacks account=<username>")
def test_the_token_request_names_the_account(
    token_registry: Registry, pullwatch_cli: PullwatchCli
) -> None:
    server = token_registry.token_server
    assert server is not None
    pullwatch_cli.add_identity(token_registry.url, "kit", *KIT_USER)
    done = pullwatch_cli.run(token_registry.url, "check", "--identity", "kit")
    assert done.returncode == 0, done.stdout + done.stderr
    token_registry.access_log.assert_no_pull()
    [request] = [r for r in server.requests if r.username == KIT_USER[0]]
    assert request.query.get("account") == [KIT_USER[0]], request.query
