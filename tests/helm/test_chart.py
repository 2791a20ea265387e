"""The Helm chart renders to valid Kubernetes objects that wire the six services up as designed.

No helm binary is reachable here, so tests/helm/render.py renders the chart (the subset of Go
templates the chart uses, failing on anything else) and kubernetes-validate checks every object
against the Kubernetes OpenAPI schemas in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE.parents[1] / "deploy" / "helm" / "cogplane"
KUBERNETES_VERSION = "1.31"


def _load_renderer() -> ModuleType:
    # Loaded by path so the test works under any pytest import mode.
    spec = importlib.util.spec_from_file_location("cogplane_helm_render", HERE / "render.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = _load_renderer()

# service -> (module, port, name of its port variable)
SERVICES = {
    "api-gateway": ("cogplane.gateway", 8700, "COGPLANE_GATEWAY_PORT"),
    "registry": ("cogplane.registry", 8701, "COGPLANE_REGISTRY_PORT"),
    "scheduler": ("cogplane.scheduler", 8702, "COGPLANE_SCHEDULER_PORT"),
    "autoscaler": ("cogplane.autoscaler", 8703, "COGPLANE_AUTOSCALER_PORT"),
    "billing": ("cogplane.billing", 8704, "COGPLANE_BILLING_PORT"),
    "runner": ("cogplane.runner", 8705, "COGPLANE_RUNNER_PORT"),
}

# The one value the chart needs beyond values.yaml: the gateway's files signing key (without it
# the chart fails, see test_bare_defaults_refuse_to_ship_the_development_signing_key).
SIGNING_KEY = "test-files-signing-key-0123456789abcdef"
REQUIRED: dict[str, Any] = {"gateway": {"filesSigningKey": {"value": SIGNING_KEY}}}
DEFAULT_REPLICAS = {name: 2 if name == "autoscaler" else 1 for name in SERVICES}

OVERRIDES: dict[str, Any] = {
    # The scheduler must stay at one replica (the chart refuses more).
    "services": {name: {"replicas": 1 if name == "scheduler" else 3} for name in SERVICES},
    "postgresql": {
        "enabled": True,
        "existingSecret": {"name": "cogplane-db", "key": "url"},
        "auth": {"password": "unused-with-existing-secret"},
    },
    "nats": {"enabled": True},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "cogplane.example.com",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "100m"},
        "tls": [{"hosts": ["cogplane.example.com"], "secretName": "cogplane-tls"}],
    },
    "telemetry": {"exporter": "otlp", "otlpEndpoint": "http://otel-collector:4317"},
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "image": {"tag": "1.2.3"},
    "gateway": {
        "filesSigningKey": {"existingSecret": {"name": "cogplane-gateway-keys", "key": "files"}}
    },
    "runner": {"fileOutputs": "url"},
}
OVERRIDES["services"]["runner"]["extraEnv"] = [{"name": "COGPLANE_RUNNER_EXTRA", "value": "1"}]
OVERRIDE_REPLICAS = {name: OVERRIDES["services"][name]["replicas"] for name in SERVICES}

# "default": values.yaml plus the required signing key; "override": most values changed.
CASES = {"default": REQUIRED, "override": OVERRIDES}
case_names = pytest.mark.parametrize("case", sorted(CASES))

SHARED_ENV = {
    "COGPLANE_DATABASE_URL",
    "COGPLANE_NATS_URL",
    "COGPLANE_TELEMETRY_EXPORTER",
    "COGPLANE_MIGRATE_ON_START",
    "COGPLANE_GATEWAY_PUBLIC_URL",
}


@functools.cache
def _rendered(case: str) -> Any:
    return render.render_chart(CHART, copy.deepcopy(CASES[case]))


@functools.cache
def _objects(case: str) -> tuple[dict[str, Any], ...]:
    return tuple(obj for _, obj in _rendered(case).documents())


def _of_kind(case: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in _objects(case) if o["kind"] == kind}


def _one(case: str, kind: str, name: str) -> dict[str, Any]:
    return _of_kind(case, kind)[name]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _deployments(case: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for service in SERVICES:
        yield service, _one(case, "Deployment", f"cogplane-{service}")


# --- schema validation -------------------------------------------------------------------------


@case_names
def test_every_object_validates_against_the_kubernetes_schemas(case: str) -> None:
    failures = []
    for path, obj in _rendered(case).documents():
        try:
            # SchemaNotFoundError (an unknown kind/apiVersion) propagates and fails the test too.
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            failures.append(
                f"{path} {obj['kind']}/{obj['metadata']['name']} {where}: {error.message}"
            )
    assert not failures, "\n".join(failures)


@case_names
def test_renders_exactly_the_expected_objects(case: str) -> None:
    kinds: dict[str, int] = {}
    for obj in _objects(case):
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    expected = {
        "Deployment": 6,
        "Service": 6,
        "PodDisruptionBudget": 6,
        "ConfigMap": 1,
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
    }
    if case == "default":
        expected["Secret"] = 2  # database URL and signing key; the override uses existing Secrets
    else:
        expected["Ingress"] = 1
    assert kinds == expected


def test_the_validator_rejects_a_broken_object() -> None:
    deployment = copy.deepcopy(_one("default", "Deployment", "cogplane-api-gateway"))
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = "8700"
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    assert list(caught.value.path)[-1] == "containerPort"

    misspelled = copy.deepcopy(_one("default", "Service", "cogplane-api-gateway"))
    misspelled["spec"]["selectors"] = misspelled["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelled, KUBERNETES_VERSION, strict=True)


# --- what the services get ---------------------------------------------------------------------


@case_names
def test_one_deployment_service_and_pdb_per_service(case: str) -> None:
    expected = {f"cogplane-{service}" for service in SERVICES}
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert set(_of_kind(case, kind)) == expected, kind


@case_names
def test_each_container_runs_its_module_from_its_image_on_its_port(case: str) -> None:
    tag = "1.2.3" if case == "override" else "0.1.0"
    for service, deployment in _deployments(case):
        module, port, _ = SERVICES[service]
        container = _container(deployment)
        assert container["image"] == f"cogplane/{service}:{tag}"
        assert container["command"] == ["python", "-m", module]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        replicas = (OVERRIDE_REPLICAS if case == "override" else DEFAULT_REPLICAS)[service]
        assert deployment["spec"]["replicas"] == replicas


@case_names
def test_probes_hit_livez_and_readyz_on_the_service_port(case: str) -> None:
    for service, deployment in _deployments(case):
        container = _container(deployment)
        named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        expected = {
            "startupProbe": "/livez",
            "livenessProbe": "/livez",
            "readinessProbe": "/readyz",
        }
        for probe, path in expected.items():
            http_get = container[probe]["httpGet"]
            assert http_get["path"] == path, (service, probe)
            port = named_ports.get(http_get["port"], http_get["port"])
            assert port == SERVICES[service][1], (service, probe)


@case_names
def test_every_container_has_resource_requests_and_limits(case: str) -> None:
    for service, deployment in _deployments(case):
        resources = _container(deployment)["resources"]
        for bound in ("requests", "limits"):
            assert set(resources[bound]) >= {"cpu", "memory"}, (service, bound)


@case_names
def test_pods_run_as_non_root_and_get_a_grace_period(case: str) -> None:
    for service, deployment in _deployments(case):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, service
        assert pod["terminationGracePeriodSeconds"] == 30, service
        assert _container(deployment)["securityContext"]["allowPrivilegeEscalation"] is False


def _effective_env(case: str, container: dict[str, Any]) -> dict[str, Any]:
    """Env var name -> value or valueFrom, including what envFrom brings from the ConfigMap."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        config_map = _one(case, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    for entry in container["env"]:
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


@case_names
def test_every_service_gets_its_environment(case: str) -> None:
    for service, deployment in _deployments(case):
        env = _effective_env(case, _container(deployment))
        port_variable = SERVICES[service][2]
        assert SHARED_ENV | {port_variable} <= set(env), service
        assert env[port_variable] == str(SERVICES[service][1])
        if case == "override":
            assert env["COGPLANE_TELEMETRY_OTLP_ENDPOINT"] == "http://otel-collector:4317"
            assert env["COGPLANE_TELEMETRY_EXPORTER"] == "otlp"
        else:
            assert env["COGPLANE_TELEMETRY_EXPORTER"] == "none"
    runner = _effective_env(case, _container(_one(case, "Deployment", "cogplane-runner")))
    assert runner["COGPLANE_RUNNER_BACKEND"] == "kubernetes"
    assert runner["COGPLANE_RUNNER_FILE_OUTPUTS"] == ("url" if case == "override" else "auto")


@case_names
def test_the_database_url_comes_from_a_secret(case: str) -> None:
    for service, deployment in _deployments(case):
        reference = _effective_env(case, _container(deployment))["COGPLANE_DATABASE_URL"]
        secret_ref = reference["secretKeyRef"]
        if case == "override":
            assert secret_ref == {"name": "cogplane-db", "key": "url"}, service
        else:
            secret = _one(case, "Secret", secret_ref["name"])
            assert secret["stringData"][secret_ref["key"]].startswith("postgresql+asyncpg://")


def test_external_urls_and_in_cluster_dependencies() -> None:
    default_config = _one("default", "ConfigMap", "cogplane-config")["data"]
    assert default_config["COGPLANE_NATS_URL"] == "nats://cogplane-nats:4222"
    assert (
        default_config["COGPLANE_GATEWAY_PUBLIC_URL"]
        == "http://cogplane-api-gateway.cogplane.svc:8700"
    )
    assert "COGPLANE_TELEMETRY_OTLP_ENDPOINT" not in default_config  # empty would fail URL parsing

    bundled = render.render_chart(
        CHART,
        {
            **REQUIRED,
            "nats": {"enabled": True},
            "postgresql": {"enabled": True, "auth": {"password": "s3cret"}},
        },
        release_name="prod",
    )
    objects = {(o["kind"], o["metadata"]["name"]): o for _, o in bundled.documents()}
    assert (
        objects["ConfigMap", "prod-config"]["data"]["COGPLANE_NATS_URL"] == "nats://prod-nats:4222"
    )
    url = objects["Secret", "prod-database"]["stringData"]["database-url"]
    assert url == "postgresql+asyncpg://cogplane:s3cret@prod-postgresql:5432/cogplane"


def test_chart_declares_nats_and_postgresql_as_optional_dependencies() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    dependencies = {d["name"]: d for d in chart["dependencies"]}
    assert dependencies["nats"]["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert dependencies["nats"]["condition"] == "nats.enabled"
    assert dependencies["postgresql"]["repository"].startswith(
        "oci://registry-1.docker.io/bitnamicharts"
    )
    assert dependencies["postgresql"]["condition"] == "postgresql.enabled"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["nats"]["enabled"] is False
    assert values["postgresql"]["enabled"] is False
    assert values["nats"]["config"]["jetstream"]["enabled"] is True
    assert set(values["services"]) == set(SERVICES)


@case_names
def test_disruption_budgets_never_block_a_single_replica(case: str) -> None:
    replicas = OVERRIDE_REPLICAS if case == "override" else DEFAULT_REPLICAS
    for service in SERVICES:
        spec = _one(case, "PodDisruptionBudget", f"cogplane-{service}")["spec"]
        if replicas[service] > 1:
            assert spec == {"minAvailable": 1, "selector": spec["selector"]}, service
        else:
            assert spec == {"maxUnavailable": 1, "selector": spec["selector"]}, service


def test_the_autoscaler_runs_two_replicas_behind_a_budget_and_the_scheduler_one() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["services"]["autoscaler"]["replicas"] == 2
    assert values["services"]["scheduler"]["replicas"] == 1
    autoscaler = _one("default", "Deployment", "cogplane-autoscaler")
    assert autoscaler["spec"]["replicas"] == 2
    budget = _one("default", "PodDisruptionBudget", "cogplane-autoscaler")["spec"]
    assert budget["minAvailable"] == 1  # a node drain evicts one replica at a time
    pods = autoscaler["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= pods.items()
    assert _one("default", "Deployment", "cogplane-scheduler")["spec"]["replicas"] == 1


@pytest.mark.parametrize("replicas", [2, 3])
def test_more_than_one_scheduler_replica_is_refused(replicas: int) -> None:
    overrides = {**REQUIRED, "services": {"scheduler": {"replicas": replicas}}}
    with pytest.raises(render.RenderError, match=r"services\.scheduler\.replicas must be 1"):
        render.render_chart(CHART, overrides)


# --- the gateway's files signing key -----------------------------------------------------------


def _signing_key_reference(chart: Any) -> dict[str, Any]:
    deployments = {
        o["metadata"]["name"]: o for _, o in chart.documents() if o["kind"] == "Deployment"
    }
    references = {}
    for name, deployment in deployments.items():
        for entry in _container(deployment)["env"]:
            if entry["name"] == "COGPLANE_GATEWAY_FILES_SIGNING_KEY":
                references[name] = entry
    # Only the gateway signs links; any other service having it would just widen its exposure.
    assert list(references) == ["cogplane-api-gateway"]
    entry = references["cogplane-api-gateway"]
    assert set(entry) == {"name", "valueFrom"}  # never a literal value in the Pod spec
    return dict(entry["valueFrom"]["secretKeyRef"])


def _secrets(chart: Any) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for _, o in chart.documents() if o["kind"] == "Secret"}


def test_the_signing_key_comes_from_a_value_in_the_charts_secret() -> None:
    chart = _rendered("default")
    reference = _signing_key_reference(chart)
    assert reference == {"name": "cogplane-gateway", "key": "files-signing-key"}
    secret = _secrets(chart)["cogplane-gateway"]
    assert secret["type"] == "Opaque"
    assert secret["stringData"] == {"files-signing-key": SIGNING_KEY}


def test_the_signing_key_comes_from_an_existing_secret() -> None:
    chart = _rendered("override")
    assert _signing_key_reference(chart) == {"name": "cogplane-gateway-keys", "key": "files"}
    assert _secrets(chart) == {}  # the chart creates no Secret of its own

    # An existing Secret wins over a value, which then is not written anywhere.
    both = render.render_chart(
        CHART,
        {
            "gateway": {
                "filesSigningKey": {"existingSecret": {"name": "keys"}, "value": "ignored-value"}
            }
        },
    )
    assert _signing_key_reference(both) == {"name": "keys", "key": "files-signing-key"}
    assert set(_secrets(both)) == {"cogplane-database"}
    assert "ignored-value" not in "".join(both.manifests.values())


def test_every_gateway_replica_reads_the_same_key() -> None:
    overrides = {**REQUIRED, "services": {"api-gateway": {"replicas": 4}}}
    chart = render.render_chart(CHART, overrides)
    gateway = {o["metadata"]["name"]: o for _, o in chart.documents() if o["kind"] == "Deployment"}[
        "cogplane-api-gateway"
    ]
    assert gateway["spec"]["replicas"] == 4
    # One Deployment, one Pod template, one Secret reference: the replicas cannot disagree.
    assert _signing_key_reference(chart) == {"name": "cogplane-gateway", "key": "files-signing-key"}


def test_changing_the_signing_key_rolls_the_pods() -> None:
    def checksum(chart: Any) -> str:
        for _, obj in chart.documents():
            if obj["metadata"]["name"] == "cogplane-api-gateway" and obj["kind"] == "Deployment":
                return str(obj["spec"]["template"]["metadata"]["annotations"]["checksum/secret"])
        raise AssertionError("no gateway Deployment")

    other = {"gateway": {"filesSigningKey": {"value": "another-files-signing-key"}}}
    assert checksum(_rendered("default")) != checksum(render.render_chart(CHART, other))


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # values.yaml as it is
        {"gateway": {"filesSigningKey": {"value": "", "existingSecret": {"name": ""}}}},
    ],
)
def test_bare_defaults_refuse_to_ship_the_development_signing_key(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(render.RenderError, match=r"gateway\.filesSigningKey is required") as caught:
        render.render_chart(CHART, overrides)
    assert "public development key" in str(caught.value)


def test_the_published_development_key_is_refused_as_a_value() -> None:
    gateway_config = (
        HERE.parents[1] / "services/api-gateway/src/cogplane/gateway/config.py"
    ).read_text()
    development_key = "cogplane-dev-only-files-signing-key"
    assert f'DEV_FILES_SIGNING_KEY = "{development_key}"' in gateway_config
    overrides = {"gateway": {"filesSigningKey": {"value": development_key}}}
    with pytest.raises(render.RenderError, match="public development key"):
        render.render_chart(CHART, overrides)


@case_names
def test_services_and_budgets_select_exactly_their_own_pods(case: str) -> None:
    pods = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for name, d in _of_kind(case, "Deployment").items()
    }
    for service in SERVICES:
        name = f"cogplane-{service}"
        deployment = _one(case, "Deployment", name)
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pods[name].items()
        for selector in (
            _one(case, "Service", name)["spec"]["selector"],
            _one(case, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"],
        ):
            assert [pod for pod, labels in pods.items() if selector.items() <= labels.items()] == [
                name
            ]
        port = _one(case, "Service", name)["spec"]["ports"][0]
        assert (port["port"], port["targetPort"]) == (SERVICES[service][1], "http")


@case_names
def test_runner_may_manage_pods_and_no_other_service_gets_a_token(case: str) -> None:
    account = _one(case, "ServiceAccount", "cogplane-runner")
    role = _one(case, "Role", "cogplane-runner")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        }
    ]
    binding = _one(case, "RoleBinding", "cogplane-runner")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "cogplane-runner",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "cogplane"}
    ]
    for service, deployment in _deployments(case):
        pod = deployment["spec"]["template"]["spec"]
        if service == "runner":
            assert pod["serviceAccountName"] == "cogplane-runner"
        else:
            assert "serviceAccountName" not in pod
            assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("mode", ["auto", "url", "data_url"])
def test_runner_file_outputs_reach_the_runner_only(mode: str) -> None:
    chart = render.render_chart(CHART, {**REQUIRED, "runner": {"fileOutputs": mode}})
    for _, obj in chart.documents():
        if obj["kind"] != "Deployment":
            continue
        env = {e["name"]: e.get("value") for e in _container(obj)["env"]}
        if obj["metadata"]["name"] == "cogplane-runner":
            assert env["COGPLANE_RUNNER_FILE_OUTPUTS"] == mode
        else:
            assert "COGPLANE_RUNNER_FILE_OUTPUTS" not in env


def test_ingress_routes_the_public_host_to_the_gateway() -> None:
    ingress = _one("override", "Ingress", "cogplane-api-gateway")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "cogplane.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "cogplane-api-gateway", "port": {"name": "http"}}
    config = _one("override", "ConfigMap", "cogplane-config")["data"]
    assert config["COGPLANE_GATEWAY_PUBLIC_URL"] == "https://cogplane.example.com"


@case_names
def test_extra_env_and_pull_secrets_reach_the_pods(case: str) -> None:
    runner = _one(case, "Deployment", "cogplane-runner")
    names = [e["name"] for e in _container(runner)["env"]]
    assert ("COGPLANE_RUNNER_EXTRA" in names) == (case == "override")
    pull_secrets = runner["spec"]["template"]["spec"].get("imagePullSecrets")
    assert pull_secrets == ([{"name": "registry-credentials"}] if case == "override" else None)


def _empty_values(node: Any, path: str) -> Iterator[str]:
    if node is None or node == "":
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _empty_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _empty_values(value, f"{path}[{index}]")


@case_names
def test_no_template_renders_an_empty_value(case: str) -> None:
    empty = []
    for obj in _objects(case):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for path in _empty_values(obj, where):
            if not (
                obj["kind"] == "Role" and path.endswith(".apiGroups[0]")
            ):  # "" is the core group
                empty.append(path)
    assert not empty, empty
    for text in [*_rendered(case).manifests.values(), _rendered(case).notes]:
        assert "<no value>" not in text
        assert "{{" not in text


@case_names
def test_object_names_are_dns_labels(case: str) -> None:
    import re

    for obj in _objects(case):
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", obj["metadata"]["name"]), obj[
            "metadata"
        ]["name"]


@case_names
def test_notes_render(case: str) -> None:
    notes = _rendered(case).notes
    assert "cogplane-api-gateway" in notes
    secret = "cogplane-gateway-keys" if case == "override" else "cogplane-gateway"
    assert f"signed with the key in Secret {secret}" in notes
    assert ("port-forward" in notes) == (case == "default")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"postgresql": {"url": ""}}, "postgresql.url"),
        ({"postgresql": {"enabled": True}}, "postgresql.auth.password is required"),
        ({"nats": {"url": ""}}, "nats.url is required"),
        ({"ingress": {"enabled": True}}, "ingress.host is required"),
        ({"telemetry": {"exporter": "otlp"}}, "telemetry.otlpEndpoint is required"),
        ({"telemetry": {"exporter": "jaeger"}}, "telemetry.exporter must be one of"),
        ({"runner": {"fileOutputs": "inline"}}, "runner.fileOutputs must be one of"),
        (
            {"gateway": {"filesSigningKey": {"existingSecret": {"name": "keys", "key": ""}}}},
            "gateway.filesSigningKey.existingSecret.key is required",
        ),
    ],
)
def test_missing_or_invalid_settings_fail_the_render(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(render.RenderError, match=message):
        render.render_chart(CHART, render.merge_values(REQUIRED, overrides))


# --- the renderer itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ with .a }}x{{ end }}",
        '{{ template "x" . }}',
        "{{ if .a }}{{ .a | b64enc }}{{ end }}",  # unknown function, even in a branch not taken
        "{{ range $k, $v := .m }}{{ else }}none{{ end }}",
        "{{ $x := .a }}",
        "{{ `raw` }}",
        '{{ (index .m "k").field }}',
        "{{ if .a }}unclosed",
        "{{ .a }",
        "{{ /* a comment must start at the delimiter */ }}",
        '{{ define "inner" }}{{ define "nested" }}{{ end }}{{ end }}',
    ],
)
def test_renderer_fails_loudly_on_unsupported_syntax(source: str) -> None:
    with pytest.raises(render.UnsupportedSyntax):
        render.render_string(source, {"a": True, "m": {"k": {"field": 1}}})


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("a  {{- .x -}}  \n b", {"x": 1.0}, "a1b"),
        ("{{/* gone */}}x{{- /* gone */ -}} y", {}, "xy"),
        (
            "{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}",
            {"m": {"b": 2.0, "a": "x"}},
            "a=x;b=2;",
        ),
        (
            "{{ .big }} {{ .port }} {{ .half }}",
            {"big": 1e6, "port": 8700.0, "half": 0.5},
            "1e+06 8700 0.5",
        ),
        (
            "{{ if gt (int .n) 1 }}many{{ else if eq (int .n) 1 }}one{{ else }}none{{ end }}",
            {"n": 3.0},
            "many",
        ),
        (
            "{{ .s | quote }} {{ .n | quote }} {{ .missing | quote }}",
            {"s": 'a"b\n', "n": 2.0, "missing": None},
            '"a\\"b\\n" "2" ',
        ),
        ('{{ .e | default "d" }} {{ default "d" .f }}', {"e": "", "f": "given"}, "d given"),
        (
            "x:{{ toYaml .m | nindent 2 }}",
            {"m": {"b": [1.0, "2"], "a": {}}},
            "x:\n  a: {}\n  b:\n  - 1\n  - '2'",
        ),
        (
            '{{ eq .s "a" "b" }} {{ and .s 0 }} {{ or "" .s }} {{ not .s }}',
            {"s": "b"},
            "true 0 b false",
        ),
        ('{{ index .m "k" "j" }}{{ index .m "none" }}', {"m": {"k": {"j": "v"}}}, "v"),
        # A field after a parenthesised pipeline and a space is the next operand, as in Go.
        ("{{ and (not .a) .b }} {{ or (not .b) .a }}", {"a": False, "b": "x"}, "x false"),
    ],
)
def test_renderer_follows_go_and_helm_semantics(source: str, data: Any, expected: str) -> None:
    assert render.render_string(source, data) == expected


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        ("{{ .a.missing }}", {"a": {}}, "no entry for key"),
        ("{{ .a.b.c }}", {"a": {"b": None}}, "nil pointer"),
        ("{{ gt .n 1 }}", {"n": 3.0}, "incompatible types"),  # Helm values are float64
        ("{{ .m }}", {"m": {"k": "v"}}, "use toYaml"),
        ('{{ required "need x" .x }}', {"x": ""}, "need x"),
        ('{{ include "nope" . }}', {}, "no template named"),
        ("{{ .n | upper }}", {"n": 1.0}, "expects str"),
        ('{{ if .a }}{{ fail "boom" }}{{ end }}', {"a": True}, "fail: boom"),
    ],
)
def test_renderer_errors_at_render_time(source: str, data: Any, message: str) -> None:
    with pytest.raises(render.RenderError, match=message):
        render.render_string(source, data)


def test_strict_yaml_loading_rejects_duplicate_keys() -> None:
    with pytest.raises(render.RenderError, match="duplicate keys"):
        render.load_documents("a: 1\na: 2\n")


def test_user_values_merge_like_helm() -> None:
    merged = render.merge_values(
        {"a": {"b": 1, "c": 2}, "l": [1, 2], "d": 1}, {"a": {"b": 3}, "l": [9], "d": None}
    )
    assert merged == {"a": {"b": 3, "c": 2}, "l": [9]}
