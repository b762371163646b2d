"""The operators' view: the dashboard queries only metrics the services really export, and
the scrape configurations find every replica of the three services."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import ROOT

OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "dcr-oidc.json"
SERVICES = ("registration", "authorize", "tenant-settings")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "le"}  # fmt: skip
METRIC_CLASSES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
}


def exported_series() -> set[str]:
    """The series names the code defines with prometheus_client (Prometheus adds `up`)."""
    names = {"up"}
    for folder in (ROOT / "shared" / "src", ROOT / "services"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                called = node.func.attr if isinstance(node.func, ast.Attribute) else None
                called = node.func.id if isinstance(node.func, ast.Name) else called
                first = node.args[0]
                if called in METRIC_CLASSES and isinstance(first, ast.Constant):
                    base = str(first.value).removesuffix("_total")
                    names |= {base + suffix for suffix in METRIC_CLASSES[called]}
    return names


def metrics_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: identifiers that are not functions, label
    names, grouping labels or keywords."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        name = match.group()
        if following.startswith("(") or name in PROMQL_WORDS or name.isdigit():
            continue
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_the_dashboard_reads_only_metrics_the_code_exports() -> None:
    exported = exported_series()
    used = set().union(*(metrics_in(expr) for expr in expressions()))
    assert used - exported == set()
    # What issue 11 asks the operators to see, each read by some panel.
    for needed in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "registration_gate_decisions_total",
        "registration_gate_events_live",
        "registration_settings_newest_change_timestamp_seconds",
        "registration_reaper_clients_reaped_total",
        "tenant_settings_outbox_backlog",
    ):
        assert needed in used, needed


def test_the_metric_reader_sees_through_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket"
        '{route!~"/healthz|/readyz"}[$__rate_interval])))'
    )
    assert metrics_in(expr) == {"http_request_duration_seconds_bucket"}
    assert metrics_in("max(a_b) - a_b") == {"a_b"}


def test_the_dashboard_is_well_formed() -> None:
    data = dashboard()
    assert data["uid"] == "dcr-oidc"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    [variable] = data["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and panel["description"] is not None, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    for expr in expressions():  # balanced, so Grafana and Prometheus can parse them
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), expr


def test_compose_prometheus_scrapes_every_replica_of_every_service() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, job in jobs.items():
        [sd] = job["dns_sd_configs"]
        assert sd["names"] == [name] and sd["type"] == "A" and sd["port"] == 8000
        assert name in compose["services"]
    prometheus = compose["services"]["prometheus"]
    grafana = compose["services"]["grafana"]
    for service in (prometheus, grafana):
        assert service["profiles"] == ["observability"]
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_the_service_monitor_selects_the_three_services(
    k8s_builds: dict[str, list[dict[str, Any]]],
) -> None:
    monitor = yaml.safe_load((OBSERVABILITY / "servicemonitor.yaml").read_text())
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    selector = monitor["spec"]["selector"]["matchLabels"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    selected = []
    for resource in k8s_builds["base"]:
        if resource["kind"] != "Service":
            continue
        if selector.items() <= resource["metadata"]["labels"].items():
            selected.append(resource["metadata"]["name"])
            assert endpoint["port"] in {p["name"] for p in resource["spec"]["ports"]}
    assert sorted(selected) == sorted(SERVICES)


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provisioning = OBSERVABILITY / "grafana" / "provisioning"
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["uid"] == dashboard()["templating"]["list"][0]["current"]["value"]
    [provider] = yaml.safe_load((provisioning / "dashboards/dcr-oidc.yml").read_text())["providers"]
    assert Path(provider["options"]["path"]) == Path("/var/lib/grafana/dashboards")
