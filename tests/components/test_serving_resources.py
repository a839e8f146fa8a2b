"""Model serving, resource layer under recording mocks: exact types, names, inputs, parents."""

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity import (
    WorkloadIdentity,
    WorkloadIdentityArgs,
    WorkloadIdentityConfig,
)
from mlops_platform.components.kafka import (
    KafkaClient,
    KafkaClientArgs,
    KafkaCluster,
    KafkaClusterArgs,
    KafkaConfig,
)
from mlops_platform.components.serving import (
    ModelDeployment,
    ModelDeploymentArgs,
    ModelDeploymentConfig,
    model,
)
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs, StorageConfig
from tests.components.component_support import output_value, run_with_mocks, untranslated_keys
from tests.components.test_kafka_resources import (
    GCP_BOOTSTRAP,
    GCP_NETWORK,
    MSK_BROKERS,
    NETWORK,
    KafkaMocks,
)

TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
CANARY = ModelDeploymentConfig.model_validate(
    {
        "stable": {"model_uri": "models:/churn@champion", "replicas": 3},
        "canary": {"model_uri": "models:/churn@challenger", "weight": 10},
        "mlflow_tracking_uri": TRACKING,
    }
)
STABLE_ONLY = ModelDeploymentConfig.model_validate(
    {"stable": {"model_uri": "models:/churn/4"}, "mlflow_tracking_uri": TRACKING}
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"


def _run(config, name="churn", with_namespace=True):
    """Build one ModelDeployment; return the recording monitor and the component."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        opts = None
        if with_namespace:
            namespace = k8s.core.v1.Namespace(
                "serving-namespace",
                metadata={"name": config.namespace},
                opts=pulumi.ResourceOptions(provider=provider),
            )
            opts = pulumi.ResourceOptions(depends_on=[namespace])
        built["component"] = ModelDeployment(
            name, ModelDeploymentArgs(config=config, kubernetes=provider), opts
        )

    monitor = mocks.run(program)
    return monitor, built["component"]


def _children(monitor, name="churn"):
    parent = monitor.named(name).urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)


def test_canary_creates_exactly_these_children():
    monitor, _ = _run(CANARY)
    component = monitor.named("churn")
    assert component.type == "mlops:serving:ModelDeployment"
    assert component.custom is False
    assert _children(monitor) == sorted(
        [
            (DEPLOYMENT, "churn-stable"),
            (DEPLOYMENT, "churn-canary"),
            (PDB, "churn-stable-pdb"),
            (PDB, "churn-canary-pdb"),
            (SERVICE, "churn-service"),
            (DESTINATION_RULE, "churn-destination-rule"),
            (VIRTUAL_SERVICE, "churn-virtual-service"),
            (POD_MONITOR, "churn-pod-monitor"),
            (NETWORK_POLICY, "churn-deny-network-policy"),
            (AUTHORIZATION_POLICY, "churn-authorization-policy"),
        ]
    )


def test_stable_only_with_autoscaling():
    config = STABLE_ONLY.model_copy(update={"autoscaling": model.AutoscalingConfig()})
    monitor, _ = _run(config, name="fraud")
    assert _children(monitor, "fraud") == sorted(
        [
            (DEPLOYMENT, "fraud-stable"),
            (PDB, "fraud-stable-pdb"),
            (SERVICE, "fraud-service"),
            (DESTINATION_RULE, "fraud-destination-rule"),
            (VIRTUAL_SERVICE, "fraud-virtual-service"),
            (POD_MONITOR, "fraud-pod-monitor"),
            (HPA, "fraud-stable-hpa"),
            (NETWORK_POLICY, "fraud-deny-network-policy"),
            (AUTHORIZATION_POLICY, "fraud-authorization-policy"),
        ]
    )
    hpa = monitor.named("fraud-stable-hpa")
    assert hpa.inputs["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fraud-stable",
    }
    assert monitor.named("fraud-stable").urn in hpa.depends_on
    assert "replicas" not in monitor.named("fraud-stable").inputs["spec"]


def test_inputs_are_the_rendered_objects_on_the_explicit_provider():
    monitor, _ = _run(CANARY)
    rendered = model.render("churn", CANARY)
    expected = {
        "churn-stable": rendered.deployments["stable"],
        "churn-canary": rendered.deployments["canary"],
        "churn-stable-pdb": rendered.pod_disruption_budgets["stable"],
        "churn-canary-pdb": rendered.pod_disruption_budgets["canary"],
        "churn-service": rendered.service,
        "churn-destination-rule": rendered.destination_rule,
        "churn-virtual-service": rendered.virtual_service,
        "churn-pod-monitor": rendered.pod_monitor,
    }
    parent = monitor.named("churn").urn
    for child_name, obj in expected.items():
        record = monitor.named(child_name)
        assert record.inputs == obj, child_name
        assert record.parent == parent, child_name
        assert record.provider is not None and record.provider.endswith("::k8s::k8s-id")
        assert untranslated_keys(record.inputs) == [], child_name
        assert record.secret_inputs == set(), child_name


def test_built_in_objects_validate_as_registered(crds_dir):
    monitor, _ = _run(CANARY.model_copy(update={"autoscaling": model.AutoscalingConfig()}))
    checked = 0
    for record in monitor.recorded:
        if record.parent == monitor.named("churn").urn and "istio" not in record.type:
            manifests.validate(record.inputs)
            checked += 1
    assert checked == 8  # 2 Deployments, 2 PDBs, Service, PodMonitor, HPA, NetworkPolicy


def test_deployments_serve_their_track():
    monitor, _ = _run(CANARY)
    for track, uri, replicas in (
        ("stable", "models:/churn@champion", 3),
        ("canary", "models:/churn@challenger", 1),
    ):
        record = monitor.named(f"churn-{track}")
        spec = record.inputs["spec"]
        assert record.inputs["metadata"]["name"] == f"churn-{track}"
        assert record.inputs["metadata"]["namespace"] == "serving"
        assert spec["replicas"] == replicas
        assert spec["selector"]["matchLabels"]["track"] == track
        [container] = spec["template"]["spec"]["containers"]
        assert container["image"] == "ghcr.io/mlops-platform/model-server:0.1.0"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MLOPS_SERVE_MODEL_URI"] == uri
        assert env["MLOPS_SERVE_MODEL_NAME"] == "churn"
        assert env["MLFLOW_TRACKING_URI"] == TRACKING
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["template"]["spec"]["automountServiceAccountToken"] is False


def test_virtual_service_weights_and_ordering():
    monitor, _ = _run(CANARY)
    virtual_service = monitor.named("churn-virtual-service")
    assert virtual_service.inputs["apiVersion"] == "networking.istio.io/v1"
    assert virtual_service.inputs["kind"] == "VirtualService"
    route = virtual_service.inputs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [
        ("stable", 90),
        ("canary", 10),
    ]
    # Traffic moves after the subsets exist and both rollouts are ready.
    for dependency in ("churn-destination-rule", "churn-stable", "churn-canary"):
        assert monitor.named(dependency).urn in virtual_service.depends_on
    destination_rule = monitor.named("churn-destination-rule")
    assert [s["name"] for s in destination_rule.inputs["spec"]["subsets"]] == [
        "stable",
        "canary",
    ]


def test_without_canary_everything_goes_to_stable():
    monitor, component = _run(STABLE_ONLY)
    route = monitor.named("churn-virtual-service").inputs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [
        ("stable", 100),
        ("canary", 0),
    ]
    assert monitor.of_type(DEPLOYMENT) == [monitor.named("churn-stable")]
    assert output_value(component.canary_weight) == 0


def test_namespace_dependency_reaches_every_kubernetes_object():
    monitor, _ = _run(CANARY)
    namespace = monitor.named("serving-namespace").urn
    children = [r for r in monitor.recorded if r.parent == monitor.named("churn").urn]
    assert len(children) == 10
    for record in children:
        assert namespace in record.depends_on, record.name


def test_outputs():
    _, component = _run(CANARY)
    assert output_value(component.service_name) == "churn"
    assert output_value(component.namespace) == "serving"
    assert output_value(component.url) == "http://churn.serving.svc.cluster.local:8080"
    assert output_value(component.canary_weight) == 10
    assert output_value(component.model_name) == "churn"
    assert isinstance(component, pulumi.ComponentResource)


def test_other_namespace_and_port_reach_the_url():
    config = CANARY.model_copy(update={"namespace": "models", "port": 9000})
    monitor, component = _run(config, name="churn-eu")
    assert output_value(component.url) == "http://churn-eu.models.svc.cluster.local:9000"
    service = monitor.named("churn-eu-service").inputs
    assert service["metadata"]["namespace"] == "models"
    assert service["spec"]["ports"][0]["port"] == 9000


@pytest.mark.parametrize(
    ("name", "provider", "message"),
    [
        (
            "Churn",
            True,
            "serving.Churn: a deployment name is 1-56 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        ("churn", False, "ModelDeploymentArgs.kubernetes: a Kubernetes provider is required"),
    ],
)
def test_invalid_input_fails_before_anything_is_registered(name, provider, message):
    errors = []

    def program():
        kubernetes = k8s.Provider("k8s", kubeconfig="{}") if provider else None
        try:
            ModelDeployment(name, ModelDeploymentArgs(config=CANARY, kubernetes=kubernetes))
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [message]
    assert [r.type for r in monitor.recorded] == (["pulumi:providers:kubernetes"] * provider)


# --- prediction log wired to the platform's Kafka, per cloud ----------------------------------

WIRED = ModelDeploymentConfig.model_validate(
    {
        "stable": {"model_uri": "models:/churn@champion"},
        "mlflow_tracking_uri": TRACKING,
        "prediction_sink": "kafka",
        "service_account": "model-server",
    }
)
SERVING_IDENTITY = WorkloadIdentityConfig(
    namespace="serving", service_account="model-server", buckets={"artifacts": "read"}
)
STORAGE = StorageConfig(bucket_prefix="acme-dev", buckets={"artifacts": {}})
KAFKA_CONFIG = KafkaConfig(
    brokers=3, topics={"predictions": {}}, backend={"type": "strimzi", "users": []}
)


@dataclass
class FakeCluster:
    """What WorkloadIdentity reads from the cluster component."""

    provider: k8s.Provider
    oidc_provider_arn: str = "arn:aws:iam::123456789012:oidc-provider/oidc.eks/id/ABC"
    oidc_issuer: str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
    workload_pool: str = "acme-ml.svc.id.goog"


MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/mlops/4f1c-7"


class WiredMocks(KafkaMocks):
    """The Kafka mocks, with a real-shaped MSK cluster ARN (topic ARNs derive from it)."""

    def new_resource(self, args):
        resource_id, outputs = super().new_resource(args)
        if args.typ == "aws:msk/cluster:Cluster":
            outputs["arn"] = MSK_ARN
        return resource_id, outputs


def _run_wired(cloud):
    """Kafka cluster, its client for the deployment, the deployment's identity carrying the
    client's grant, and the deployment with the client's wiring: what program.py composes."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        namespace = k8s.core.v1.Namespace(
            "serving-namespace",
            metadata={"name": "serving"},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        store = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=cloud,
                config=STORAGE,
                kubernetes=provider,
                identities={"serving": SERVING_IDENTITY},
            ),
        )
        kafka = KafkaCluster(
            "kafka",
            KafkaClusterArgs(
                cloud=cloud,
                config=KAFKA_CONFIG,
                kubernetes=provider,
                network={"aws": NETWORK, "gcp": GCP_NETWORK}.get(cloud.type),
            ),
        )
        client = KafkaClient(
            "serving-churn",
            KafkaClientArgs(cluster=kafka, namespace="serving", write_topics=["predictions"]),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )
        identity = WorkloadIdentity(
            "serving",
            WorkloadIdentityArgs(
                cloud=cloud,
                config=SERVING_IDENTITY,
                storage=store,
                cluster=FakeCluster(provider=provider),
                grants={"kafka": client.grant},
            ),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )
        built["deployment"] = ModelDeployment(
            "churn",
            ModelDeploymentArgs(config=WIRED, kubernetes=provider, kafka=client.wiring),
            pulumi.ResourceOptions(depends_on=[namespace, identity]),
        )

    return run_with_mocks(program, WiredMocks())


def _kafka_env(monitor):
    [container] = monitor.named("churn-stable").inputs["spec"]["template"]["spec"]["containers"]
    return [e for e in container["env"] if e["name"].startswith("MLOPS_SERVE_KAFKA_")]


def test_aws_wired_deployment_signs_msk_tokens_with_its_irsa_role():
    monitor = _run_wired(AwsCloud(type="aws", region="us-east-1"))
    assert _kafka_env(monitor) == [
        {"name": "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS", "value": MSK_BROKERS},
        {"name": "MLOPS_SERVE_KAFKA_TOPIC", "value": "predictions"},
        {"name": "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_MECHANISM", "value": "OAUTHBEARER-AWS-MSK-IAM"},
        {"name": "MLOPS_SERVE_KAFKA_AWS_REGION", "value": "us-east-1"},
    ]
    deployment = monitor.named("churn-stable")
    assert deployment.inputs["spec"]["template"]["spec"]["serviceAccountName"] == "model-server"
    # The MSK policy is its own inline policy on the serving identity's role.
    grant = monitor.named("serving-kafka")
    assert grant.type == "aws:iam/rolePolicy:RolePolicy"
    assert grant.parent == monitor.named("serving").urn
    assert grant.inputs["role"] == "serving-role-id"
    assert json.loads(grant.inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Connect",
                "Effect": "Allow",
                "Action": ["kafka-cluster:Connect"],
                "Resource": [MSK_ARN],
            },
            {
                "Sid": "WriteTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                "Resource": ["arn:aws:kafka:us-east-1:123456789012:topic/mlops/4f1c-7/predictions"],
            },
        ],
    }
    # the bucket policy is untouched and the pods wait for the identity (and so the grant)
    buckets = json.loads(monitor.named("serving-buckets").inputs["policy"])
    assert not any("kafka" in str(s["Action"]) for s in buckets["Statement"])
    assert grant.urn in deployment.depends_on


def test_gcp_wired_deployment_uses_its_google_service_account():
    monitor = _run_wired(GcpCloud(type="gcp", project="acme-ml", region="europe-west4"))
    assert _kafka_env(monitor) == [
        {"name": "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS", "value": f"{GCP_BOOTSTRAP}:9092"},
        {"name": "MLOPS_SERVE_KAFKA_TOPIC", "value": "predictions"},
        {"name": "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_MECHANISM", "value": "OAUTHBEARER-GCP-IAM"},
    ]
    member = monitor.named("serving-kafka-managedkafka-client")
    assert member.type == "gcp:projects/iAMMember:IAMMember"
    assert member.parent == monitor.named("serving").urn
    assert member.inputs == {
        "project": "acme-ml",
        "role": "roles/managedkafka.client",
        "member": "serviceAccount:wi-serving@project.iam.gserviceaccount.com",
    }
    assert member.urn in monitor.named("churn-stable").depends_on


@pytest.fixture(scope="module")
def local_wired():
    return _run_wired(LocalCloud(type="local"))


def test_local_wired_deployment_reads_password_and_ca_from_its_namespace(local_wired, crds_dir):
    monitor = local_wired
    assert _kafka_env(monitor) == [
        {
            "name": "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS",
            "value": "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093",
        },
        {"name": "MLOPS_SERVE_KAFKA_TOPIC", "value": "predictions"},
        {"name": "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "MLOPS_SERVE_KAFKA_SASL_USERNAME", "value": "serving-churn"},
        {
            "name": "MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE",
            "value": "/var/run/secrets/mlops/kafka-password/password",
        },
        {"name": "MLOPS_SERVE_KAFKA_CA_FILE", "value": "/etc/kafka-ca/ca.crt"},
    ]
    deployment = monitor.named("churn-stable")
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["volumes"][2] == {
        "name": "kafka-password",
        "secret": {
            "secretName": "kafka-serving-churn",
            "defaultMode": 0o440,
            "items": [{"key": "password", "path": "password"}],
        },
    }
    assert pod["volumes"][1] == {
        "name": "kafka-ca",
        "configMap": {
            "name": "kafka-serving-churn-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        },
    }
    assert pod["containers"][0]["volumeMounts"][1] == {
        "name": "kafka-ca",
        "mountPath": "/etc/kafka-ca",
        "readOnly": True,
    }
    # What the env names lives in the pod's namespace and exists before the pods start.
    password = monitor.named("serving-churn-password-copy")
    ca = monitor.named("serving-churn-ca")
    assert password.inputs["metadata"]["name"] == "kafka-serving-churn"
    assert ca.inputs["metadata"]["name"] == "kafka-serving-churn-ca"
    for record in (password, ca):
        assert record.inputs["metadata"]["namespace"] == "serving"
        assert record.urn in deployment.depends_on, record.name
    user = monitor.named("serving-churn-user")
    manifests.validate({k: user.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    manifests.validate(deployment.inputs)


def test_local_wired_no_password_in_plain_text_in_any_rendered_object(local_wired):
    monitor = local_wired
    generated = [r for r in monitor.recorded if r.type.startswith("random:")]
    secrets = {
        "mock-"
        + hashlib.sha1(f"{r.type}/{r.name}".encode()).hexdigest()[:12]  # the mocks' `result`
        for r in generated
    }
    assert len(secrets) == len(generated) >= 2  # the Kafka client's and MinIO's
    kafka_password = next(
        s for s in secrets if s in json.dumps(monitor.named("serving-churn-password-copy").inputs)
    )
    for record in monitor.recorded:
        shown = json.dumps(record.masked_inputs)
        for secret in secrets:
            assert secret not in shown, record.name
    # only the two Secrets carry the Kafka password, as secret inputs
    holders = [r.name for r in monitor.recorded if kafka_password in json.dumps(r.inputs)]
    assert sorted(holders) == ["serving-churn-password-copy", "serving-churn-password-source"]


def test_kafka_sink_without_brokers_or_wiring_fails_before_anything_is_registered():
    errors = []

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        try:
            ModelDeployment("churn", ModelDeploymentArgs(config=WIRED, kubernetes=provider))
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [
        "serving.churn.kafka_bootstrap_servers: required when prediction_sink is kafka and no "
        "platform Kafka client is wired (ModelDeploymentArgs.kafka)"
    ]
    assert [r.type for r in monitor.recorded] == ["pulumi:providers:kubernetes"]
