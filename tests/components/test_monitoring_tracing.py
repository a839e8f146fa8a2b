"""The trace backend (monitoring.tracing) and its wiring: config, the Jaeger objects, Grafana's
data source, istiod's extension provider and the Telemetry, the model servers' OTEL_* env."""

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pydantic import ValidationError

from mlops_platform import manifests, mocks, wiring
from mlops_platform.components import versions
from mlops_platform.components.cloud import AwsCloud
from mlops_platform.components.mesh import MeshTracing, MeshTracingArgs
from mlops_platform.components.mesh import model as mesh_model
from mlops_platform.components.mesh.model import MeshConfig
from mlops_platform.components.monitoring import (
    MonitoringConfig,
    Observability,
    ObservabilityArgs,
    model,
    tracing,
)
from mlops_platform.components.monitoring.tracing import TracingConfig, TracingWiring
from mlops_platform.components.serving import model as serving_model
from mlops_platform.config import PlatformConfig
from tests.chart_support import chart_defaults

ON = TracingConfig.model_validate({"enabled": True, "sampling_percent": 10})
BADGER = TracingConfig.model_validate(
    {"enabled": True, "storage": {"type": "badger", "storage_gb": 5, "retention_hours": 24}}
)
WIRED = TracingWiring(namespace="observability", sampling_percent=10.0)


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        TracingConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config -----------------------------------------------------------------------------------


def test_off_by_default_and_nothing_is_rendered():
    config = MonitoringConfig()
    assert config.tracing.enabled is False
    assert tracing.objects("monitoring", config.tracing) == {}
    assert tracing.wiring("monitoring", config.tracing) is None
    assert "additionalDataSources" not in model.helm_values(config)["grafana"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sampling_percent": 101}, "sampling_percent: Input should be less than or equal to 100"),
        ({"sampling_percent": -1}, "sampling_percent: Input should be greater than or equal to 0"),
        (
            {"storage": {"type": "cassandra"}},
            "storage: Input tag 'cassandra' found using 'type' does not match any of the "
            "expected tags: 'memory', 'badger'",
        ),
        (
            {"storage": {"type": "memory", "storage_gb": 5}},
            "storage.memory.storage_gb: Extra inputs are not permitted",
        ),
        (
            {"storage": {"type": "badger", "retention_hours": 0}},
            "storage.badger.retention_hours: Input should be greater than 0",
        ),
        (
            {"resources": {"memory_request": "4Gi"}},
            "resources: Value error, memory_limit (2Gi) must be at least memory_request (4Gi)",
        ),
    ],
)
def test_bad_config_names_the_field(data, message):
    assert _error(data) == message


def test_the_endpoint_is_derived_from_the_monitoring_namespace():
    wired = tracing.wiring("observability", ON)
    assert wired == WIRED
    assert wired.host == "jaeger.observability.svc.cluster.local"
    assert wired.otlp_http_endpoint == "http://jaeger.observability.svc.cluster.local:4318"
    assert wired.sampling_ratio == pytest.approx(0.1)


# --- the backend's objects --------------------------------------------------------------------


def test_memory_backend_objects_are_valid_and_exactly_these():
    found = tracing.objects("observability", ON)
    assert sorted(found) == ["config", "deployment", "network-policy", "service"]
    for obj in found.values():
        manifests.validate(obj)
        assert obj["metadata"]["namespace"] == "observability"
        assert obj["metadata"]["name"] == "jaeger"


def test_collector_config_receives_otlp_on_every_interface_and_stores_in_memory():
    config = yaml.safe_load(tracing.objects("observability", ON)["config"]["data"]["config.yaml"])
    assert config == {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": "0.0.0.0:13133"}},
            "jaeger_storage": {"backends": {"primary": {"memory": {"max_traces": 50000}}}},
            "jaeger_query": {
                "storage": {"traces": "primary"},
                "http": {"endpoint": "0.0.0.0:16686"},
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "0.0.0.0:4317"},
                    "http": {"endpoint": "0.0.0.0:4318"},
                }
            }
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "primary"}},
    }


def test_badger_backend_gets_a_volume_of_the_storage_class_and_a_ttl():
    found = tracing.objects("observability", BADGER, storage_class="gp3")
    assert sorted(found) == ["config", "deployment", "network-policy", "service", "volume"]
    manifests.validate(found["volume"])
    assert found["volume"]["metadata"]["name"] == "jaeger-badger"
    assert found["volume"]["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "gp3",
    }
    config = yaml.safe_load(found["config"]["data"]["config.yaml"])
    assert config["extensions"]["jaeger_storage"]["backends"]["primary"] == {
        "badger": {
            "ephemeral": False,
            "directories": {"keys": "/badger/keys", "values": "/badger/values"},
            "ttl": {"spans": "24h"},
        }
    }
    pod = found["deployment"]["spec"]["template"]["spec"]
    assert found["deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    assert {"name": "badger", "persistentVolumeClaim": {"claimName": "jaeger-badger"}} in pod[
        "volumes"
    ]
    assert {"name": "badger", "mountPath": "/badger"} in pod["containers"][0]["volumeMounts"]


def test_pod_is_hardened_pinned_and_outside_the_mesh():
    deployment = tracing.objects("observability", ON)["deployment"]
    template = deployment["spec"]["template"]
    pod = template["spec"]
    (container,) = pod["containers"]
    assert container["image"] == versions.JAEGER_IMAGE == "jaegertracing/jaeger:2.15.0"
    assert container["args"] == ["--config=/etc/jaeger/config.yaml"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= template["metadata"]["labels"].items()
    )
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/status", "port": "health"}


def test_service_ports_name_their_protocol_for_istio():
    service = tracing.objects("observability", ON)["service"]
    assert [(p["name"], p["port"], p.get("appProtocol")) for p in service["spec"]["ports"]] == [
        ("grpc-otlp", 4317, "grpc"),
        ("http-otlp", 4318, "http"),
        ("http-query", 16686, "http"),
    ]
    assert service["spec"]["type"] == "ClusterIP"


def test_network_policy_takes_spans_from_the_cluster_and_queries_from_monitoring_only():
    policy = tracing.objects("observability", ON)["network-policy"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    spans, query = policy["spec"]["ingress"]
    assert spans == {
        "from": [{"namespaceSelector": {}}],
        "ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}],
    }
    assert query == {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
        ],
        "ports": [{"protocol": "TCP", "port": 16686}],
    }


def test_grafana_gets_the_jaeger_data_source_with_a_chart_key(charts_dir):
    config = MonitoringConfig(namespace="observability", tracing=ON)
    values = model.helm_values(config)
    assert values["grafana"]["additionalDataSources"] == [
        {
            "name": "Jaeger",
            "uid": "jaeger",
            "type": "jaeger",
            "access": "proxy",
            "url": "http://jaeger.observability.svc.cluster.local:16686",
            "editable": False,
        }
    ]
    defaults = chart_defaults(charts_dir, versions.KUBE_PROMETHEUS_STACK)
    assert "additionalDataSources" in defaults["grafana"]


# --- the mesh ---------------------------------------------------------------------------------


def test_istiod_gets_the_opentelemetry_provider_only_with_tracing():
    mesh = MeshConfig()
    assert (
        "extensionProviders"
        not in mesh_model.istiod_values(mesh, AwsCloud(type="aws", region="eu-west-1"))[
            "meshConfig"
        ]
    )
    values = mesh_model.istiod_values(mesh, AwsCloud(type="aws", region="eu-west-1"), WIRED)
    assert values["meshConfig"] == {
        "rootNamespace": "istio-system",
        "enablePrometheusMerge": True,
        "extensionProviders": [
            {
                "name": "otel-tracing",
                "opentelemetry": {
                    "service": "jaeger.observability.svc.cluster.local",
                    "port": 4317,
                },
            }
        ],
    }


def test_telemetry_is_mesh_wide_valid_and_samples_as_configured(crds_dir):
    telemetry = mesh_model.telemetry(MeshConfig(namespace="mesh-root"), WIRED)
    manifests.validate(telemetry)
    assert telemetry["metadata"]["namespace"] == "mesh-root"
    assert "selector" not in telemetry["spec"]
    assert telemetry["spec"] == {
        "tracing": [{"providers": [{"name": "otel-tracing"}], "randomSamplingPercentage": 10.0}]
    }


def test_telemetry_validation_is_strict(crds_dir):
    telemetry = mesh_model.telemetry(MeshConfig(), WIRED)
    telemetry["spec"]["tracing"][0]["randomSamplingPercent"] = 5
    with pytest.raises(manifests.ManifestError, match="randomSamplingPercent"):
        manifests.validate(telemetry)


# --- the model servers ------------------------------------------------------------------------

SERVING = {
    "namespace": "serving",
    "mlflow_tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
    "stable": {"model_uri": "models:/churn/1"},
    "canary": {"model_uri": "models:/churn/2", "weight": 10},
}


def _env(obj) -> dict[str, str]:
    (container,) = [
        c
        for c in obj["spec"]["template"]["spec"]["containers"]
        if c["name"] == serving_model.CONTAINER_NAME
    ]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_model_servers_get_the_standard_otel_variables_on_every_track():
    config = serving_model.ModelDeploymentConfig.model_validate(SERVING)
    rendered = serving_model.render("churn", config, tracing=WIRED)
    assert sorted(rendered.deployments) == ["canary", "stable"]
    for track, obj in rendered.deployments.items():
        env = _env(obj)
        assert {k: v for k, v in env.items() if k.startswith("OTEL_")} == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger.observability.svc.cluster.local:4318",
            "OTEL_SERVICE_NAME": "churn.serving",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }, track
        manifests.validate(obj)
    untraced = serving_model.render("churn", config)
    for obj in untraced.deployments.values():
        assert not any(name.startswith("OTEL_") for name in _env(obj))


def test_the_server_accepts_what_the_platform_sets():
    """The variables the platform renders turn the server's tracing on and pass its checks."""
    from mlops_platform.model_server import tracing as server_tracing

    config = serving_model.ModelDeploymentConfig.model_validate(SERVING)
    env = _env(serving_model.render("churn", config, tracing=WIRED).deployments["stable"])
    otel = {k: v for k, v in env.items() if k.startswith("OTEL_")}
    assert server_tracing.enabled(otel)
    server_tracing.check(otel)
    assert (
        server_tracing.sampler_from(otel)
        .get_description()
        .startswith("ParentBased{root:TraceIdRatioBased{0.1},")
    )


# --- wiring and resources ---------------------------------------------------------------------


def _platform(**values) -> PlatformConfig:
    return PlatformConfig.model_validate({"cloud": {"type": "local"}, **values})


def test_wiring_derives_tracing_and_the_mesh_telemetry_node():
    off = _platform()
    assert wiring.tracing(off) is None
    assert "mesh-tracing" not in wiring.graph(off)
    on = _platform(monitoring={"namespace": "observability", "tracing": {"enabled": True}})
    assert wiring.tracing(on) == TracingWiring("observability", 1.0)
    edges = wiring.graph(on)
    assert edges["mesh-tracing"] == ("mesh", "monitoring")
    assert wiring.layer_of("mesh-tracing") == "ml"
    assert wiring.check_layers(edges) == []
    no_mesh = _platform(mesh={"enabled": False}, monitoring={"tracing": {"enabled": True}})
    assert wiring.tracing(no_mesh) is not None
    assert "mesh-tracing" not in wiring.graph(no_mesh)


def test_observability_creates_the_backend_under_the_component():
    config = MonitoringConfig(namespace="observability", storage_class="gp3", tracing=BADGER)

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        Observability(
            "platform",
            ObservabilityArgs(config=config, kubernetes=provider, protect=True),
            pulumi.ResourceOptions(),
        )

    monitor = mocks.run(program)
    component = monitor.named("platform")
    jaeger = sorted(
        (r.type, r.name)
        for r in monitor.recorded
        if r.parent == component.urn and "jaeger" in r.name
    )
    assert jaeger == [
        ("kubernetes:apps/v1:Deployment", "platform-jaeger"),
        ("kubernetes:core/v1:ConfigMap", "platform-jaeger-config"),
        ("kubernetes:core/v1:PersistentVolumeClaim", "platform-jaeger-badger"),
        ("kubernetes:core/v1:Service", "platform-jaeger-service"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "platform-jaeger-network-policy"),
    ]
    objects = tracing.objects("observability", BADGER, "gp3")
    deployment = monitor.named("platform-jaeger")
    assert deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == (
        versions.JAEGER_IMAGE
    )
    assert deployment.inputs["metadata"] == objects["deployment"]["metadata"]
    claim = monitor.named("platform-jaeger-badger")
    assert claim.inputs["spec"]["storageClassName"] == "gp3"
    assert claim.protect is True


def test_mesh_tracing_creates_the_telemetry():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        MeshTracing(
            "mesh",
            MeshTracingArgs(config=MeshConfig(), tracing=WIRED, kubernetes=provider),
        )

    monitor = mocks.run(program)
    component = monitor.named("mesh")
    assert component.type == "mlops:mesh:MeshTracing"
    telemetry = monitor.named("mesh-telemetry")
    assert telemetry.type == "kubernetes:telemetry.istio.io/v1:Telemetry"
    assert telemetry.parent == component.urn
    assert telemetry.inputs["spec"] == mesh_model.telemetry(MeshConfig(), WIRED)["spec"]


def test_mesh_tracing_needs_the_mesh():
    with pytest.raises(ValueError, match=r"mesh\.enabled: MeshTracing is only created"):
        MeshTracing(
            "mesh",
            MeshTracingArgs(config=MeshConfig(enabled=False), tracing=WIRED, kubernetes=object()),
        )


def test_readme_example_turns_tracing_on_and_renders():
    import re
    from pathlib import Path

    readme = Path(model.__file__).with_name("README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "tracing" in b]
    config = MonitoringConfig.model_validate(yaml.safe_load(block)["config"]["mlops:monitoring"])
    assert config.tracing.enabled and config.tracing.storage.type == "badger"
    for obj in tracing.objects(config.namespace, config.tracing, config.storage_class).values():
        manifests.validate(obj)


def test_istiod_chart_renders_the_provider_into_the_mesh_config(charts_dir):
    """helm template of the pinned istiod chart: the values pass its schema and the mesh
    ConfigMap istiod reads holds the provider (merged with the chart's own mesh config)."""
    import json

    from mlops_platform import render

    values = mesh_model.istiod_values(MeshConfig(), AwsCloud(type="aws", region="eu-west-1"), WIRED)
    archive = charts_dir / f"{versions.ISTIOD.chart}-{versions.ISTIOD.version}.tgz"
    assert render.values_problems(archive, versions.ISTIOD.chart, values) == []
    documents = render._helm_template(
        archive, mesh_model.ISTIOD_RELEASE, "istio-system", json.dumps(values), False
    )
    (mesh,) = [
        obj
        for obj, _text in documents
        if obj and obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] == "istio"
    ]
    rendered = yaml.safe_load(mesh["data"]["mesh"])
    assert rendered["extensionProviders"] == [mesh_model.tracing_provider(WIRED)]
    assert rendered["rootNamespace"] == "istio-system"
    assert "tracing" not in rendered["defaultConfig"]  # the legacy tracer stays off
