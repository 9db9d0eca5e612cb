"""The Kubernetes manifests (deploy/k8s), rendered by kustomize and checked offline: every
object valid in strict mode for a stated Kubernetes version, workloads hardened and probed
on the services' real health routes, and the network paths exactly the intended ones."""

from __future__ import annotations

import copy
import shutil
import subprocess
from functools import cache

import kubernetes_validate
import pytest
import yaml

from harness import ROOT

OVERLAYS = ("cpu", "gpu")
KUBERNETES_VERSION = "1.32.0"
"""The version the manifests are validated for (and need at least: native `sleep` preStop)."""
WORKLOADS = ("Deployment", "StatefulSet")
# (target app, its port) -> the apps allowed in ("*": anywhere)
INTENDED = {
    ("web-api", 5000): {"*"},
    ("web-api", 5001): {"*"},  # gRPC
    ("model-api", 8000): {"web-api"},
    ("db-api", 6379): {"model-api", "web-api"},
}


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(objects: tuple[dict, ...], *kinds: str) -> list[dict]:
    return [o for o in objects if o["kind"] in kinds]


def app(obj: dict) -> str:
    return obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_in_strict_mode(overlay: str) -> None:
    objects = rendered(overlay)
    assert {o["kind"] for o in objects} >= {
        "Namespace",
        "Deployment",
        "StatefulSet",
        "Service",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "PersistentVolumeClaim",
    }
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    deployment = copy.deepcopy(of_kind(rendered("cpu"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_probed_bounded_and_unprivileged(overlay: str) -> None:
    workloads = of_kind(rendered(overlay), *WORKLOADS)
    assert {app(w) for w in workloads} == {"web-api", "model-api", "db-api"}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
        if app(workload) != "db-api":
            # The services drain in-flight requests for 30 s after SIGTERM.
            assert pod["terminationGracePeriodSeconds"] >= 35
            assert "startupProbe" in pod["containers"][0]
            assert workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_http_probes_ask_the_services_real_health_routes() -> None:
    from model_api.main import create_app as model_api_app
    from web_api.gateway.main import create_app as web_api_app

    def get_paths(app) -> set[str]:
        schema = app.openapi()["paths"]
        return {path for path, methods in schema.items() if "get" in methods}

    routes = {"model-api": get_paths(model_api_app()), "web-api": get_paths(web_api_app())}
    for workload in of_kind(rendered("cpu"), "Deployment"):
        container = workload["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] in routes[app(workload)], probe


def allowed_paths(objects: tuple[dict, ...]) -> dict[tuple[str, int], set[str]]:
    """What the NetworkPolicies let in, per (app, port): the apps allowed ("*": anyone)."""
    policies = of_kind(objects, "NetworkPolicy")
    deny_all = [
        p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert deny_all and "Ingress" in deny_all[0]["spec"]["policyTypes"], "no default deny"
    ports = {
        app(w): {
            p["containerPort"]
            for c in w["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for w in of_kind(objects, *WORKLOADS)
    }
    allowed: dict[tuple[str, int], set[str]] = {}
    for policy in policies:
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        if target is None:
            assert not policy["spec"].get("ingress"), f"{policy['metadata']['name']} opens all pods"
            continue
        for rule in policy["spec"].get("ingress", []):
            rule_ports = [p["port"] for p in rule.get("ports", [])] or sorted(ports[target])
            sources = set()
            for peer in rule.get("from", [{}]):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                if set(peer) == {"podSelector"} and "app.kubernetes.io/name" in labels:
                    sources.add(labels["app.kubernetes.io/name"])
                else:  # no from, an IP block, a namespace or an empty selector: anyone
                    sources.add("*")
            for port in rule_ports:
                allowed.setdefault((target, port), set()).update(sources)
    return allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_intended_paths(overlay: str) -> None:
    assert allowed_paths(rendered(overlay)) == INTENDED


@pytest.mark.parametrize(
    ("policy", "widen"),
    [
        (
            "db-api-from-model-api-and-web-api",
            lambda rule: rule["from"].append({"podSelector": {}}),
        ),
        ("db-api-from-model-api-and-web-api", lambda rule: rule.pop("from")),
        (
            "model-api-from-web-api",
            lambda rule: rule["from"].append(
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "db-api"}}}
            ),
        ),
        ("model-api-from-web-api", lambda rule: rule["from"].append({"namespaceSelector": {}})),
        ("web-api-from-anywhere", lambda rule: rule["ports"].append({"port": 9999})),
    ],
)
def test_a_widened_policy_is_caught(policy: str, widen) -> None:
    objects = copy.deepcopy(list(rendered("cpu")))
    (target,) = [
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == policy
    ]
    widen(target["spec"]["ingress"][0])
    assert allowed_paths(tuple(objects)) != INTENDED


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_web_api_is_exposed(overlay: str) -> None:
    objects = rendered(overlay)
    outward = {
        s["metadata"]["name"]
        for s in of_kind(objects, "Service")
        if s["spec"].get("type", "ClusterIP") in ("NodePort", "LoadBalancer")
    }
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            outward |= {p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert outward == {"web-api"}
    assert all(
        "hostPort" not in p
        for w in of_kind(objects, *WORKLOADS)
        for c in w["spec"]["template"]["spec"]["containers"]
        for p in c["ports"]
    )


def test_the_gpu_overlay_asks_for_a_gpu_node() -> None:
    (model_api,) = [w for w in of_kind(rendered("gpu"), "Deployment") if app(w) == "model-api"]
    pod = model_api["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "mlserve/model_api:gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "MLSERVE_EXECUTION_PROVIDER", "value": "cuda"} in container["env"]
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    (cpu_model_api,) = [w for w in of_kind(rendered("cpu"), "Deployment") if app(w) == "model-api"]
    assert (
        "nvidia.com/gpu"
        not in cpu_model_api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    )


def test_redis_keeps_its_data_and_its_password_out_of_the_manifests() -> None:
    (redis,) = of_kind(rendered("cpu"), "StatefulSet")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    password = next(e for e in container["env"] if e["name"] == "REDIS_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == "mlserve-redis"
    assert container["image"].startswith("mlserve/db_api")  # db_api's redis.conf, baked in
    assert not of_kind(rendered("cpu"), "Secret")  # created by the operator, never committed
