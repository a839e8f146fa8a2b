"""Model serving, pure layer: config validation and every rendered object, validated offline."""

import copy
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube
from mlops_platform.components.kafka.model import KafkaClientWiring, KeyRef
from mlops_platform.components.serving import model
from mlops_platform.components.serving.model import ModelDeploymentConfig, ServingDeployments
from mlops_platform.model_server.settings import REGISTRY, KafkaSaslMechanism, Settings

README = (
    Path(__file__).resolve().parents[2] / "mlops_platform" / "components" / "serving" / "README.md"
)
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
MINIMAL = {"stable": {"model_uri": "models:/churn@champion"}, "mlflow_tracking_uri": TRACKING}
CANARY = {
    **MINIMAL,
    "canary": {"model_uri": "models:/churn@challenger", "weight": 10},
}
ENV = {var.field: var.name for var in REGISTRY}


def _config(**changes) -> ModelDeploymentConfig:
    return ModelDeploymentConfig.model_validate({**MINIMAL, **changes})


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        ModelDeploymentConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- validation of Istio objects --------------------------------------------------------------

ISTIO_GROUP = "networking.istio.io"


def _validate(obj):
    manifests.validate(obj)


def test_istio_validation_is_strict(crds_dir):
    rendered = model.render("churn", _config())
    bad_field = copy.deepcopy(rendered.virtual_service)
    bad_field["spec"]["http"][0]["route"][0]["wieght"] = 10
    bad_type = copy.deepcopy(rendered.destination_rule)
    bad_type["spec"]["subsets"][0]["labels"] = {"track": 1}
    bad_metadata = copy.deepcopy(rendered.virtual_service)
    bad_metadata["metadata"]["label"] = {"a": "b"}
    for obj in (bad_field, bad_type, bad_metadata):
        with pytest.raises(manifests.ManifestError):
            manifests.validate(obj)


def test_istio_objects_validate_against_their_crds(crds_dir):
    rendered = model.render("churn", _config())
    manifests.validate(rendered.virtual_service)
    manifests.validate(rendered.destination_rule)


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "image"),
    [
        ({}, "ghcr.io/mlops-platform/model-server:0.1.0"),
        ({"server_settings": {"explain": False}}, "ghcr.io/mlops-platform/model-server:0.1.0"),
        (
            {"server_settings": {"explain": True}},
            "ghcr.io/mlops-platform/model-server-explain:0.1.0",
        ),
        (
            {"server_settings": {"explain": "true"}},
            "ghcr.io/mlops-platform/model-server-explain:0.1.0",
        ),
        (
            {"image": "registry.example.com/own/server:2", "server_settings": {"explain": True}},
            "registry.example.com/own/server:2",
        ),
        ({"image": "registry.example.com/own/server:2"}, "registry.example.com/own/server:2"),
    ],
)
def test_the_pods_run_the_explain_image_only_where_attributions_are_on(changes, image):
    config = ModelDeploymentConfig.model_validate({**MINIMAL, **changes})
    assert config.deployed_image == image
    assert model.container(config, "stable")["image"] == image


def test_defaults_are_the_secure_choice():
    config = ModelDeploymentConfig.model_validate(MINIMAL)
    assert config.namespace == "serving"
    assert config.stable.replicas == 2
    assert config.canary is None
    assert config.image == "ghcr.io/mlops-platform/model-server:0.1.0"
    assert config.port == 8080
    assert config.prediction_sink == "none"
    assert config.drain_seconds == 20.0
    assert config.istio_sidecar is True
    assert config.gateway is None and config.hosts == []
    assert config.autoscaling is None
    assert config.service_account is None and config.credentials_secret is None
    assert config.resources.model_dump() == {
        "cpu_request": "500m",
        "memory_request": "512Mi",
        "memory_limit": "1Gi",
        "cpu_limit": None,
        "tmp_size_limit": "2Gi",
    }
    assert model.served_model_name(config) == "churn"
    assert model.route_weights(config) == {"stable": 100, "canary": 0}


def test_canary_defaults_to_one_replica_and_no_traffic():
    config = _config(canary={"model_uri": "models:/churn/7"})
    assert config.canary.replicas == 1
    assert config.canary.weight == 0
    assert model.route_weights(config) == {"stable": 100, "canary": 0}


def test_defaults_follow_the_server_registry():
    defaults = {var.field: var.default for var in REGISTRY}
    config = ModelDeploymentConfig.model_validate(MINIMAL)
    assert config.port == defaults["port"]
    assert config.drain_seconds == defaults["drain_seconds"]
    assert config.kafka_topic == defaults["kafka_topic"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"canary": {"model_uri": "models:/churn@challenger", "weight": 101}},
            "canary.weight: Input should be less than or equal to 100",
        ),
        (
            {"canary": {"model_uri": "models:/churn@challenger", "weight": -5}},
            "canary.weight: Input should be greater than or equal to 0",
        ),
        (
            {"canary": {"model_uri": "models:/churn@challenger", "weight": "ten"}},
            "canary.weight: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"canary": {"weight": 10}},
            "canary.model_uri: Field required",
        ),
        (
            {"stable": {"model_uri": "models:/churn@champion", "replicas": 0}},
            "stable.replicas: Input should be greater than or equal to 1",
        ),
        (
            {"stable": {"model_uri": "/models/churn"}},
            "stable.model_uri: Value error, model_uri '/models/churn' must be a models:/, "
            "runs:/ or artifact URI (s3://, gs://, ...): a local path does not exist inside "
            "the pod",
        ),
        (
            {"stable": {"model_uri": "models:/churn/3/extra"}},
            "stable.model_uri: Value error, model_uri 'models:/churn/3/extra' must look like "
            "models:/<name>@<alias> or models:/<name>/<version>",
        ),
        (
            {"stable": {"model_uri": "models:/churn@champion", "weight": 50}},
            "stable.weight: Extra inputs are not permitted",
        ),
        (
            {"mlflow_tracking_uri": None},
            ": Value error, mlflow_tracking_uri is required: stable.model_uri "
            "'models:/churn@champion' is resolved through the MLflow tracking server",
        ),
        (
            {"prediction_sink": "stdout"},
            "prediction_sink: Input should be 'file', 'kafka' or 'none'",
        ),
        (
            {"gateway": "istio-ingress/public"},
            ": Value error, gateway and hosts go together: set both, or neither",
        ),
        (
            {"hosts": ["churn.example.com"]},
            ": Value error, gateway and hosts go together: set both, or neither",
        ),
        (
            {"gateway": "public"},
            "gateway: Value error, gateway 'public' must be <namespace>/<name>",
        ),
        (
            {"gateway": "istio-ingress/public", "hosts": ["churn_example"]},
            "hosts: Value error, hosts: 'churn_example' is not a DNS name (e.g. churn.example.com)",
        ),
        (
            {"image": "ghcr.io/mlops-platform/model-server:latest"},
            "image: Value error, image 'ghcr.io/mlops-platform/model-server:latest' must be "
            "pinned to a tag other than latest, or to a digest",
        ),
        (
            {"image": "localhost:5000/model-server"},
            "image: Value error, image 'localhost:5000/model-server' must be pinned to a tag "
            "other than latest, or to a digest",
        ),
        (
            {"server_settings": {"max_batch_rows": 0}},
            "server_settings: Value error, max_batch_rows: MLOPS_SERVE_MAX_BATCH_ROWS=0 must "
            "be >= 1",
        ),
        (
            {"server_settings": {"log_level": "verbose"}},
            "server_settings: Value error, log_level: MLOPS_SERVE_LOG_LEVEL='verbose' must be "
            "one of debug, info, warning, error",
        ),
        (
            {"server_settings": {"batch_wait_ms": "soon"}},
            "server_settings: Value error, batch_wait_ms: MLOPS_SERVE_BATCH_WAIT_MS='soon' is "
            "not a valid float: could not convert string to float: 'soon'",
        ),
        (
            {"server_settings": {"kafka_sasl_password": "hunter2"}},
            "server_settings: Value error, kafka_sasl_password is a secret: it cannot be a plain "
            "value in the stack; mount it from a Secret",
        ),
        (
            {"server_settings": {"model_uri": "models:/other/1"}},
            "server_settings: Value error, model_uri is set by the component (use its own field)",
        ),
        (
            {"server_settings": {"max_batch": 64}},
            "server_settings: Value error, unknown model-server setting 'max_batch'; known: "
            "batch_wait_ms, body_timeout_seconds, drift_window_rows, explain, feast_entity_key, "
            "feast_features, feast_timeout_seconds, header_timeout_seconds, idle_timeout_seconds, "
            "inference_threads, kafka_aws_region, kafka_buffer_messages, "
            "kafka_ca_file, kafka_sasl_mechanism, kafka_sasl_username, kafka_security_protocol, "
            "load_retry_initial_seconds, load_retry_max_seconds, log_level, max_batch_rows, "
            "max_body_bytes, max_connections, prediction_file, prediction_file_backups, "
            "prediction_file_max_bytes, prediction_queue_size",
        ),
        (
            {
                "image": "ghcr.io/mlops-platform/model-server:0.1.0@sha256:" + "a" * 64,
                "server_settings": {"explain": True},
            },
            ": Value error, image 'ghcr.io/mlops-platform/model-server:0.1.0@sha256:"
            + "a" * 64
            + "' has no shap, which server_settings.explain needs: use "
            "ghcr.io/mlops-platform/model-server-explain (the default when `image` is unset)",
        ),
        (
            {"namespace": "Serving"},
            "namespace: Value error, namespace 'Serving' must be a DNS label: at most 63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit",
        ),
        (
            {"service_account": "model_server"},
            "service_account: Value error, service_account 'model_server' must be a DNS "
            "label: at most 63 lowercase letters, digits or '-', starting and ending with a "
            "letter or digit",
        ),
        (
            {"resources": {"memory_request": "2Gi", "memory_limit": "1Gi"}},
            "resources: Value error, memory_limit (1Gi) must be at least memory_request (2Gi)",
        ),
        (
            {"resources": {"cpu_limit": "250m"}},
            "resources: Value error, cpu_limit (250m) must be at least cpu_request (500m)",
        ),
        (
            {"resources": {"memory_limit": "lots"}},
            "resources.memory_limit: Value error, memory_limit 'lots' is not a Kubernetes "
            "quantity (e.g. 512Mi, 250m)",
        ),
        (
            {"autoscaling": {"min_replicas": 5, "max_replicas": 3}},
            "autoscaling: Value error, min_replicas (5) must be <= max_replicas (3)",
        ),
        (
            {"port": 80},
            "port: Input should be greater than or equal to 1024",
        ),
        (
            {"scrape_interval": "1h"},
            "scrape_interval: Value error, scrape_interval '1h' must be seconds or minutes, "
            "e.g. 30s",
        ),
        (
            {"model_name": "churn/v2"},
            "model_name: Value error, model_name 'churn/v2' must be letters, digits, '.', '_' "
            "or '-' (it is a URL path segment)",
        ),
        (
            {"replicas": 3},
            "replicas: Extra inputs are not permitted",
        ),
    ],
)
def test_config_errors_name_the_field(changes, message):
    assert _error({**MINIMAL, **changes}) == message


def test_tracks_must_share_one_served_name():
    data = {**MINIMAL, "canary": {"model_uri": "models:/churn-v2@candidate", "weight": 5}}
    assert _error(data) == (
        ": Value error, model_name is required: stable serves 'churn' and canary 'churn-v2'; "
        "clients need one name for both"
    )
    config = ModelDeploymentConfig.model_validate({**data, "model_name": "churn"})
    assert model.served_model_name(config) == "churn"


def test_artifact_uri_needs_a_model_name_but_no_tracking_server():
    data = {"stable": {"model_uri": "s3://acme-prod-artifacts/models/churn"}}
    assert _error(data) == (
        ": Value error, model_name is required: stable.model_uri "
        "'s3://acme-prod-artifacts/models/churn' is not a registry URI to take the name from"
    )
    config = ModelDeploymentConfig.model_validate({**data, "model_name": "churn"})
    assert config.mlflow_tracking_uri is None
    env = {e["name"]: e["value"] for e in model.server_env(config, "stable")}
    assert "MLFLOW_TRACKING_URI" not in env


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "Churn",
            "serving.Churn: a deployment name is 1-56 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        (
            "1churn",
            "serving.1churn: a deployment name is 1-56 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        (
            "c" * 57,
            f"serving.{'c' * 57}: a deployment name is 1-56 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        ),
    ],
)
def test_map_keys_are_checked(key, message):
    with pytest.raises(ValidationError) as info:
        TypeAdapter(ServingDeployments).validate_python({key: MINIMAL})
    assert [e["msg"] for e in info.value.errors()] == [f"Value error, {message}"]


def test_map_errors_carry_the_key_in_the_path():
    with pytest.raises(ValidationError) as info:
        TypeAdapter(ServingDeployments).validate_python(
            {"churn": {**MINIMAL, "canary": {"model_uri": "models:/churn/2", "weight": 200}}}
        )
    [error] = info.value.errors()
    assert error["loc"] == ("churn", "canary", "weight")


# --- rendered objects -------------------------------------------------------------------------

CONFIGS = {
    "minimal": MINIMAL,
    "canary": CANARY,
    "full": {
        **CANARY,
        "image": "ghcr.io/mlops-platform/model-server@sha256:" + "a" * 64,
        "prediction_sink": "kafka",
        "kafka_bootstrap_servers": "kafka:9092",
        "server_settings": {"max_batch_rows": 256, "batch_wait_ms": 0.5, "log_level": "debug"},
        "resources": {"cpu_request": "1", "cpu_limit": "2", "memory_limit": "2Gi"},
        "autoscaling": {"min_replicas": 3, "max_replicas": 9, "target_cpu_utilization": 60},
        "service_account": "model-server",
        "credentials_secret": "model-server-s3-credentials",
        "gateway": "istio-ingress/public",
        "hosts": ["churn.ml.example.com"],
        "monitor_labels": {"release": "kube-prometheus-stack"},
    },
    "no-sidecar-no-prestop": {**MINIMAL, "istio_sidecar": False, "pre_stop_seconds": 0},
    "artifact-uri": {"stable": {"model_uri": "gs://acme/models/churn"}, "model_name": "churn"},
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_every_rendered_object_is_valid(case, crds_dir):
    rendered = model.render("churn", ModelDeploymentConfig.model_validate(CONFIGS[case]))
    kinds = []
    for obj in rendered.objects():
        _validate(obj)
        kinds.append(obj["kind"])
    tracks = 2 if "canary" in CONFIGS[case] else 1
    expected = ["Deployment"] * tracks + ["PodDisruptionBudget"] * tracks
    expected += ["Service", "DestinationRule", "VirtualService", "PodMonitor"]
    expected += ["HorizontalPodAutoscaler"] if "autoscaling" in CONFIGS[case] else []
    # Who may call it: the gateway's namespace (full) or nobody (deny-all) on the serving port;
    # the sidecar's AuthorizationPolicy.
    expected += ["NetworkPolicy"]
    expected += [] if CONFIGS[case].get("istio_sidecar") is False else ["AuthorizationPolicy"]
    assert kinds == expected


def test_readme_example_validates_and_renders(crds_dir):
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    [document] = [yaml.safe_load(block) for block in blocks]
    deployments = TypeAdapter(ServingDeployments).validate_python(
        document["config"]["mlops:serving"]
    )
    assert list(deployments) == ["churn"]
    for obj in model.render("churn", deployments["churn"]).objects():
        _validate(obj)


def test_weights_are_100_0_without_a_canary():
    rendered = model.render("churn", _config())
    route = rendered.virtual_service["spec"]["http"][0]["route"]
    host = "churn.serving.svc.cluster.local"
    port = {"number": 8080}
    assert route == [
        {"destination": {"host": host, "subset": "stable", "port": port}, "weight": 100},
        {"destination": {"host": host, "subset": "canary", "port": port}, "weight": 0},
    ]
    assert list(rendered.deployments) == ["stable"]
    assert list(rendered.pod_disruption_budgets) == ["stable"]


@pytest.mark.parametrize(("weight", "stable"), [(10, 90), (0, 100), (100, 0), (37, 63)])
def test_canary_weight_splits_the_route(weight, stable):
    config = ModelDeploymentConfig.model_validate(
        {**CANARY, "canary": {"model_uri": "models:/churn@challenger", "weight": weight}}
    )
    route = model.render("churn", config).virtual_service["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [
        ("stable", stable),
        ("canary", weight),
    ]
    assert model.canary_weight(config) == weight


def test_virtual_service_in_mesh_and_through_a_gateway():
    in_mesh = model.render("churn", _config()).virtual_service["spec"]
    assert in_mesh["hosts"] == ["churn.serving.svc.cluster.local"]
    assert "gateways" not in in_mesh  # Istio's default: the mesh only
    assert in_mesh["http"][0]["timeout"] == "30s"
    assert in_mesh["http"][0]["retries"] == {
        "attempts": 2,
        "retryOn": "connect-failure,refused-stream",
    }
    exposed = model.render(
        "churn", _config(gateway="istio-ingress/public", hosts=["churn.ml.example.com"])
    ).virtual_service["spec"]
    assert exposed["hosts"] == ["churn.serving.svc.cluster.local", "churn.ml.example.com"]
    assert exposed["gateways"] == ["mesh", "istio-ingress/public"]


def test_destination_rule_subsets_select_the_track_label():
    config = ModelDeploymentConfig.model_validate(CANARY)
    rendered = model.render("churn", config)
    spec = rendered.destination_rule["spec"]
    assert spec["host"] == "churn.serving.svc.cluster.local"
    assert spec["subsets"] == [
        {"name": "stable", "labels": {"track": "stable"}},
        {"name": "canary", "labels": {"track": "canary"}},
    ]
    assert spec["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    for track, obj in rendered.deployments.items():
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["track"] == track
        assert obj["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": "model-server",
            "app.kubernetes.io/instance": "churn",
            "track": track,
        }
    # The Service selects both tracks; the subsets split them.
    assert rendered.service["spec"]["selector"] == {
        "app.kubernetes.io/name": "model-server",
        "app.kubernetes.io/instance": "churn",
    }
    no_sidecar = model.render("churn", _config(istio_sidecar=False)).destination_rule
    assert "tls" not in no_sidecar["spec"]["trafficPolicy"]


def test_security_context_is_restricted():
    deployment = model.render("churn", _config()).deployments["stable"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,  # Secret volumes are root-owned 0440: read through this group
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert "serviceAccountName" not in pod
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_environment_takes_its_names_from_the_server_registry():
    config = ModelDeploymentConfig.model_validate(CANARY)
    stable = model.server_env(config, "stable")
    assert stable == [
        {"name": "MLOPS_SERVE_MODEL_URI", "value": "models:/churn@champion"},
        {"name": "MLOPS_SERVE_MODEL_NAME", "value": "churn"},
        {"name": "MLOPS_SERVE_HOST", "value": "0.0.0.0"},
        {"name": "MLOPS_SERVE_PORT", "value": "8080"},
        {"name": "MLOPS_SERVE_DRAIN_SECONDS", "value": "20.0"},
        {"name": "MLOPS_SERVE_PREDICTION_SINK", "value": "none"},
        {"name": "MLFLOW_TRACKING_URI", "value": TRACKING},
    ]
    canary = model.server_env(config, "canary")
    assert canary[0] == {"name": ENV["model_uri"], "value": "models:/churn@challenger"}
    assert canary[1:] == stable[1:]
    registry_names = set(ENV.values())
    for item in stable:
        assert item["name"] in registry_names | {"MLFLOW_TRACKING_URI"}


def test_kafka_sink_and_server_settings_are_passed_through():
    config = _config(
        prediction_sink="kafka",
        kafka_bootstrap_servers="kafka:9092",
        kafka_topic="churn-predictions",
        server_settings={"max_batch_rows": 256, "batch_wait_ms": 0.5, "log_level": "debug"},
    )
    env = {e["name"]: e["value"] for e in model.server_env(config, "stable")}
    assert env[ENV["prediction_sink"]] == "kafka"
    assert env[ENV["kafka_bootstrap_servers"]] == "kafka:9092"
    assert env[ENV["kafka_topic"]] == "churn-predictions"
    assert env[ENV["max_batch_rows"]] == "256"
    assert env[ENV["batch_wait_ms"]] == "0.5"
    assert env[ENV["log_level"]] == "debug"
    # What the pod gets is what the server itself accepts.
    settings = Settings.from_env(env)
    assert (settings.max_batch_rows, settings.batch_wait_ms, settings.port) == (256, 0.5, 8080)
    assert settings.model_uri == "models:/churn@champion"
    assert settings.host == "0.0.0.0"


def test_probes_and_shutdown_fit_the_server():
    config = _config(drain_seconds=42.5, pre_stop_seconds=7, startup_timeout_seconds=600)
    deployment = model.render("churn", config).deployments["stable"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # Live while the model loads (or its alias does not exist yet): never restarted for that.
    assert container["startupProbe"] == {
        "httpGet": {"path": "/v2/health/live", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 120,
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    # preStop + drain fit inside the grace period, with margin for the process to exit.
    assert pod["terminationGracePeriodSeconds"] == 7 + 43 + 5
    assert pod["terminationGracePeriodSeconds"] > config.drain_seconds + config.pre_stop_seconds
    assert deployment["spec"]["progressDeadlineSeconds"] == 720
    assert {"name": "MLOPS_SERVE_DRAIN_SECONDS", "value": "42.5"} in container["env"]
    default_pod = model.render("churn", _config()).deployments["stable"]["spec"]["template"]
    assert default_pod["spec"]["terminationGracePeriodSeconds"] == 30


def test_resources_and_topology_spread():
    config = _config(resources={"cpu_request": "1", "cpu_limit": "2", "memory_limit": "2Gi"})
    pod = model.render("churn", config).deployments["stable"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"memory": "2Gi", "cpu": "2"},
    }
    selector = {
        "app.kubernetes.io/name": "model-server",
        "app.kubernetes.io/instance": "churn",
        "track": "stable",
    }
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def test_identity_options_reach_the_pod():
    config = _config(service_account="model-server", credentials_secret="mlflow-client")
    pod = model.render("churn", config).deployments["stable"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-server"
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    # MLflow's credentials file, mounted where MLflow's client reads it ($HOME/.mlflow).
    assert "envFrom" not in container
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    assert container["volumeMounts"][-1] == {
        "name": "mlflow-credentials",
        "mountPath": "/tmp/.mlflow",
        "readOnly": True,
    }
    assert pod["volumes"][-1] == {
        "name": "mlflow-credentials",
        "secret": {
            "secretName": "mlflow-client",
            "defaultMode": 0o440,
            "items": [{"key": "credentials", "path": "credentials"}],
        },
    }


@pytest.mark.parametrize(
    ("wiring", "credentials"),
    [("none", None), ("scram", "mlflow-client"), ("msk", "mlflow-client")],
)
def test_no_secret_reaches_the_model_servers_environment(wiring, credentials):
    """The MLflow credentials and the SCRAM password are mounted files: a secretKeyRef or
    envFrom coming back fails here."""
    data = {**KAFKA_SINK, "credentials_secret": credentials}
    kafka = {"none": None, "scram": SCRAM, "msk": MSK}[wiring]
    if kafka is None:
        data["prediction_sink"] = "none"
    rendered = model.render("churn", ModelDeploymentConfig.model_validate(data), kafka)
    for deployment in rendered.deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert kube.secret_env_vars(container) == []


def test_pod_disruption_budget_per_track():
    rendered = model.render("churn", ModelDeploymentConfig.model_validate(CANARY))
    assert rendered.pod_disruption_budgets["canary"] == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "churn-canary",
            "namespace": "serving",
            "labels": {
                "app.kubernetes.io/name": "model-server",
                "app.kubernetes.io/instance": "churn",
                "app.kubernetes.io/component": "serving",
                "app.kubernetes.io/managed-by": "mlops-platform",
            },
        },
        "spec": {
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "model-server",
                    "app.kubernetes.io/instance": "churn",
                    "track": "canary",
                }
            },
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def test_pod_monitor_scrapes_istio_merged_metrics_or_the_server():
    with_sidecar = model.render("churn", _config(monitor_labels={"release": "kps"})).pod_monitor
    assert with_sidecar["metadata"]["labels"]["release"] == "kps"
    assert with_sidecar["spec"] == {
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "model-server",
                "app.kubernetes.io/instance": "churn",
            }
        },
        "jobLabel": "app.kubernetes.io/name",
        "podTargetLabels": ["track"],
        "podMetricsEndpoints": [
            {"portNumber": 15020, "path": "/stats/prometheus", "interval": "30s"}
        ],
    }
    annotations = model.render("churn", _config()).deployments["stable"]["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    plain = model.render("churn", _config(istio_sidecar=False))
    assert plain.pod_monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s"}
    ]
    pod = plain.deployments["stable"]["spec"]["template"]["metadata"]
    assert pod["labels"]["sidecar.istio.io/inject"] == "false"
    assert pod["annotations"] == {"kubectl.kubernetes.io/default-container": "model-server"}


def test_autoscaling_hands_stable_replicas_to_the_hpa():
    config = ModelDeploymentConfig.model_validate({**CANARY, "autoscaling": {}})
    rendered = model.render("churn", config)
    assert "replicas" not in rendered.deployments["stable"]["spec"]
    assert rendered.deployments["canary"]["spec"]["replicas"] == 1
    hpa = rendered.horizontal_pod_autoscaler
    assert hpa["metadata"]["name"] == "churn-stable"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-stable"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    }
    without = model.render("churn", ModelDeploymentConfig.model_validate(CANARY))
    assert without.horizontal_pod_autoscaler is None
    assert without.deployments["stable"]["spec"]["replicas"] == 2


def test_names_and_url():
    rendered = model.render("churn", ModelDeploymentConfig.model_validate(CANARY))
    names = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects()]
    assert names == [
        ("Deployment", "churn-stable"),
        ("Deployment", "churn-canary"),
        ("PodDisruptionBudget", "churn-stable"),
        ("PodDisruptionBudget", "churn-canary"),
        ("Service", "churn"),
        ("DestinationRule", "churn"),
        ("VirtualService", "churn"),
        ("PodMonitor", "churn"),
        ("NetworkPolicy", "churn-deny-ingress"),
        ("AuthorizationPolicy", "churn"),
    ]
    assert {o["metadata"]["namespace"] for o in rendered.objects()} == {"serving"}
    assert model.service_url("churn", "serving", 8080) == (
        "http://churn.serving.svc.cluster.local:8080"
    )
    with pytest.raises(ValueError, match=r"^serving\.Churn: a deployment name"):
        model.render("Churn", ModelDeploymentConfig.model_validate(CANARY))


# --- the platform's Kafka client --------------------------------------------------------------

SCRAM = KafkaClientWiring(
    namespace="serving",
    bootstrap_servers="mlops-kafka-bootstrap.kafka.svc.cluster.local:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    auth_method="scram-sha-512",
    write_topics=("predictions",),
    username="churn",
    password_secret=KeyRef("kafka-churn", "password"),
    ca_config_map=KeyRef("kafka-churn-ca", "ca.crt"),
)
MSK = KafkaClientWiring(
    namespace="serving",
    bootstrap_servers="b-1.mlops.kafka.us-east-1.amazonaws.com:9098",
    security_protocol="SASL_SSL",
    sasl_mechanism="OAUTHBEARER",
    auth_method="aws-iam",
    write_topics=("predictions",),
    aws_region="us-east-1",
)
MANAGED = KafkaClientWiring(
    namespace="serving",
    bootstrap_servers="bootstrap.mlops.europe-west4.managedkafka.acme.cloud.goog:9092",
    security_protocol="SASL_SSL",
    sasl_mechanism="OAUTHBEARER",
    auth_method="gcp-iam",
    write_topics=("predictions",),
)
KAFKA_SINK = {**CANARY, "prediction_sink": "kafka"}


def _pod(config, wiring, track="stable"):
    return model.render("churn", config, wiring).deployments[track]["spec"]["template"]["spec"]


def test_server_mechanism_names_are_the_servers_own():
    assert set(model.SERVER_SASL_MECHANISMS.values()) <= set(get_args(KafkaSaslMechanism))
    assert set(ENV) >= model.KAFKA_WIRING_SETTINGS


@pytest.mark.parametrize("track", ["stable", "canary"])
def test_scram_wiring_password_and_ca_mounted(track, crds_dir, tmp_path):
    config = ModelDeploymentConfig.model_validate(KAFKA_SINK)
    rendered = model.render("churn", config, SCRAM)
    pod = rendered.deployments[track]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    kafka_env = [e for e in container["env"] if e["name"].startswith("MLOPS_SERVE_KAFKA_")]
    assert kafka_env == [
        {
            "name": "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS",
            "value": "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093",
        },
        {"name": "MLOPS_SERVE_KAFKA_TOPIC", "value": "predictions"},
        {"name": "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_USERNAME", "value": "churn"},
        {
            "name": "MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE",
            "value": "/var/run/secrets/mlops/kafka-password/password",
        },
        {"name": "MLOPS_SERVE_KAFKA_CA_FILE", "value": "/etc/kafka-ca/ca.crt"},
    ]
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True},
        {
            "name": "kafka-password",
            "mountPath": "/var/run/secrets/mlops/kafka-password",
            "readOnly": True,
        },
    ]
    assert pod["volumes"][1:3] == [
        {
            "name": "kafka-ca",
            "configMap": {
                "name": "kafka-churn-ca",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {
            "name": "kafka-password",
            "secret": {
                "secretName": "kafka-churn",
                "defaultMode": 0o440,
                "items": [{"key": "password", "path": "password"}],
            },
        },
    ]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for obj in rendered.objects():
        _validate(obj)
    # The server accepts it, with the Secret's key mounted where the variable points.
    env = {e["name"]: e["value"] for e in container["env"]}
    mounted = tmp_path / "password"
    mounted.write_text("from-the-secret")
    env["MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE"] = str(mounted)
    settings = Settings.from_env(env)
    assert settings.kafka_sasl_password == "from-the-secret"
    assert (settings.kafka_sasl_mechanism, settings.kafka_sasl_username) == (
        "SCRAM-SHA-512",
        "churn",
    )
    assert settings.kafka_ca_file == "/etc/kafka-ca/ca.crt"


def test_msk_wiring_sets_the_region_and_nothing_secret(crds_dir):
    config = ModelDeploymentConfig.model_validate(KAFKA_SINK)
    pod = _pod(config, MSK)
    [container] = pod["containers"]
    kafka_env = {e["name"]: e["value"] for e in container["env"] if "KAFKA" in e["name"]}
    assert kafka_env == {
        "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": "b-1.mlops.kafka.us-east-1.amazonaws.com:9098",
        "MLOPS_SERVE_KAFKA_TOPIC": "predictions",
        "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-AWS-MSK-IAM",
        "MLOPS_SERVE_KAFKA_AWS_REGION": "us-east-1",
    }
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert Settings.from_env(kafka_env | {ENV["prediction_sink"]: "kafka"}).kafka_aws_region == (
        "us-east-1"
    )
    _validate(model.render("churn", config, MSK).deployments["stable"])


def test_gcp_wiring_sets_the_mechanism_only():
    config = ModelDeploymentConfig.model_validate(KAFKA_SINK)
    [container] = _pod(config, MANAGED)["containers"]
    kafka_env = {e["name"]: e["value"] for e in container["env"] if "KAFKA" in e["name"]}
    assert kafka_env == {
        "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": (
            "bootstrap.mlops.europe-west4.managedkafka.acme.cloud.goog:9092"
        ),
        "MLOPS_SERVE_KAFKA_TOPIC": "predictions",
        "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-GCP-IAM",
    }
    Settings.from_env(kafka_env | {ENV["prediction_sink"]: "kafka"})


def test_other_sinks_render_no_kafka_settings():
    config = ModelDeploymentConfig.model_validate(CANARY)
    [container] = _pod(config, None)["containers"]
    assert not [e for e in container["env"] if "KAFKA" in e["name"]]


@pytest.mark.parametrize(
    ("changes", "wiring", "message"),
    [
        (
            {"prediction_sink": "kafka"},
            None,
            "serving.churn.kafka_bootstrap_servers: required when prediction_sink is kafka and "
            "no platform Kafka client is wired (ModelDeploymentArgs.kafka)",
        ),
        (
            {"prediction_sink": "kafka", "kafka_bootstrap_servers": "kafka:9092"},
            SCRAM,
            "serving.churn.kafka_bootstrap_servers: set, but the platform Kafka client wired in "
            "ModelDeploymentArgs.kafka brings the brokers; drop one",
        ),
        (
            {},
            SCRAM,
            "serving.churn.prediction_sink: a Kafka client is wired (ModelDeploymentArgs.kafka) "
            "but prediction_sink is 'none'",
        ),
        (
            {"prediction_sink": "kafka", "namespace": "models"},
            SCRAM,
            "serving.churn.namespace: the Kafka client's credentials are in namespace 'serving', "
            "the pods run in 'models'",
        ),
        (
            {"prediction_sink": "kafka", "kafka_topic": "churn"},
            SCRAM,
            "serving.churn.kafka_topic: 'churn' is not a write topic of the Kafka client "
            "(predictions)",
        ),
        (
            {"prediction_sink": "kafka", "server_settings": {"kafka_sasl_mechanism": "none"}},
            MSK,
            "serving.churn.server_settings: kafka_sasl_mechanism come from the platform Kafka "
            "client",
        ),
    ],
)
def test_kafka_wiring_errors_name_the_field(changes, wiring, message):
    config = ModelDeploymentConfig.model_validate({**MINIMAL, **changes})
    with pytest.raises(ValueError) as info:
        model.render("churn", config, wiring)
    assert str(info.value) == message


def test_kafka_sink_with_brokers_from_the_stack_still_works():
    config = _config(prediction_sink="kafka", kafka_bootstrap_servers="kafka:9092")
    [container] = _pod(config, None)["containers"]
    names = [e["name"] for e in container["env"]]
    assert "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS" in names
    assert "MLOPS_SERVE_KAFKA_SASL_MECHANISM" not in names


def test_pulumi_awaits_a_hand_set_canary_but_not_the_stable_track():
    rendered = model.render("churn", ModelDeploymentConfig.model_validate(CANARY))
    stable, canary = rendered.deployments["stable"], rendered.deployments["canary"]
    # A fresh platform has no model yet: the stable pods wait for it without failing `pulumi up`.
    assert stable["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert "annotations" not in canary["metadata"]


def test_online_features_set_the_feature_server_url():
    url = "http://feast-feature-server.feast.svc.cluster.local:6566"
    config = _config(
        online_features=True,
        feature_server_url=url,
        server_settings={"feast_features": "customer_behaviour:sessions_30d"},
    )
    env = {item["name"]: item["value"] for item in model.server_env(config, "stable")}
    assert env["MLOPS_SERVE_FEAST_URL"] == url
    assert env["MLOPS_SERVE_FEAST_FEATURES"] == "customer_behaviour:sessions_30d"
    assert "MLOPS_SERVE_FEAST_URL" not in {i["name"] for i in model.server_env(_config(), "stable")}
    with pytest.raises(ValueError, match="online_features needs feature_server_url"):
        model.server_env(_config(online_features=True), "stable")
    assert "feast_url" in model.MANAGED_SETTINGS
