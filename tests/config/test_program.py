"""How `mlops_platform.program` composes the components: wiring between them, not their insides."""

import json
import re

import pytest

from mlops_platform import config, mocks, plan
from mlops_platform.components.monitoring import AlertsConfig
from mlops_platform.components.serving import ModelDeploymentConfig
from mlops_platform.components.serving.model import pod_monitor

LOCAL = {"type": "local", "kube_context": "kind-mlops", "distribution": "kind"}
IDENTITIES = {
    # an extra identity beside the platform's own (mlops_platform/wiring.py derives those)
    "other": {"namespace": "serving", "service_account": "other", "buckets": {"artifacts": "read"}},
}
SERVING = {
    "churn": {
        "namespace": "serving",
        "stable": {"model_uri": "models:/churn@champion"},
        "canary": {"model_uri": "models:/churn@challenger", "weight": 10},
        "mlflow_tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
        "service_account": "model-server",
    }
}


def _run(**values):
    """Every layer of the platform under mocks, in deploy order, as one record."""
    layers = plan.run_layers(
        "wiring", {f"mlops:{key}": json.dumps(value) for key, value in values.items()}
    )
    return mocks.merged([monitor for _, monitor in layers])


def test_serving_deployment_waits_for_its_namespace_monitoring_and_identity():
    monitor = _run(cloud=LOCAL, workload_identities=IDENTITIES, serving=SERVING)
    deployment = monitor.named("churn")
    assert deployment.type == "mlops:serving:ModelDeployment"
    assert deployment.parent_type == "pulumi:pulumi:Stack"
    # depends_on a component means on each of its children (as the engine records it)
    waits_for = {urn.split("::")[-1] for urn in deployment.depends_on}
    assert "mlops-serving" in waits_for  # its namespace
    # the PodMonitor CRD comes with the monitoring chart, a layer deployed before
    assert deployment.layer == "ml"
    assert monitor.named("mlops-monitoring-kube-prometheus-stack").layer == "platform"
    assert {"serving-service-account", "serving-s3-credentials"} <= waits_for
    assert not any(name.startswith("other-") for name in waits_for)  # not the other identity
    namespaces = {
        r.inputs["metadata"]["name"] for r in monitor.of_type("kubernetes:core/v1:Namespace")
    }
    assert {"serving", "monitoring"} <= namespaces


def test_every_stack_gets_monitoring_and_no_serving_unless_declared():
    monitor = _run(cloud=LOCAL)
    (observability,) = monitor.of_type("mlops:monitoring:Observability")
    assert observability.name == "mlops-monitoring"
    assert monitor.of_type("mlops:serving:ModelDeployment") == []


def test_a_serving_service_account_gets_its_identity_derived():
    platform = config.validate(
        {
            "mlops:cloud": LOCAL,
            "mlops:serving": {"churn": {**SERVING["churn"], "service_account": "scorer"}},
        },
        source="stacks/Pulumi.x.yaml",
    )
    identity = platform.workload_identities["serving"]
    assert (identity.namespace, identity.service_account) == ("serving", "scorer")


def test_the_alert_rules_select_the_job_the_serving_pod_monitor_produces():
    # prometheus-operator names a PodMonitor target's job after the pod label in `jobLabel`.
    monitor_spec = pod_monitor("churn", ModelDeploymentConfig.model_validate(SERVING["churn"]))[
        "spec"
    ]
    job = "model-server"  # the value of that label on every model-server pod
    assert monitor_spec["jobLabel"] == "app.kubernetes.io/name"
    assert re.fullmatch(AlertsConfig().model_server_job, job)


AWS = {"type": "aws", "region": "us-east-1"}


def test_msk_sits_in_the_cluster_private_subnets_reachable_from_the_cluster_group():
    monitor = _run(cloud=AWS, cluster={"name": "wiring"})
    (msk,) = monitor.of_type("aws:msk/cluster:Cluster")
    assert msk.parent_type == "mlops:kafka:KafkaCluster"
    private = sorted(
        r.name for r in monitor.of_type("aws:ec2/subnet:Subnet") if "private" in r.name
    )
    assert msk.inputs["brokerNodeGroupInfo"]["clientSubnets"] == [f"{n}-id" for n in private]
    eks = monitor.named("mlops-eks")
    cluster_group = mocks._fake_outputs(eks.type, eks.name, {})["vpcConfig"][
        "clusterSecurityGroupId"
    ]
    ingress = [
        rule
        for rule in monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule.parent_type == "mlops:kafka:KafkaCluster"
    ]
    assert [rule.inputs["referencedSecurityGroupId"] for rule in ingress] == [cluster_group]


def test_mlflow_database_sits_in_the_cluster_network_reachable_from_the_cluster_group():
    monitor = _run(cloud=AWS, cluster={"name": "wiring"})
    (database,) = monitor.of_type("aws:rds/instance:Instance")
    assert database.parent_type == "mlops:mlflow:TrackingServer"
    (subnets,) = monitor.of_type("aws:rds/subnetGroup:SubnetGroup")
    private = sorted(
        r.name for r in monitor.of_type("aws:ec2/subnet:Subnet") if "private" in r.name
    )
    assert subnets.inputs["subnetIds"] == [f"{n}-id" for n in private]
    eks = monitor.named("mlops-eks")
    cluster_group = mocks._fake_outputs(eks.type, eks.name, {})["vpcConfig"][
        "clusterSecurityGroupId"
    ]
    ingress = [
        rule
        for rule in monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule.parent_type == "mlops:mlflow:TrackingServer"
    ]
    assert [rule.inputs["referencedSecurityGroupId"] for rule in ingress] == [cluster_group]
    assert [rule.inputs["fromPort"] for rule in ingress] == [5432]
    # its Kubernetes objects wait for the namespace and the identity of the server
    (server,) = monitor.of_type("mlops:mlflow:TrackingServer")
    waits_for = {urn.split("::")[-1] for urn in server.depends_on}
    assert {"mlops-mlflow", "mlflow-service-account"} <= waits_for


def test_kafka_brokers_must_spread_evenly_over_the_cluster_zones():
    with pytest.raises(config.ConfigError) as caught:
        config.validate(
            {
                "mlops:cloud": AWS,
                "mlops:cluster": {"network": {"availability_zones": 2}},
                "mlops:kafka": {"brokers": 3},
            },
            source="stacks/Pulumi.x.yaml",
        )
    assert caught.value.problems == [
        ("mlops:kafka.brokers", "3 brokers must be a multiple of the 2 zones MSK uses")
    ]


def test_serving_waits_for_istiod_and_needs_the_mesh():
    monitor = _run(cloud=LOCAL, workload_identities=IDENTITIES, serving=SERVING)
    waits_for = {urn.split("::")[-1] for urn in monitor.named("churn").depends_on}
    (istiod,) = [
        r for r in monitor.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "istiod"
    ]
    # istiod (sidecar injection, the mesh CRDs) is up before: the platform layer runs first
    assert istiod.name not in waits_for
    assert (istiod.layer, monitor.named("churn").layer) == ("platform", "ml")
    with pytest.raises(config.ConfigError) as caught:
        config.validate(
            {
                "mlops:cloud": LOCAL,
                "mlops:workload_identities": IDENTITIES,
                "mlops:mesh": {"enabled": False},
                "mlops:serving": SERVING,
            },
            source="stacks/Pulumi.x.yaml",
        )
    assert caught.value.problems == [
        (
            "mlops:serving.churn",
            "routes its traffic with Istio (DestinationRule, VirtualService), but mesh.enabled "
            "is false",
        )
    ]
    without_mesh = _run(cloud=LOCAL, mesh={"enabled": False})
    assert without_mesh.of_type("mlops:mesh:IstioMesh") == []


def test_serving_credentials_come_from_an_mlflow_client_in_its_namespace():
    values = {
        "mlops:cloud": LOCAL,
        "mlops:workload_identities": IDENTITIES,
        "mlops:serving": {"churn": {**SERVING["churn"], "credentials_secret": "mlflow-other"}},
    }
    with pytest.raises(config.ConfigError) as caught:
        config.validate(values, source="stacks/Pulumi.x.yaml")
    assert caught.value.problems == [
        (
            "mlops:serving.churn.credentials_secret",
            "'mlflow-other' is not the Secret of any mlflow.clients entry in namespace 'serving'",
        )
    ]
    # by default: the Secret of the MLflow client the platform derives for the namespace
    del values["mlops:serving"]["churn"]["credentials_secret"]
    platform = config.validate(values, source="x")
    assert platform.serving["churn"].credentials_secret == "mlflow-client-credentials"
    assert platform.mlflow.clients["serving"].namespace == "serving"


def test_mlflow_client_secrets_land_in_created_namespaces_before_the_server_runs():
    monitor = _run(
        cloud=LOCAL,
        workload_identities=IDENTITIES,
        mlflow={"clients": {"scoring": {"namespace": "scoring", "permission": "READ"}}},
    )
    namespaces = {
        r.inputs["metadata"]["name"] for r in monitor.of_type("kubernetes:core/v1:Namespace")
    }
    assert "scoring" in namespaces  # no identity lives there: the client alone creates it
    (server,) = monitor.of_type("mlops:mlflow:TrackingServer")
    assert "mlops-scoring" in {urn.split("::")[-1] for urn in server.depends_on}
    (secret,) = [
        r
        for r in monitor.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"].get("namespace") == "scoring"
    ]
    assert secret.parent_type == "mlops:mlflow:TrackingServer"


def _kafka_serving(cloud, **extra):
    identities = IDENTITIES
    deployment = {**SERVING["churn"], "prediction_sink": "kafka", "credentials_secret": None}
    return _run(
        cloud=cloud,
        workload_identities=identities,
        serving={"churn": deployment},
        **extra,
    )


def _env(monitor, name):
    container = monitor.named(name).inputs["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_serving_logs_predictions_to_msk_through_its_irsa_role():
    monitor = _kafka_serving(AWS, cluster={"name": "wiring"})
    clients = sorted(client.name for client in monitor.of_type("mlops:kafka:KafkaClient"))
    # the serving deployment writes, the loop's consumer reads predictions and labels
    assert clients == ["prediction-log", "serving-churn"]
    consumer = monitor.named("prediction-log-kafka-prediction-log")
    read = json.loads(consumer.inputs["policy"])["Statement"]
    topics = {
        arn.rsplit("/", 1)[1] for st in read if st["Sid"] == "ReadTopics" for arn in st["Resource"]
    }
    assert topics == {"labels", "predictions"}
    policy = monitor.named("serving-kafka-churn")  # the grant, inline on the serving role
    assert policy.type == "aws:iam/rolePolicy:RolePolicy"
    assert policy.parent_type == "mlops:identity:WorkloadIdentity"
    statements = json.loads(policy.inputs["policy"])["Statement"]
    actions = {action for statement in statements for action in statement["Action"]}
    assert "kafka-cluster:WriteData" in actions
    assert not any(name.startswith("other-kafka") for name in (r.name for r in monitor.recorded))
    env = _env(monitor, "churn-stable")
    assert env["MLOPS_SERVE_PREDICTION_SINK"] == "kafka"
    assert env["MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["MLOPS_SERVE_KAFKA_SASL_MECHANISM"] == "OAUTHBEARER-AWS-MSK-IAM"
    assert env["MLOPS_SERVE_KAFKA_TOPIC"] == "predictions"


def test_serving_logs_predictions_to_strimzi_with_a_scram_user_in_its_namespace():
    monitor = _kafka_serving(LOCAL)
    env = _env(monitor, "churn-stable")
    assert env["MLOPS_SERVE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # The password is the client Secret's key, mounted read-only; never in the environment.
    assert "MLOPS_SERVE_KAFKA_SASL_PASSWORD" not in env
    assert env["MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE"] == (
        "/var/run/secrets/mlops/kafka-password/password"
    )
    volumes = monitor.named("churn-stable").inputs["spec"]["template"]["spec"]["volumes"]
    assert {"name": "kafka-password", "secret": {
        "secretName": "kafka-serving-churn",
        "defaultMode": 0o440,
        "items": [{"key": "password", "path": "password"}],
    }} in volumes  # fmt: skip
    users = monitor.of_type("kubernetes:kafka.strimzi.io/v1:KafkaUser")
    (user,) = [u for u in users if u.inputs["metadata"]["name"] == "serving-churn"]
    assert user.parent_type == "mlops:kafka:KafkaClient"


def test_kafka_sink_on_a_cloud_needs_the_serving_identity():
    with pytest.raises(config.ConfigError) as caught:
        config.validate(
            {
                "mlops:cloud": AWS,
                "mlops:serving": {
                    "churn": {
                        **SERVING["churn"],
                        "prediction_sink": "kafka",
                        "service_account": None,
                    }
                },
            },
            source="stacks/Pulumi.x.yaml",
        )
    assert caught.value.problems == [
        (
            "mlops:serving.churn.service_account",
            "required to log predictions to the platform's Kafka: its workload identity "
            "carries the Kafka grant (MSK IAM, Managed Kafka)",
        ),
    ]


PROGRESSIVE = {
    "churn": {
        **{k: v for k, v in SERVING["churn"].items() if k != "canary"},
        "progressive": {},
    }
}
LOOP_CLIENT = {"clients": {"loop": {"namespace": "mlops-loop", "permission": "EDIT"}}}


def test_progressive_serving_waits_for_flagger_which_queries_the_platform_prometheus():
    monitor = _run(
        cloud=LOCAL,
        workload_identities=IDENTITIES,
        serving=PROGRESSIVE,
        delivery={"enabled": True},
        mlflow=LOOP_CLIENT,
    )
    waits_for = {urn.split("::")[-1] for urn in monitor.named("churn").depends_on}
    # Flagger (the Canary CRD) is deployed with the platform layer, before the ml layer
    assert not {"mlops-delivery-flagger", "mlops-delivery-load-tester"} & waits_for
    assert monitor.named("mlops-delivery-flagger").layer == "platform"
    (flagger,) = [
        r
        for r in monitor.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "flagger"
    ]
    prometheus = "http://monitoring-prometheus.monitoring.svc.cluster.local:9090"
    assert flagger.inputs["values"]["metricsServer"] == prometheus
    flagger_waits = {urn.split("::")[-1] for urn in flagger.depends_on}
    assert "mlops-mesh-istiod" in flagger_waits
    assert "mlops-monitoring-kube-prometheus-stack" in flagger_waits
    (template,) = [
        r
        for r in monitor.of_type("kubernetes:flagger.app/v1beta1:MetricTemplate")
        if r.name == "churn-success-rate-metric"
    ]
    assert template.inputs["spec"]["provider"]["address"] == prometheus
    (canary,) = monitor.of_type("kubernetes:flagger.app/v1beta1:Canary")
    hooks = {h["name"]: h["url"] for h in canary.inputs["spec"]["analysis"]["webhooks"]}
    loop = "http://retrain-receiver.mlops-loop.svc.cluster.local:8080"
    assert hooks == {
        "golden-set-gate": f"{loop}/flagger/gate",
        "registry": f"{loop}/flagger/settle",
        "golden-set-load": "http://flagger-loadtester.flagger-system/",
    }
    # The loop service may patch the release ConfigMap, and moves aliases as its MLflow client.
    (role,) = monitor.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["metadata"]["namespace"] == "serving"
    assert role.inputs["rules"][0]["resourceNames"] == ["churn-model"]
    (receiver,) = [
        r
        for r in monitor.of_type("kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == "retrain-receiver"
    ]
    pod = receiver.inputs["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "envFrom" not in container  # MLflow's credentials file, mounted under HOME
    assert {"name": "mlflow-credentials", "mountPath": "/tmp/.mlflow", "readOnly": True} in (
        container["volumeMounts"]
    )
    [volume] = [v for v in pod["volumes"] if v["name"] == "mlflow-credentials"]
    assert volume["secret"]["secretName"] == "mlflow-client-credentials"


def test_progressive_serving_needs_flagger():
    with pytest.raises(config.ConfigError) as caught:
        config.validate(
            {
                "mlops:cloud": LOCAL,
                "mlops:workload_identities": IDENTITIES,
                "mlops:serving": PROGRESSIVE,
            },
            source="stacks/Pulumi.x.yaml",
        )
    assert caught.value.problems == [
        (
            "mlops:serving.churn.progressive",
            "Flagger runs the analysis, but delivery.enabled is false",
        ),
    ]
    assert _run(cloud=LOCAL).of_type("mlops:delivery:ProgressiveDelivery") == []


def test_tracing_is_wired_from_the_monitoring_config_alone():
    """One stack setting turns on the backend, the mesh's provider and Telemetry, and the
    model servers' exporter; every address is derived from the monitoring namespace."""
    tracing = {"namespace": "observability", "tracing": {"enabled": True, "sampling_percent": 5}}
    monitor = _run(cloud=LOCAL, workload_identities=IDENTITIES, serving=SERVING, monitoring=tracing)
    backend = monitor.named("mlops-monitoring-jaeger")
    assert backend.layer == "platform"
    assert backend.inputs["metadata"]["namespace"] == "observability"
    (istiod,) = [
        r for r in monitor.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "istiod"
    ]
    assert istiod.inputs["values"]["meshConfig"]["extensionProviders"] == [
        {
            "name": "otel-tracing",
            "opentelemetry": {"service": "jaeger.observability.svc.cluster.local", "port": 4317},
        }
    ]
    telemetry = monitor.named("mlops-mesh-telemetry")
    assert telemetry.layer == "ml"
    assert telemetry.inputs["spec"]["tracing"][0]["randomSamplingPercentage"] == 5
    for track in ("churn-stable", "churn-canary"):
        (container,) = monitor.named(track).inputs["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            "http://jaeger.observability.svc.cluster.local:4318"
        ), track
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.05", track

    off = _run(cloud=LOCAL, workload_identities=IDENTITIES, serving=SERVING)
    assert off.of_type("mlops:mesh:MeshTracing") == []
    assert not [r for r in off.recorded if "jaeger" in r.name]
    (container,) = off.named("churn-stable").inputs["spec"]["template"]["spec"]["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("OTEL_")]
