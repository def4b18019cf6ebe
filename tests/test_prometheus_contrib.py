"""contrib/: the alerting rules, dashboard, scrape configs, systemd unit and DaemonSet.

Everything here is built against the exporter's metric contract (README "Metrics for fleets"):
`KNOWN_METRICS` is the list the rules and the dashboard may use, and the fleet tests scrape two
stand-in exporters that serve contract text for two nodes into a real Prometheus with the rules
loaded.

For the integrator, two swaps:
- `KNOWN_METRICS = CONTRACT_METRICS` becomes
  `KNOWN_METRICS = metric_names(<the real exporter's OpenMetrics text>)`;
- the `exporters` fixture starts two `pullwatch serve --instance-label node-a|node-b` processes
  (against the simulated hub) instead of `StandInExporter`s; it yields the same `Target`s.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from fixtures_prometheus import PrometheusServer, run_prometheus, unavailable, value_of

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
RULES = CONTRIB / "prometheus" / "pullwatch.rules.yml"
RULE_TESTS = CONTRIB / "prometheus" / "pullwatch.rules.test.yml"
SCRAPE = CONTRIB / "prometheus" / "scrape.yml"
SCRAPE_KUBERNETES = CONTRIB / "kubernetes" / "scrape-kubernetes.yml"
DASHBOARD = CONTRIB / "grafana" / "pullwatch-dashboard.json"
UNIT = CONTRIB / "systemd" / "pullwatch-serve.service"
DAEMONSET = CONTRIB / "kubernetes" / "daemonset.yaml"

# -- the metric contract ------------------------------------------------------------------------

CONTRACT_METRICS = frozenset(
    {
        "pullwatch_build_info",
        "pullwatch_remaining_pulls",
        "pullwatch_limit_pulls",
        "pullwatch_window_seconds",
        "pullwatch_probe_success",
        "pullwatch_state",
        "pullwatch_probe_latency_seconds",
        "pullwatch_last_probe_timestamp_seconds",
        "pullwatch_last_success_timestamp_seconds",
        "pullwatch_retry_after_seconds",
        "pullwatch_forecast_exhaustion_timestamp_seconds",
        "pullwatch_forecast_pulls_per_hour",
        "pullwatch_rounds_total",
        "pullwatch_last_round_timestamp_seconds",
        "pullwatch_history_write_failures_total",
    }
)
STATES = ("ok", "low", "exhausted", "unmetered", "auth_failed", "throttled", "error", "unknown")
MEASURED = frozenset({"ok", "low", "exhausted", "unmetered"})
PROMETHEUS_METRICS = frozenset({"up"})  # what Prometheus itself adds, usable by the rules


def metric_names(openmetrics_text: str) -> frozenset[str]:
    """Every sample name in an exposition (counters as `..._total`)."""
    return frozenset(
        sample.name for family in parse_om(openmetrics_text) for sample in family.samples
    )


KNOWN_METRICS = CONTRACT_METRICS  # the integrator: metric_names(the real exporter's output)


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


def test_rules_use_contract_metrics_and_name_node_and_identity() -> None:
    for rule in alerting_rules():
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= KNOWN_METRICS | PROMETHEUS_METRICS, (rule["alert"], used - KNOWN_METRICS)
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


def test_dashboard_uses_only_known_metric_names() -> None:
    expressions = dashboard_expressions(load_dashboard())
    assert len(expressions) > 10
    used: set[str] = set()
    for expr in expressions:
        names = promql_metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        used |= names
    assert used - KNOWN_METRICS == set()


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


# -- a fleet: two exporters, a real Prometheus, the rules ---------------------------------------

ACCOUNT = "186e63fa-1b6a-4c51-9f12-61a26f0a9c01"
REGISTRY = "registry-1.docker.io"


@dataclass(frozen=True)
class Probe:
    """One identity's last reading on one node, as the exporter would publish it."""

    identity: str
    state: str
    source: str | None = None
    remaining: int | None = None
    limit: int | None = None
    window: int | None = None
    latency: float | None = 0.041
    probed_ago: float = 20.0
    measured_ago: float | None = 20.0  # None: never measured
    retry_after: float | None = None
    runs_out_in: float | None = None  # the forecast, seconds from now
    pulls_per_hour: float | None = None


NODES: dict[str, tuple[Probe, ...]] = {
    "node-a": (
        Probe("anonymous", "ok", "203.0.113.7", 76, 100, 21600),
        Probe("ci-bot", "exhausted", ACCOUNT, 0, 200, 21600, retry_after=60.0),
        Probe("release", "unmetered"),
    ),
    "node-b": (
        Probe("anonymous", "low", "198.51.100.9", 12, 100, 21600, runs_out_in=1200.0,
              pulls_per_hour=36.0),
        Probe("ci-bot", "exhausted", ACCOUNT, 0, 200, 21600),  # the same account's bucket
        Probe("old-bot", "auth_failed", latency=None, measured_ago=7200.0),
    ),
}  # fmt: skip
# (alertname, node, identity, alertstate) these readings must raise in a Prometheus evaluating
# the rules every second: for: keeps most pending; NoRecentReading has no for:.
EXPECTED_ALERTS = {
    ("PullwatchPullsExhausted", "node-a", "ci-bot", "pending"),
    ("PullwatchPullsExhausted", "node-b", "ci-bot", "pending"),
    ("PullwatchPullsLow", "node-b", "anonymous", "pending"),
    ("PullwatchPullsRunOutSoon", "node-b", "anonymous", "pending"),
    ("PullwatchAuthFailed", "node-b", "old-bot", "pending"),
    ("PullwatchNoRecentReading", "node-b", "old-bot", "firing"),
}


def _labels(**labels: str) -> str:
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in labels.items()
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


def contract_exposition(node: str, probes: tuple[Probe, ...], now: float) -> str:
    """OpenMetrics text following the metric contract, as `pullwatch serve` on `node` would."""
    families: dict[str, tuple[str, list[str]]] = {}

    def add(name: str, kind: str, labels: dict[str, str], value: float) -> None:
        family = name.removesuffix("_total") if kind == "counter" else name
        families.setdefault(family, (kind, []))[1].append(f"{name}{_labels(**labels)} {value!r}")

    add("pullwatch_build_info", "gauge",
        {"version": "0.2.0", "registry": REGISTRY, "repository": "ratelimitpreview/test",
         "node": node}, 1)  # fmt: skip
    for p in probes:
        who = {"identity": p.identity, "registry": REGISTRY, "node": node}
        bucket = {**who, "source": p.source or ""}
        if p.state in MEASURED - {"unmetered"}:
            add("pullwatch_remaining_pulls", "gauge", bucket, p.remaining)
            add("pullwatch_limit_pulls", "gauge", bucket, p.limit)
            add("pullwatch_window_seconds", "gauge", bucket, p.window)
        add("pullwatch_probe_success", "gauge", who, int(p.state in MEASURED))
        for state in STATES:
            add("pullwatch_state", "gauge", {**who, "state": state}, int(state == p.state))
        if p.latency is not None:
            add("pullwatch_probe_latency_seconds", "gauge", who, p.latency)
        add("pullwatch_last_probe_timestamp_seconds", "gauge", who, now - p.probed_ago)
        if p.measured_ago is not None:
            add("pullwatch_last_success_timestamp_seconds", "gauge", who, now - p.measured_ago)
        if p.retry_after is not None:
            add("pullwatch_retry_after_seconds", "gauge", who, p.retry_after)
        if p.runs_out_in is not None:
            add("pullwatch_forecast_exhaustion_timestamp_seconds", "gauge", bucket,
                now + p.runs_out_in)  # fmt: skip
        if p.pulls_per_hour is not None:
            add("pullwatch_forecast_pulls_per_hour", "gauge", bucket, p.pulls_per_hour)
    add("pullwatch_rounds_total", "counter", {"node": node}, 7)
    add("pullwatch_last_round_timestamp_seconds", "gauge", {"node": node}, now - 15)
    add("pullwatch_history_write_failures_total", "counter", {"node": node}, 0)
    lines = []
    for family, (kind, samples) in families.items():
        lines += [f"# TYPE {family} {kind}", *samples]
    return "\n".join([*lines, "# EOF"]) + "\n"


class StandInExporter:
    """A loopback HTTP server answering /metrics with `body()`: stands in for pullwatch serve."""

    CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    def __init__(self, body: Callable[[], str]) -> None:
        exporter = self
        self.scrapes = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                exporter.scrapes += 1
                payload = body().encode()
                self.send_response(200)
                self.send_header("Content-Type", exporter.CONTENT_TYPE)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> StandInExporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()


@dataclass(frozen=True)
class Target:
    node: str  # the exporter's `node` label
    address: str  # HOST:PORT, Prometheus's `instance`


def test_stand_in_follows_the_contract() -> None:
    for node, probes in NODES.items():
        text = contract_exposition(node, probes, time.time())
        names = metric_names(text)  # parses as OpenMetrics
        assert names <= CONTRACT_METRICS
    both = {n for node, p in NODES.items() for n in metric_names(contract_exposition(node, p, 0))}
    assert both == CONTRACT_METRICS


@pytest.fixture(scope="module")
def exporters() -> Iterator[list[Target]]:
    """Two exporters, one per node. The integrator: two `pullwatch serve` processes instead."""

    def body(node: str) -> Callable[[], str]:
        return lambda: contract_exposition(node, NODES[node], time.time())

    running = {node: StandInExporter(body(node)).start() for node in NODES}
    try:
        yield [Target(node, exporter.address) for node, exporter in running.items()]
    finally:
        for exporter in running.values():
            exporter.stop()


@pytest.fixture(scope="module")
def fleet(
    exporters: list[Target], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping `exporters` every second, with the rules loaded."""
    base = tmp_path_factory.mktemp("prometheus")
    with run_prometheus(base, [t.address for t in exporters], rule_files=[RULES]) as server:
        server.wait_for(
            'up{job="pullwatch"} == 1', lambda result: len(result) == len(exporters), timeout=20
        )
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


def by(result: list[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(item["metric"].get(k, "") for k in keys): value_of(item) for item in result}


def test_series_arrive_with_node_and_instance(
    fleet: PrometheusServer, exporters: list[Target]
) -> None:
    info = fleet.wait_for("pullwatch_build_info", lambda r: len(r) == len(exporters))
    instances = {item["metric"]["node"]: item["metric"]["instance"] for item in info}
    assert instances == {t.node: t.address for t in exporters}  # node: the host; instance: target
    assert {item["metric"]["registry"] for item in info} == {REGISTRY}

    remaining = by(fleet.query("pullwatch_remaining_pulls"), "node", "identity", "source")
    assert remaining == {
        (node, p.identity, p.source): p.remaining
        for node, probes in NODES.items()
        for p in probes
        if p.remaining is not None
    }
    states = by(fleet.query("pullwatch_state == 1"), "node", "identity", "state")
    assert set(states) == {(n, p.identity, p.state) for n, probes in NODES.items() for p in probes}
    success = by(fleet.query("pullwatch_probe_success"), "node", "identity")
    assert success[("node-a", "release")] == 1 and success[("node-b", "old-bot")] == 0
    # Two nodes, four metered bucket series, three buckets: ci-bot's account is shared.
    assert value_of(fleet.query("count(count by (source) (pullwatch_limit_pulls))")[0]) == 3
    age = fleet.query('time() - pullwatch_last_success_timestamp_seconds{identity="old-bot"}')
    assert abs(value_of(age[0]) - 7200) < 30
    left = fleet.query("pullwatch_forecast_exhaustion_timestamp_seconds - time()")
    assert by(left, "node", "identity").keys() == {("node-b", "anonymous")}
    assert abs(value_of(left[0]) - 1200) < 30


def test_rules_load_and_alerts_go_pending_and_firing(fleet: PrometheusServer) -> None:
    def key(item: dict[str, Any]) -> tuple[str, ...]:
        labels = item["metric"]
        return (labels["alertname"], labels.get("node", ""), labels.get("identity", ""),
                labels["alertstate"])  # fmt: skip

    fleet.wait_for("ALERTS", lambda result: {key(i) for i in result} == EXPECTED_ALERTS)
    alerts = {(a["labels"]["alertname"], a["labels"].get("identity")): a for a in fleet.alerts()}
    exhausted = alerts[("PullwatchPullsExhausted", "ci-bot")]
    assert exhausted["labels"]["severity"] == "critical"
    assert exhausted["annotations"]["summary"].endswith("Docker Hub pulls exhausted for ci-bot")
    rules = [rule for group in fleet.rule_groups() for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alerting_rules()}
    assert all(rule["health"] == "ok" and not rule.get("lastError") for rule in rules), rules


def test_dashboard_queries_evaluate_on_the_fleet(fleet: PrometheusServer) -> None:
    values = {"$__rate_interval": "1m", "$node": ".*", "$identity": ".*"}
    for expr in dashboard_expressions(load_dashboard()):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        fleet.wait_for(expr, bool, timeout=10)  # parses, evaluates, and finds data


def test_ci_installs_prometheus_and_runs_promtool() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    install = script[script.index("apt-get install") :].split(">/dev/null")[0]
    assert re.search(r"\bprometheus\b", install)  # Debian's package has promtool too
    assert "promtool check rules" in script and "promtool test rules" in script
