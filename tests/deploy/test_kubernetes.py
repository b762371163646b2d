"""What the Kubernetes manifests promise, read from `kustomize build` of the base and the
production overlay (schema validity itself is `make deploy-check`'s)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT

Resources = list[dict[str, Any]]
SERVICES = ("registration", "authorize", "tenant-settings")


def of_kind(resources: Resources, kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture(params=["base", "production"])
def build(request: pytest.FixtureRequest, k8s_builds: dict[str, Resources]) -> Resources:
    return k8s_builds[request.param]


def test_the_old_single_file_is_gone_and_the_layout_is_kustomize() -> None:
    assert not (ROOT / "deploy/k8s/services.yaml").exists()
    for folder in ("deploy/k8s/base", "deploy/k8s/overlays/production"):
        assert (ROOT / folder / "kustomization.yaml").exists()
    assert (ROOT / "deploy/k8s/README.md").exists()


def test_every_service_and_the_gateway_are_deployed_with_a_service(build: Resources) -> None:
    deployments = of_kind(build, "Deployment")
    services = of_kind(build, "Service")
    assert set(deployments) == {*SERVICES, "gateway"}
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = services[name]["spec"]["selector"]
        assert selector.items() <= labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_services_have_readiness_liveness_and_startup_probes(build: Resources) -> None:
    for name in SERVICES:
        [container] = pod_spec(of_kind(build, "Deployment")[name])["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["args"] == [name]
    [gateway] = pod_spec(of_kind(build, "Deployment")["gateway"])["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_every_container_is_locked_down_and_sized(build: Resources) -> None:
    for name, deployment in of_kind(build, "Deployment").items():
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
            # A read-only root filesystem, and /tmp writable for what needs it.
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name


def test_configuration_and_secrets_are_referenced(build: Resources) -> None:
    config_maps = {name.rsplit("-", 1)[0] for name in of_kind(build, "ConfigMap")}
    assert config_maps == {"oidc-config", "gateway"}
    for name in SERVICES:
        [container] = pod_spec(of_kind(build, "Deployment")[name])["containers"]
        sources = container["envFrom"]
        [config_ref] = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
        assert config_ref in of_kind(build, "ConfigMap"), "a generated, hashed name"
        assert [s["secretRef"]["name"] for s in sources if "secretRef" in s] == ["oidc-secrets"]
    readme = (ROOT / "deploy/k8s/README.md").read_text()
    for key in ("MONGODB_URL", "REDIS_URL", "RABBITMQ_URL", "KEY_ENCRYPTION_KEY", "oidc-secrets"):
        assert key in readme


def test_registration_scales_and_survives_disruptions(build: Resources) -> None:
    [hpa] = of_kind(build, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "registration",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = of_kind(build, "PodDisruptionBudget")["registration"]
    registration = of_kind(build, "Deployment")["registration"]
    pod_labels = registration["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1 < hpa["spec"]["minReplicas"]
    [registration_container] = pod_spec(registration)["containers"]
    assert "cpu" in registration_container["resources"]["requests"], "the HPA's denominator"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def test_only_the_gateway_reaches_the_services(build: Resources) -> None:
    policies = list(of_kind(build, "NetworkPolicy").values())
    deployments = of_kind(build, "Deployment")
    labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    for name in SERVICES:
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], labels[name])]
        # Denied by default (in and out), then opened rule by rule.
        assert any(
            p["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in p["spec"]
            for p in selecting
        ), name
        sources = [
            source
            for policy in selecting
            for rule in policy["spec"].get("ingress", [])
            for source in rule.get("from", [{}])
        ]
        pods = [s["podSelector"] for s in sources if "podSelector" in s]
        assert pods and all(_selects(p, labels["gateway"]) for p in pods), name
        assert not any(_selects(p, labels[other]) for p in pods for other in SERVICES)
        # Anything else is Prometheus' namespace, never "from anywhere".
        others = [s for s in sources if "podSelector" not in s]
        assert others == [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}], name  # fmt: skip
        egress_ports = {
            port["port"]
            for policy in selecting
            for rule in policy["spec"].get("egress", [])
            for port in rule.get("ports", [])
        }
        assert {53, 27017, 6379, 5672} <= egress_ports, name
    gateway_policies = [
        p for p in policies if _selects(p["spec"]["podSelector"], labels["gateway"])
    ]
    gateway_egress = [
        rule for p in gateway_policies for rule in p["spec"].get("egress", []) if "to" in rule
    ]
    assert all(
        _selects(to["podSelector"], labels["registration"])
        for r in gateway_egress
        for to in r["to"]
    )


def test_the_gateway_is_fed_by_the_rendered_config_map(build: Resources) -> None:
    gateway = of_kind(build, "Deployment")["gateway"]
    [container] = pod_spec(gateway)["containers"]
    assert container["command"] == ["/bin/sh", "/etc/nginx/gateway/start.sh"]
    volumes = {v["name"]: v for v in pod_spec(gateway)["volumes"]}
    config_map = of_kind(build, "ConfigMap")[volumes["config"]["configMap"]["name"]]
    assert "resolver @CLUSTER_DNS@" in config_map["data"]["nginx.conf"]
    assert container["image"].startswith("nginx:")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-gateway"]["image"] == container["image"], "one nginx version everywhere"


def test_production_terminates_tls_at_a_load_balancer_keeping_client_addresses(
    k8s_builds: dict[str, Resources],
) -> None:
    production = k8s_builds["production"]
    assert {r["metadata"].get("namespace") for r in production if r["kind"] != "Namespace"} == {
        "dcr-oidc"
    }
    gateway = of_kind(production, "Deployment")["gateway"]
    [container] = pod_spec(gateway)["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080,
        "https": 8443,
        "health": 8081,
    }
    volumes = {v["name"]: v for v in pod_spec(gateway)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "gateway-tls"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tls"] == "/etc/nginx/tls"
    config = of_kind(production, "ConfigMap")[volumes["config"]["configMap"]["name"]]
    assert "Strict-Transport-Security" in config["data"]["nginx.conf"]
    assert config["data"]["start.sh"] == (ROOT / "deploy/k8s/base/gateway/start.sh").read_text()
    service = of_kind(production, "Service")["gateway"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert {p["port"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        80: "http",
        443: "https",
    }
    base_images = {
        c["image"]
        for d in of_kind(k8s_builds["base"], "Deployment").values()
        for c in pod_spec(d)["containers"]
    }
    assert "dcr-oidc:0.1.0" in base_images
