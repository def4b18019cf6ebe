"""contrib/ and the fleet, against the real exporter and a real Prometheus.

Two `pullwatch serve` processes (`--instance-label node-a|node-b`, each with its own config and
data directories, identities and simulated Docker Hub with its own egress address) are scraped
every second by a real Prometheus with the alerting rules loaded. The tests check that the
series arrive with the labels and the values each serve read from its hub, that the rules and
the Grafana dashboard use only metric names the exporter really emits (`known_metrics`: declared
by the two processes, the forecast's included), that the rules raise the
alerts these readings call for, and that `pullwatch fleet` reads both nodes back - as JSON and in
the dashboard - and shows a stopped node and a stopped Prometheus as stale.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from fixtures_prometheus import (
    PrometheusServer,
    ServeProcess,
    free_port,
    run_prometheus,
    unavailable,
    value_of,
)
from fixtures_registry import PullwatchCli
from pullwatch import fleet as fleetmod
from pullwatch.simhub import SimHubServer, standard_model
from pullwatch.simhub.model import ANONYMOUS

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
RULES = CONTRIB / "prometheus" / "pullwatch.rules.yml"
RULE_TESTS = CONTRIB / "prometheus" / "pullwatch.rules.test.yml"
SCRAPE = CONTRIB / "prometheus" / "scrape.yml"
SCRAPE_KUBERNETES = CONTRIB / "kubernetes" / "scrape-kubernetes.yml"
DASHBOARD = CONTRIB / "grafana" / "pullwatch-dashboard.json"
UNIT = CONTRIB / "systemd" / "pullwatch-serve.service"
DAEMONSET = CONTRIB / "kubernetes" / "daemonset.yaml"
README = ROOT / "README.md"

# -- the metric contract ------------------------------------------------------------------------

FORECAST = frozenset(
    {"pullwatch_forecast_exhaustion_timestamp_seconds", "pullwatch_forecast_pulls_per_hour"}
)
STATES = ("ok", "low", "exhausted", "unmetered", "auth_failed", "throttled", "error", "unknown")
PROMETHEUS_METRICS = frozenset({"up"})  # what Prometheus itself adds, usable by the rules
# Label contract: every per-identity series, bucket series, and serve's own.
WHO = {"identity", "registry", "node"}
BUCKET_FAMILIES = {"pullwatch_remaining_pulls", "pullwatch_limit_pulls", "pullwatch_window_seconds"}
NODE_FAMILIES = {
    "pullwatch_rounds",
    "pullwatch_last_round_timestamp_seconds",
    "pullwatch_history_write_failures",
}
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def metric_names(openmetrics_text: str) -> frozenset[str]:
    """Every metric name an exposition declares, as PromQL sees it (counters with `_total`),
    families without samples included (Retry-After has one only when an answer sent it)."""
    names = set()
    for family in parse_om(openmetrics_text):
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


# -- PromQL: which metric names does an expression use? -----------------------------------------

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "offset", "bool", "inf", "nan", "atan2"}
)  # fmt: skip
_STRING = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (Grafana's `$variables` allowed)."""
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", expr)
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', text))
    text = re.sub(_STRING, '""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        word = match.group()
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function / aggregation
        names.add(word)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('rate(pullwatch_rounds_total{node=~"$node"}[$__rate_interval]) * 3600',
         {"pullwatch_rounds_total"}),
        ("sum by (node) (a) / on(node) group_left(x) b offset 5m", {"a", "b"}),
        ('count(x{state="low"} == 1) or vector(0)', {"x"}),
        ('{__name__="foo", job="by"}', {"foo"}),
        ("time() - y > 1e3 unless ignoring(state) z == bool 1", {"y", "z"}),
        ("max_over_time(w[1h:5m]) and absent(v)", {"w", "v"}),
    ],
)  # fmt: skip
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


# -- YAML ---------------------------------------------------------------------------------------


def load_yaml(path: Path, *, many: bool = False) -> Any:
    try:
        import yaml
    except ImportError:
        unavailable("PyYAML is missing: it belongs in the `test` extra (pip install pyyaml)")
    with path.open(encoding="utf-8") as handle:
        return list(yaml.safe_load_all(handle)) if many else yaml.safe_load(handle)


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


# -- promtool -----------------------------------------------------------------------------------


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_promtool_checks_the_rules(promtool: str) -> None:
    done = run_promtool(promtool, "check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerting_rules())} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    done = run_promtool(promtool, "test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_scrape_config(promtool: str) -> None:
    done = run_promtool(promtool, "check", "config", SCRAPE.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_unit_tests_that_fire_and_that_do_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerting_rules()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested staying silent"


def test_rules_use_exported_metrics_and_name_node_and_identity(
    known_metrics: frozenset[str],
) -> None:
    for rule in alerting_rules():
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known_metrics | PROMETHEUS_METRICS, (rule["alert"], used - known_metrics)
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        if used & {"pullwatch_state", "pullwatch_probe_success"} or "timestamp" in rule["expr"]:
            text = notes["summary"] + notes["description"]
            assert "$labels.node" in text and "$labels.identity" in text, rule["alert"]


# -- the scrape configs, the DaemonSet, the systemd unit ----------------------------------------


def test_scrape_configs_leave_the_node_label_to_pullwatch(promtool: str) -> None:
    jobs = [*load_yaml(SCRAPE)["scrape_configs"], *load_yaml(SCRAPE_KUBERNETES)["scrape_configs"]]
    for job in jobs:
        assert job["job_name"].startswith("pullwatch"), "PullwatchTargetDown matches pullwatch.*"
        for relabel in job.get("relabel_configs", []):
            # a target label `node` would rename pullwatch's own to exported_node
            assert relabel.get("target_label") != "node"
    kubernetes = load_yaml(SCRAPE_KUBERNETES)["scrape_configs"][0]
    port_rule = [r for r in kubernetes["relabel_configs"] if "port_name" in str(r)]
    assert port_rule and port_rule[0]["regex"] == "metrics"  # the DaemonSet's port name
    done = run_promtool(promtool, "check", "config", str(SCRAPE_KUBERNETES))
    if "kubernetes_sd_configs not found" not in done.stdout + done.stderr:  # Debian's build
        assert done.returncode == 0, done.stdout + done.stderr


def test_daemonset_probes_from_each_node_as_that_node() -> None:
    (daemonset,) = [doc for doc in load_yaml(DAEMONSET, many=True) if doc]
    assert (daemonset["apiVersion"], daemonset["kind"]) == ("apps/v1", "DaemonSet")
    spec = daemonset["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    args = [str(a) for a in container["args"]]
    assert args[0] == "serve"
    env = {e["name"]: e for e in container["env"]}
    label = args[args.index("--instance-label") + 1]
    variable = re.fullmatch(r"\$\((\w+)\)", label)
    assert variable, label
    assert env[variable.group(1)]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    listen_port = int(args[args.index("--listen") + 1].rpartition(":")[2])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == listen_port
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= volumes
    data = mounts[env["PULLWATCH_DATA_DIR"]["value"]]  # writable: the history database
    assert not data.get("readOnly")


def unit_settings(text: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit's sections as (key, value) lists (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def test_systemd_unit_is_hardened_and_labels_the_host() -> None:
    service = unit_settings(UNIT.read_text())["Service"]
    settings = dict(service)
    command = settings["ExecStart"].split()
    assert command[1] == "serve" and "--listen" in command
    assert command[command.index("--instance-label") + 1] == "%H"
    assert settings["DynamicUser"] == "yes" or settings.get("User")
    assignments = [v.split() for k, v in service if k == "Environment"]
    environment = dict(item.split("=", 1) for items in assignments for item in items)
    assert environment["PULLWATCH_DATA_DIR"] == "/var/lib/" + settings["StateDirectory"]
    for key, value in {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
    }.items():  # fmt: skip
        assert settings.get(key) == value, key


def test_systemd_analyze_verifies_the_unit_and_rates_it_ok(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # not installed by .ci/run: a container often has no systemd
        pytest.skip("systemd-analyze is not installed")
    # Only the program's path changes: /opt/pullwatch is not installed here.
    unit = tmp_path / UNIT.name
    text = UNIT.read_text()
    program = re.search(r"^ExecStart=(\S+)", text, re.MULTILINE)
    assert program
    unit.write_text(text.replace(program.group(1), "/bin/true"))
    # --threshold is on a 0-100 scale: 20 is the "2.0" it prints (1.1 as written).
    for args in (["verify", "--man=no"], ["security", "--offline=true", "--threshold=20"]):
        done = subprocess.run(
            [analyze, *args, str(unit)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])


# -- the Grafana dashboard ----------------------------------------------------------------------


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets' `expr`, and template variables' queries."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for key, value in node.items():
                if key != "templating":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\s*\)", query.strip())
            found.append(inner.group(1) if inner else query)
    return found


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_uses_only_exported_metric_names(known_metrics: frozenset[str]) -> None:
    expressions = dashboard_expressions(load_dashboard())
    assert len(expressions) > 10
    used: set[str] = set()
    for expr in expressions:
        names = promql_metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        used |= names
    assert used - known_metrics == set()


def test_dashboard_is_importable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


# -- a fleet: two real `pullwatch serve`, a real Prometheus, the rules --------------------------


@dataclass(frozen=True)
class NodeSpec:
    """One node: its egress address, pulls other clients already spent from it anonymously,
    and the identities its pullwatch watches besides `anonymous` (label, Docker ID, token)."""

    name: str
    egress: str
    anonymous_used: int
    identities: tuple[tuple[str, str, str], ...]


# The simulated hub's accounts (simhub/accounts.py): erin has spent all 200 of her pulls, bob is
# on a paid plan (not metered); "alice" with the wrong token is refused.
NODE_SPECS = (
    NodeSpec("node-a", "203.0.113.7", 24,
             (("ci-bot", "erin", "erin-pat"), ("release", "bob", "bob-pat"))),
    NodeSpec("node-b", "198.51.100.9", 88,
             (("ci-bot", "erin", "erin-pat"), ("old-bot", "alice", "not-alices-token"))),
)  # fmt: skip
EXPECTED_STATES = {
    ("node-a", "anonymous"): "ok",  # 76 of 100
    ("node-a", "ci-bot"): "exhausted",
    ("node-a", "release"): "unmetered",
    ("node-b", "anonymous"): "low",  # 12 of 100: at or under 20%
    ("node-b", "ci-bot"): "exhausted",  # erin's account: the same bucket as node-a's ci-bot
    ("node-b", "old-bot"): "auth_failed",
}
# (alertname, node, identity) the readings must raise; `for:` keeps them pending for a minute
# or more, so pending or firing both count.
EXPECTED_ALERTS = {
    ("PullwatchPullsExhausted", "node-a", "ci-bot"),
    ("PullwatchPullsExhausted", "node-b", "ci-bot"),
    ("PullwatchPullsLow", "node-b", "anonymous"),
    ("PullwatchAuthFailed", "node-b", "old-bot"),
}
# Metrics these readings leave without a sample (no answer sent Retry-After; no forecast yet).
NO_DATA_HERE = FORECAST | {"pullwatch_retry_after_seconds"}
SERVE_INTERVAL = "3600"  # one round per serve: its readings stay put while the tests read them


@dataclass
class FleetNode:
    spec: NodeSpec
    hub: SimHubServer
    cli: PullwatchCli
    serve: ServeProcess | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def registry(self) -> str:
        """The `registry` label: the hub's host:port."""
        return self.hub.url.split("://", 1)[1]

    def usernames(self) -> dict[str, str | None]:
        return {"anonymous": None, **{label: user for label, user, _ in self.spec.identities}}

    def expected_buckets(self) -> dict[str, tuple[str, int, int]]:
        """identity -> (source, remaining, limit) as the simulated hub holds them, for metered
        identities that log in successfully."""
        out = {}
        for label, username in self.usernames().items():
            if label == "old-bot":
                continue  # refused: never measured
            quota = self.hub.model.quota(username or ANONYMOUS)
            if quota.limit is not None and quota.remaining is not None:
                out[label] = (quota.source, quota.remaining, quota.limit)
        return out


def start_node(spec: NodeSpec, base: Path) -> FleetNode:
    """A simulated hub with this node's egress address, and the node's identities added."""
    model = standard_model()
    model.egress_ip = spec.egress
    model.consume(ANONYMOUS, spec.anonymous_used)
    hub = SimHubServer(model).start()
    node = FleetNode(spec, hub, PullwatchCli(base))
    for label, username, secret in spec.identities:
        node.cli.add_identity(hub.url, label, username, secret)
    return node


def serve_command(node: FleetNode, listen: str = "127.0.0.1:0") -> list[str]:
    return node.cli.command(
        node.hub.url, "serve", "--listen", listen, "--interval", SERVE_INTERVAL,
        "--instance-label", node.name,
    )  # fmt: skip


def stop_node(node: FleetNode) -> None:
    try:
        if node.serve is not None:
            code = node.serve.stop()
            assert code == 0, node.serve.stderr
            assert "Traceback" not in node.serve.stderr, node.serve.stderr
    finally:
        node.hub.stop()
    assert node.hub.model.counters["manifest_get"] == 0, "a manifest GET spent a pull"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FleetNode]]:
    """Two nodes, each a simulated hub and a real `pullwatch serve` after its first round."""
    started: list[FleetNode] = []
    try:
        with ThreadPoolExecutor(len(NODE_SPECS)) as pool:  # their `identity add`s side by side
            futures = [
                pool.submit(start_node, spec, tmp_path_factory.mktemp(spec.name))
                for spec in NODE_SPECS
            ]
            for future in futures:
                with contextlib.suppress(Exception):
                    started.append(future.result())
            for future in futures:
                future.result()  # the first failure, raised (after every hub is known)
        for node in started:
            node.serve = ServeProcess.start(serve_command(node), node.cli.env())
        for node in started:
            assert node.serve is not None
            node.serve.wait_for_round()
        yield started
    finally:
        for node in started:
            stop_node(node)


def serve_of(node: FleetNode) -> ServeProcess:
    assert node.serve is not None
    return node.serve


@pytest.fixture(scope="module")
def exported(nodes: list[FleetNode]) -> frozenset[str]:
    """Every metric name the real exporters emit (OpenMetrics, as Prometheus scrapes them)."""
    return frozenset().union(*(metric_names(serve_of(n).metrics(OPENMETRICS)) for n in nodes))


@pytest.fixture(scope="module")
def known_metrics(exported: frozenset[str]) -> frozenset[str]:
    """What the rules and the dashboard may use: the names the exporter declares."""
    return exported


@pytest.fixture(scope="module")
def spare_target() -> str:
    """A third target in the scrape config, down until a test starts a serve there (node-c):
    a Prometheus of its own would spend 5 s before its first scrape (discovery's pace)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def fleet(
    nodes: list[FleetNode], spare_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping both serve processes every second, with the rules loaded."""
    base = tmp_path_factory.mktemp("prometheus")
    targets = [*(serve_of(n).address for n in nodes), spare_target]
    with run_prometheus(base, targets, rule_files=[RULES]) as server:
        server.wait_for('up{job="pullwatch"} == 1', lambda r: len(r) == len(nodes), timeout=20)
        server.wait_for("pullwatch_state == 1", lambda r: len(r) == len(EXPECTED_STATES))
        yield server


def test_prometheus_fixture_answers_bounds_its_waits_and_stops(
    prometheus: Callable[..., PrometheusServer],
) -> None:
    server = prometheus(["127.0.0.1:9"], interval="5s")  # nothing listens there: never scraped
    assert 0 < server.startup_seconds < 10, server.startup_seconds
    assert server.url.startswith("http://127.0.0.1:")
    assert [value_of(item) for item in server.query("vector(42)")] == [42.0]
    assert value_of(server.query("time()")[0]) == pytest.approx(time.time(), abs=60)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="not met within"):
        server.wait_for("pullwatch_build_info", timeout=0.3)
    assert time.monotonic() - started < 5
    server.stop()
    assert not server.alive()


def test_prometheus_starts_quickly(fleet: PrometheusServer) -> None:
    assert 0 < fleet.startup_seconds < 10, fleet.startup_seconds


# -- the exporter's names, units and labels -----------------------------------------------------


def test_the_exporter_follows_prometheus_naming_conventions(
    nodes: list[FleetNode], promtool: str
) -> None:
    for node in nodes:
        serve = serve_of(node)
        text = serve.metrics()  # the classic text format, which promtool lints
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
        for family in parse_om(serve.metrics(OPENMETRICS)):
            name = family.name
            assert re.fullmatch(r"pullwatch_[a-z_]+", name), name
            assert name.endswith("_seconds") == (family.unit == "seconds"), name
            assert not name.endswith("_total"), name  # counters get _total on their samples
            for sample in family.samples:
                labels = set(sample.labels)
                assert sample.labels["node"] == node.name, sample
                if family.type == "counter":
                    assert sample.name == name + "_total", sample
                if name in NODE_FAMILIES:
                    assert labels == {"node"}, sample
                elif name == "pullwatch_build_info":
                    assert labels == {"version", "registry", "repository", "node"}, sample
                elif name in BUCKET_FAMILIES:
                    assert labels == WHO | {"source"}, sample
                elif name == "pullwatch_state":
                    assert labels == WHO | {"state"}, sample
                else:
                    assert labels == WHO, sample


def documented_metrics() -> set[str]:
    """The metric names in the README's table (`Metrics for fleets`)."""
    names: set[str] = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `pullwatch_"):
            names.update(re.findall(r"`(pullwatch_[a-z_]+)`", line.split("|")[1]))
    return names


def test_the_readme_documents_every_metric_the_exporter_emits(exported: frozenset[str]) -> None:
    documented = documented_metrics()
    assert exported - documented == set(), "emitted but not in the README's table"
    assert documented - exported == set(), "documented but never emitted"


def test_rules_and_dashboard_need_nothing_beyond_the_exporter(
    exported: frozenset[str],
) -> None:
    used = {n for rule in alerting_rules() for n in promql_metric_names(rule["expr"])}
    for expr in dashboard_expressions(load_dashboard()):
        used |= promql_metric_names(expr)
    assert used - exported - PROMETHEUS_METRICS == set()


# -- what Prometheus holds ------------------------------------------------------------------------


def by(result: list[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(item["metric"].get(k, "") for k in keys): value_of(item) for item in result}


def test_series_arrive_with_the_labels_and_values_each_serve_read(
    fleet: PrometheusServer, nodes: list[FleetNode]
) -> None:
    info = fleet.wait_for("pullwatch_build_info", lambda r: len(r) == len(nodes))
    assert {i["metric"]["node"]: i["metric"]["instance"] for i in info} == {
        n.name: serve_of(n).address for n in nodes
    }  # node: where it probes from; instance: the scrape target
    assert {i["metric"]["node"]: i["metric"]["registry"] for i in info} == {
        n.name: n.registry for n in nodes
    }
    assert {i["metric"]["job"] for i in info} == {"pullwatch"}

    remaining = by(fleet.query("pullwatch_remaining_pulls"), "node", "identity", "source")
    limits = by(fleet.query("pullwatch_limit_pulls"), "node", "identity", "source")
    expected = {
        (n.name, identity, source): (left, limit)
        for n in nodes
        for identity, (source, left, limit) in n.expected_buckets().items()
    }
    assert {k: (remaining[k], limits[k]) for k in remaining} == expected
    assert expected[("node-a", "anonymous", "203.0.113.7")] == (76, 100)
    assert expected[("node-b", "anonymous", "198.51.100.9")] == (12, 100)
    windows = by(fleet.query("pullwatch_window_seconds"), "node", "identity")
    assert set(windows.values()) == {21600}

    states = by(fleet.query("pullwatch_state == 1"), "node", "identity", "state")
    assert {(node, ident): state for node, ident, state in states} == EXPECTED_STATES
    success = by(fleet.query("pullwatch_probe_success"), "node", "identity")
    assert success == {key: float(state != "auth_failed") for key, state in EXPECTED_STATES.items()}
    # Three buckets in the fleet: two egress addresses and erin's account, seen from both nodes.
    assert value_of(fleet.query("count(count by (source) (pullwatch_limit_pulls))")[0]) == 3
    probed = by(fleet.query("time() - pullwatch_last_probe_timestamp_seconds"), "node", "identity")
    assert set(probed) == set(EXPECTED_STATES) and all(0 <= age < 120 for age in probed.values())
    never = fleet.query('pullwatch_last_success_timestamp_seconds{identity="old-bot"}')
    assert never == []  # refused: never measured, so no time of a last success
    rounds = by(fleet.query("pullwatch_rounds_total"), "node")
    assert rounds == {(n.name,): 1.0 for n in nodes}


def test_rules_load_and_raise_the_alerts_these_readings_call_for(
    fleet: PrometheusServer, spare_target: str
) -> None:
    def key(item: dict[str, Any]) -> tuple[str, ...]:
        labels = item["metric"]
        return (labels["alertname"], labels.get("node", ""), labels.get("identity", ""))

    # The spare target is down (no serve there unless a test starts one): PullwatchTargetDown.
    expected = EXPECTED_ALERTS | {("PullwatchTargetDown", "", "")}
    alerts = fleet.wait_for("ALERTS", lambda result: {key(i) for i in result} == expected)
    down = [i["metric"] for i in alerts if i["metric"]["alertname"] == "PullwatchTargetDown"]
    assert [labels["instance"] for labels in down] == [spare_target]
    assert {i["metric"]["alertstate"] for i in alerts} <= {"pending", "firing"}
    listed = {(a["labels"]["alertname"], a["labels"].get("node")): a for a in fleet.alerts()}
    exhausted = listed[("PullwatchPullsExhausted", "node-b")]
    assert exhausted["labels"]["severity"] == "critical"
    assert exhausted["annotations"]["summary"] == "node-b: Docker Hub pulls exhausted for ci-bot"
    rules = [rule for group in fleet.rule_groups() for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alerting_rules()}
    assert all(rule["health"] == "ok" and not rule.get("lastError") for rule in rules), rules


def test_dashboard_queries_evaluate_on_the_fleet(fleet: PrometheusServer) -> None:
    values = {"$__rate_interval": "1m", "$node": ".*", "$identity": ".*"}
    for expr in dashboard_expressions(load_dashboard()):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        if promql_metric_names(expr) <= NO_DATA_HERE:
            fleet.query(expr)  # parses and evaluates; these readings leave it without data
        else:
            fleet.wait_for(expr, bool, timeout=10)  # parses, evaluates, and finds data


def test_ci_installs_prometheus_and_runs_promtool() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    install = script[script.index("apt-get install") :].split(">/dev/null")[0]
    assert re.search(r"\bprometheus\b", install)  # Debian's package has promtool too
    assert "promtool check rules" in script and "promtool test rules" in script


# -- pullwatch fleet, against this Prometheus ---------------------------------------------------


def run_fleet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`pullwatch fleet ...` as a user runs it (its own process)."""
    return subprocess.run(
        [sys.executable, "-m", "pullwatch", "fleet", *args],
        capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_fleet_json_shows_every_node_with_what_its_serve_read(
    fleet: PrometheusServer, nodes: list[FleetNode]
) -> None:
    done = run_fleet(fleet.url, "--json")
    assert done.returncode == 2, done.stderr  # the worst row: exhausted (check's critical)
    assert done.stderr == ""
    document = json.loads(done.stdout)
    rows = {row["key"]: row for row in document["rows"] if row["node"] != "node-c"}
    assert set(rows) == {f"{node}/{ident}" for node, ident in EXPECTED_STATES}
    address = {n.name: serve_of(n).address for n in nodes}
    for (node, ident), state in EXPECTED_STATES.items():
        row = rows[f"{node}/{ident}"]
        assert (row["node"], row["identity"], row["state"]) == (node, ident, state)
        assert row["instance"] == address[node] and row["job"] == "pullwatch"
        assert row["stale"] is False and row["stale_reason"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["checked_at"]), row
    for n in nodes:
        for ident, (source, left, limit) in n.expected_buckets().items():
            row = rows[f"{n.name}/{ident}"]
            assert (row["source"], row["remaining"], row["limit"]) == (source, left, limit)
            assert row["window_seconds"] == 21600 and row["registry"] == n.registry
    assert rows["node-a/release"]["remaining"] is None  # unmetered: no number
    assert rows["node-b/old-bot"]["limit"] is None and rows["node-b/old-bot"]["advice"]
    assert document["best"] == "node-a/release"  # not metered: room now
    assert document["exit_code"] == 2
    up = {t["node"]: t["up"] for t in document["nodes"]}
    assert (up["node-a"], up["node-b"]) == (True, True)  # (node-c: another test's, once stopped)


def screen_text(app: Any) -> str:
    """The screen's text, from its SVG screenshot (each line's pieces joined)."""
    svg = app.export_screenshot()
    lines: dict[str, list[str]] = {}
    for line, text in re.findall(r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)<', svg):
        lines.setdefault(line, []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(lines.items(), key=lambda i: int(i[0])))


async def test_fleet_dashboard_shows_both_nodes_from_prometheus(
    fleet: PrometheusServer, nodes: list[FleetNode]
) -> None:
    from pullwatch.tui.fleet import FleetApp

    reader = fleetmod.FleetReader(fleet.url, timeout=10)
    app = FleetApp(reader, interval=3600, watch_terminal=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await app.wait_for_reads(1)
        await pilot.pause()
        table = app.fleet_screen.table if app.fleet_screen else None
        assert table is not None
        ours = [label for label in table.labels if not label.startswith("node-c/")]
        assert ours == sorted(f"{node}/{ident}" for node, ident in EXPECTED_STATES)
        screen = screen_text(app)
        for text in ("node-a/anonymous", "node-b/anonymous", "76/100", "12/100", "0/200"):
            assert text in screen, text
        while table.selected_label != "node-b/anonymous":
            await pilot.press("down")
        await pilot.pause()
        assert table.selected_label == "node-b/anonymous"
        shown = app.fleet_screen.detail.assessment if app.fleet_screen else None
        assert isinstance(shown, fleetmod.FleetAssessment) and shown.key == "node-b/anonymous"
        assert "12 of 100 per 6 h" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert table.labels[0] == "node-a/release"  # best first: not metered
        assert "node-a/release ★" in screen_text(app)
        await pilot.press("r")
        await app.wait_for_reads(2)
        await pilot.press("q")
    assert app.return_code in (0, None)


# -- a node that stops, a Prometheus with nothing or gone ---------------------------------------


def test_a_node_that_stops_probing_or_stops_answering_turns_stale(
    fleet: PrometheusServer, spare_target: str, tmp_path: Path
) -> None:
    spec = NodeSpec("node-c", "192.0.2.44", 40, ())
    node = start_node(spec, tmp_path / "node-c")
    mine = f'instance="{spare_target}"'
    try:
        node.serve = ServeProcess.start(serve_command(node, spare_target), node.cli.env())
        node.serve.wait_for_round()
        fleet.wait_for(f'pullwatch_state{{{mine}, state="ok"}} == 1')  # its first round

        def node_c(snapshot: fleetmod.FleetSnapshot) -> fleetmod.FleetAssessment:
            (row,) = [row for row in snapshot.rows if row.node == "node-c"]
            return row

        row = node_c(fleetmod.read_once(fleet.url))
        assert (row.key, row.state.value, row.stale) == ("node-c/anonymous", "ok", False)
        assert row.quota is not None and (row.quota.remaining, row.quota.stale) == (60, False)

        time.sleep(1.1)  # serve probes once an hour: its last round ages
        row = node_c(fleetmod.read_once(fleet.url, stale_after=1))
        assert row.state.value == "unknown" and row.reason is not None
        assert row.reason.startswith("stale: no probe for"), row.reason
        assert row.quota is not None and (row.quota.remaining, row.quota.stale) == (60, True)

        assert node.serve.stop() == 0
        fleet.wait_for(f"up{{{mine}}} == 0")
        done = run_fleet(fleet.url, "--json")
        document = json.loads(done.stdout)
        (stale,) = [r for r in document["rows"] if r["node"] == "node-c"]
        assert stale["state"] == "unknown" and stale["stale"] is True
        assert stale["stale_reason"] == "stale: scrape failing; was ok"
        assert stale["remaining"] is None  # no current number...
        assert stale["last_known"]["remaining"] == 60  # ...the last one, with its time
        assert stale["instance"] == spare_target
        others = [r for r in document["rows"] if r["node"] != "node-c"]
        assert others and not any(r["stale"] for r in others)
        assert {t["node"]: t["up"] for t in document["nodes"]}["node-c"] is False
    finally:
        stop_node(node)


async def test_fleet_says_when_prometheus_has_no_pullwatch_metrics_and_when_it_is_down(
    prometheus: Callable[..., PrometheusServer],
) -> None:
    from pullwatch.tui.fleet import FleetApp

    server = prometheus(["127.0.0.1:9"])  # nothing listens there: no pullwatch metrics
    done = run_fleet(server.url, "--json")
    assert done.returncode == 3, done.stderr  # no row: unknown
    assert json.loads(done.stdout)["rows"] == []
    app = FleetApp(fleetmod.FleetReader(server.url, timeout=5), interval=3600, watch_terminal=False)
    async with app.run_test(size=(100, 24)) as pilot:
        await app.wait_for_reads(1)
        await pilot.pause()
        assert "answers, but has no pullwatch metrics" in screen_text(app)
        server.stop()
        await pilot.press("r")
        await app.wait_for_reads(2)
        await pilot.pause()
        text = screen_text(app)
        assert f"Prometheus at {server.url}: connection refused" in text
        assert "Prometheus does not answer" in text  # the detail pane
    done = run_fleet(server.url, "--json", "--timeout", "5")
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == (
        f"pullwatch: error: Prometheus at {server.url}: connection refused "
        "(is Prometheus running there?)\n"
    )
