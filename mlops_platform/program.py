"""The Pulumi program of each layer: validate the stack config once, then compose.

The platform is three stacks per environment, one per layer, deployed in this order:

- **infra** (`deploy/infra`, project `mlops-infra`): network, cluster, GPU pools, object store.
- **platform** (`deploy/platform`, `mlops-platform`): the add-ons that bring CRDs and
  controllers: Istio, kube-prometheus-stack, Flagger, Kubeflow Pipelines, metrics-server, and
  the Strimzi operator where Kafka runs in the cluster.
- **ml** (`deploy/ml`, `mlops-ml`): namespaces, workload identities, Kafka, MLflow, Feast, the
  loop and the serving deployments, and every custom resource of the platform's CRDs (the
  alert rules, mesh-wide mTLS, Strimzi's Kafka objects): no layer plans a custom resource next
  to the release that installs its CRD.

Every project's `main` is this checkout's `__main__.py`, which calls `main()`: the layer is the
project's. A later layer reads an earlier one through a `StackReference` (`mlops_platform/handoff.py`);
what waits for what is derived from the config (`mlops_platform/wiring.py`). `mlops plan` runs the same
programs under mocks, layer after layer.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from mlops_platform import config, handoff, wiring
from mlops_platform.components.cluster import KubernetesCluster, KubernetesClusterArgs
from mlops_platform.components.delivery import (
    ProgressiveDelivery,
    ProgressiveDeliveryArgs,
    load_tester_url,
)
from mlops_platform.components.drift_monitor import DriftMonitor, DriftMonitorArgs, monitored_models
from mlops_platform.components.feast import FeatureStore, FeatureStoreArgs
from mlops_platform.components.feast import registry_uri as feast_registry_uri
from mlops_platform.components.gpu import GpuNodePools, GpuNodePoolsArgs
from mlops_platform.components.identity import (
    WorkloadIdentity,
    WorkloadIdentityArgs,
    credentials_secret_name,
)
from mlops_platform.components.images import configured_images, policy_for, register
from mlops_platform.components.kafka import (
    KafkaClient,
    KafkaClientArgs,
    KafkaCluster,
    KafkaClusterArgs,
    StrimziOperator,
    StrimziOperatorArgs,
)
from mlops_platform.components.loop import (
    TOKEN_LENGTH,
    PredictionLogConsumer,
    PredictionLogConsumerArgs,
    Release,
    ReleaseWiring,
    RetrainReceiver,
    RetrainReceiverArgs,
)
from mlops_platform.components.loop import receiver_url as loop_receiver_url
from mlops_platform.components.loop import service_url as loop_service_url
from mlops_platform.components.mesh import (
    IstioMesh,
    IstioMeshArgs,
    MeshMutualTls,
    MeshMutualTlsArgs,
    MeshTracing,
    MeshTracingArgs,
)
from mlops_platform.components.metrics_server import MetricsServer, MetricsServerArgs, hpa_sources
from mlops_platform.components.metrics_server import decide as decide_metrics_server
from mlops_platform.components.mlflow import TrackingServer, TrackingServerArgs
from mlops_platform.components.mlflow import tracking_uri as mlflow_tracking_uri
from mlops_platform.components.monitoring import (
    ModelAlerts,
    ModelAlertsArgs,
    Observability,
    ObservabilityArgs,
    RetrainWebhook,
    prometheus_url,
)
from mlops_platform.components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from mlops_platform.components.pipelines import KubeflowPipelines, KubeflowPipelinesArgs
from mlops_platform.components.pipelines import api_endpoint as pipelines_api_endpoint
from mlops_platform.components.providers import cloud_provider
from mlops_platform.components.serving import (
    FlaggerWiring,
    ModelDeployment,
    ModelDeploymentArgs,
    served_model_name,
)
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs
from mlops_platform.wiring import LAYERS, Node

NAME = "mlops"


def main(layer: str | None = None) -> None:
    """Run one layer's program: `layer`, else the one of the current project."""
    layer = layer or handoff.layer_of_project(pulumi.get_project())
    if layer not in LAYERS:
        raise pulumi.RunError(
            f"project {pulumi.get_project()!r} is not a layer of the platform: run pulumi in "
            f"deploy/<layer> ({', '.join(LAYERS)}), e.g. `pulumi -C deploy/infra up`"
        )
    try:
        platform = config.from_pulumi_runtime()
    except config.ConfigError as exc:
        # RunError is reported by the engine as a clean message, without a Python stack trace,
        # and nothing has been registered yet.
        raise pulumi.RunError(str(exc)) from None
    # The stack's image policy (lock digests, mirror) applies to everything registered below.
    register(
        policy_for(platform.images.mirror),
        [value for _, value, _ in configured_images(platform)],
    )
    COMPOSERS[layer](platform)


def _reference(layer: str) -> pulumi.StackReference:
    """The same environment's stack of an earlier layer."""
    name = handoff.reference_name(pulumi.get_organization(), layer, pulumi.get_stack())
    return pulumi.StackReference(name)


class _Made:
    """The resources created so far in this layer, by wiring node (`mlops_platform/wiring.py`)."""

    def __init__(self, platform: config.PlatformConfig):
        self.edges = wiring.graph(platform)
        self.nodes: dict[Node, list[pulumi.Resource]] = {}

    def add(self, node: Node, *resources: pulumi.Resource | None) -> None:
        self.nodes[node] = [r for r in resources if r is not None]

    def waits(self, node: Node) -> pulumi.ResourceOptions:
        """`depends_on` of `node`: what it waits for in this layer (earlier layers are up)."""
        return pulumi.ResourceOptions(
            depends_on=[r for wait in wiring.same_layer(self.edges, node) for r in self.nodes[wait]]
        )


def compose_infra(platform: config.PlatformConfig) -> None:
    """Network, cluster, GPU pools and the object store."""
    cloud = platform.cloud
    provider = cloud_provider(NAME, cloud)
    on_cloud = pulumi.ResourceOptions(providers=[provider] if provider else None)
    cluster = KubernetesCluster(
        NAME,
        KubernetesClusterArgs(
            cloud=cloud, config=platform.cluster, protect=platform.protect_stateful
        ),
        on_cloud,
    )
    attached = wiring.network_attached(platform)
    GpuNodePools(
        f"{NAME}-gpu",
        GpuNodePoolsArgs(
            cloud=cloud,
            pools=platform.gpu_pools,
            kubernetes=cluster.provider,
            network=cluster.network if "gpu" in attached else None,
            nodes=cluster.node_access,
        ),
        on_cloud,
    )
    store = ObjectStore(
        NAME,
        ObjectStoreArgs(
            cloud=cloud,
            config=platform.storage,
            protect=platform.protect_stateful,
            kubernetes=cluster.provider,
            identities=platform.workload_identities,
        ),
        on_cloud,
    )
    pulumi.export("cloud", cloud.type)
    pulumi.export("cluster_endpoint", cluster.endpoint)
    for key, value in handoff.cluster_exports(cluster).items():
        pulumi.export(key, value)
    for key, value in handoff.storage_exports(store, platform.workload_identities).items():
        pulumi.export(key, value)
    pulumi.export("bucket_uris", store.bucket_uris)
    pulumi.export("storage_endpoint", store.endpoint)


def compose_platform(platform: config.PlatformConfig) -> None:
    """The add-ons whose CRDs and controllers the ml layer's resources need."""
    cloud = platform.cloud
    infra = _reference("infra")
    cluster = handoff.cluster_from(infra, platform, f"{NAME}-k8s")
    store = handoff.storage_from(infra, platform)
    made = _Made(platform)
    pipelines = KubeflowPipelines(
        f"{NAME}-pipelines",
        KubeflowPipelinesArgs(
            config=platform.pipelines,
            cloud=cloud,
            storage=store,
            kubernetes=cluster.provider,
            identities=platform.workload_identities,
            # Schedules run against the platform's MLflow and the prediction log's windows.
            parameter_defaults={
                "tracking_uri": mlflow_tracking_uri(platform.mlflow.namespace),
                "bucket_uri": store.bucket_uris[platform.loop.bucket],
                # One detector config for the alert, the runs it starts and the schedules.
                "drift_config": platform.loop.drift_monitor.settings.detector.model_dump_json(),
                # Training from the feature store reads the registry the feast component writes.
                "feast_registry_path": store.bucket_uris[platform.feast.registry.bucket].apply(
                    lambda uri: feast_registry_uri(uri, platform.feast.registry.path)
                ),
                "feast_project": platform.feast.project,
            },
        ),
    )
    made.add("pipelines", pipelines)
    mesh = (
        IstioMesh(
            f"{NAME}-mesh",
            IstioMeshArgs(
                config=platform.mesh,
                cloud=cloud,
                kubernetes=cluster.provider,
                tracing=wiring.tracing(platform),
            ),
        )
        if platform.mesh.enabled
        else None
    )
    made.add("mesh", *(mesh.ready if mesh is not None else []))
    # Alertmanager authenticates to the loop's retrain receiver (ml layer) with this token: it
    # is created here, with the monitoring release that mounts it, and handed to the ml layer.
    token = random.RandomPassword(f"{NAME}-loop-token", length=TOKEN_LENGTH, special=False)
    made.add("loop-token", token)
    monitoring = Observability(
        f"{NAME}-monitoring",
        ObservabilityArgs(
            config=platform.monitoring,
            kubernetes=cluster.provider,
            protect=platform.protect_stateful,
            retrain=RetrainWebhook(
                url=loop_receiver_url(platform.loop.namespace),
                token=pulumi.Output.secret(token.result),
            ),
        ),
        made.waits("monitoring"),
    )
    made.add("monitoring", monitoring)
    delivery = (
        ProgressiveDelivery(
            f"{NAME}-delivery",
            ProgressiveDeliveryArgs(
                config=platform.delivery,
                prometheus_url=monitoring.prometheus_url,
                kubernetes=cluster.provider,
            ),
            made.waits("delivery"),
        )
        if platform.delivery.enabled
        else None
    )
    made.add("delivery", delivery)
    # Strimzi's CRDs for the ml layer's Kafka custom resources (Kafka in the cluster).
    if wiring.strimzi(platform):
        made.add(
            "kafka-operator",
            StrimziOperator(
                f"{NAME}-kafka",
                StrimziOperatorArgs(config=platform.kafka, kubernetes=cluster.provider),
                made.waits("kafka-operator"),
            ),
        )
    # The metrics API behind every CPU HorizontalPodAutoscaler (serving, istiod), where the
    # cluster has none of its own (EKS, kind); the HPAs are in the ml layer, deployed after it.
    metrics = decide_metrics_server(
        cloud, platform.cluster.kubernetes_version, hpa_sources(platform.serving, platform.mesh)
    )
    if metrics.install:
        MetricsServer(
            f"{NAME}-metrics-server",
            MetricsServerArgs(decision=metrics, kubernetes=cluster.provider),
        )
    pulumi.export("cloud", cloud.type)
    pulumi.export("loop_token", pulumi.Output.secret(token.result))
    if mesh is not None:
        pulumi.export("mesh", {"namespace": mesh.namespace, "version": mesh.version})
    pulumi.export(
        "pipelines",
        {
            "api_endpoint": pipelines.api_endpoint,
            "ui_service": pipelines.ui_service,
            "pipeline_root": pipelines.pipeline_root,
        },
    )
    pulumi.export("prometheus_url", monitoring.prometheus_url)
    pulumi.export("alertmanager_url", monitoring.alertmanager_url)
    pulumi.export("grafana_service", monitoring.grafana_service)
    pulumi.export("grafana_admin_password", monitoring.grafana_admin_password)
    if monitoring.tracing_query_url is not None:
        pulumi.export("tracing_query_url", monitoring.tracing_query_url)


def compose_ml(platform: config.PlatformConfig) -> None:
    """The workloads: namespaces, identities, Kafka, MLflow, Feast, the loop and serving."""
    cloud = platform.cloud
    provider = cloud_provider(NAME, cloud)
    on_cloud = pulumi.ResourceOptions(providers=[provider] if provider else None)
    infra = _reference("infra")
    cluster = handoff.cluster_from(infra, platform, f"{NAME}-k8s")
    store = handoff.storage_from(infra, platform)
    platform_layer = _reference("platform")
    made = _Made(platform)

    namespaces = WorkloadNamespaces(
        NAME,
        WorkloadNamespacesArgs(
            names=wiring.workload_namespaces(platform), kubernetes=cluster.provider
        ),
    )
    for name, namespace in namespaces.by_name.items():
        made.add(f"namespace:{name}", namespace)

    # The custom resources of the platform layer's CRDs (kube-prometheus-stack, istio-base).
    made.add(
        "alerts",
        ModelAlerts(
            f"{NAME}-monitoring",
            ModelAlertsArgs(config=platform.monitoring, kubernetes=cluster.provider),
            made.waits("alerts"),
        ),
    )
    if platform.mesh.enabled:
        made.add(
            "mesh-mtls",
            MeshMutualTls(
                f"{NAME}-mesh",
                MeshMutualTlsArgs(config=platform.mesh, kubernetes=cluster.provider),
                made.waits("mesh-mtls"),
            ),
        )
    traces = wiring.tracing(platform)
    if traces is not None and wiring.mesh_tracing(platform):
        made.add(
            "mesh-tracing",
            MeshTracing(
                f"{NAME}-mesh",
                MeshTracingArgs(config=platform.mesh, tracing=traces, kubernetes=cluster.provider),
                made.waits("mesh-tracing"),
            ),
        )

    # the one network hand-off, to what creates something in the network (mlops_platform/wiring.py)
    attached = wiring.network_attached(platform)

    def network_of(node: Node):
        return cluster.network if node in attached else None

    kafka = KafkaCluster(
        f"{NAME}-kafka",
        KafkaClusterArgs(
            cloud=cloud,
            config=platform.kafka,
            protect=platform.protect_stateful,
            kubernetes=cluster.provider,
            network=network_of("kafka"),
        ),
        on_cloud,
    )
    made.add("kafka", kafka)
    # Serving deployments logging to the platform's Kafka and the loop's consumer are its
    # clients: their credentials (Strimzi) or the grant their identity needs (MSK IAM, GCP).
    kafka_clients = {}
    for spec in wiring.kafka_clients(platform):
        node = f"kafka-client:{spec.name}"
        kafka_clients[spec.name] = KafkaClient(
            spec.name,
            KafkaClientArgs(
                cluster=kafka,
                namespace=spec.namespace,
                write_topics=list(spec.write_topics),
                read_topics=list(spec.read_topics),
            ),
            made.waits(node),
        )
        made.add(node, kafka_clients[spec.name])
    grants = {
        (spec.namespace, spec.service_account): (spec.grant, kafka_clients[spec.name].grant)
        for spec in wiring.kafka_clients(platform)
    }
    identities = {}
    for key, identity in platform.workload_identities.items():
        grant = grants.get((identity.namespace, identity.service_account))
        identities[key] = WorkloadIdentity(
            key,
            WorkloadIdentityArgs(
                cloud=cloud,
                config=identity,
                storage=store,
                cluster=cluster,
                kubernetes=cluster.provider,
                grants=dict([grant]) if grant else {},
            ),
            pulumi.ResourceOptions.merge(on_cloud, made.waits(f"identity:{key}")),
        )
        made.add(f"identity:{key}", identities[key])
    mlflow = TrackingServer(
        f"{NAME}-mlflow",
        TrackingServerArgs(
            cloud=cloud,
            config=platform.mlflow,
            storage=store,
            kubernetes=cluster.provider,
            protect=platform.protect_stateful,
            network=network_of("mlflow"),
        ),
        pulumi.ResourceOptions.merge(on_cloud, made.waits("mlflow")),
    )
    made.add("mlflow", mlflow)
    feast = FeatureStore(
        f"{NAME}-feast",
        FeatureStoreArgs(
            cloud=cloud,
            config=platform.feast,
            storage=store,
            kubernetes=cluster.provider,
            network=network_of("feast"),
            protect=platform.protect_stateful,
        ),
        pulumi.ResourceOptions.merge(on_cloud, made.waits("feast")),
    )
    made.add("feast", feast)
    # The loop service drives the releases of every progressive deployment (Flagger's gate and
    # registry webhooks, new challengers into the release ConfigMaps).
    topics = wiring.consumed_topics(platform)
    receiver = RetrainReceiver(
        f"{NAME}-loop",
        RetrainReceiverArgs(
            config=platform.loop,
            kubernetes=cluster.provider,
            bucket_uri=store.bucket_uris[platform.loop.bucket],
            tracking_uri=mlflow.tracking_uri,
            kfp_host=pipelines_api_endpoint(),
            alertmanager_namespace=platform.monitoring.namespace,
            releases=_release_wiring(platform),
            token=platform_layer.get_output("loop_token"),
            windows=bool(topics),
        ),
        made.waits("receiver"),
    )
    made.add("receiver", receiver)
    if topics:
        consumer = platform.loop.consumer
        PredictionLogConsumer(
            f"{NAME}-prediction-log",
            PredictionLogConsumerArgs(
                config=platform.loop,
                kubernetes=cluster.provider,
                bucket_uri=store.bucket_uris[platform.loop.bucket],
                predictions_topic=topics[0],
                kafka=kafka_clients[wiring.CONSUMER].wiring,
                credentials_secret=credentials_secret_name(consumer.service_account)
                if cloud.type == "local"
                else None,
            ),
            made.waits("consumer"),
        )
    if wiring.drift_monitored(platform):
        loop = platform.loop
        drift_monitor = DriftMonitor(
            f"{NAME}-drift-monitor",
            DriftMonitorArgs(
                config=loop.drift_monitor,
                kubernetes=cluster.provider,
                namespace=loop.namespace,
                image=loop.image,
                service_account=loop.consumer.service_account,
                bucket_uri=store.bucket_uris[loop.bucket],
                tracking_uri=mlflow.tracking_uri,
                models=monitored_models(loop.drift_monitor, wiring.kafka_logged_models(platform)),
                prometheus_namespace=platform.monitoring.namespace,
                reference_uri=store.bucket_uris[loop.bucket].apply(
                    lambda uri: f"{uri.rstrip('/')}/{loop.reference_path}"
                )
                if loop.reference_path
                else "",
                mlflow_credentials_secret=wiring.mlflow_clients(platform)[
                    wiring.LOOP_CLIENT
                ].secret_name,
                object_store_secret=credentials_secret_name(loop.consumer.service_account)
                if cloud.type == "local"
                else None,
            ),
            made.waits("drift-monitor"),
        )
        made.add("drift-monitor", drift_monitor)
    # Progressive delivery: Flagger queries the platform's Prometheus and drives the mesh.
    flagger = (
        FlaggerWiring(
            prometheus_url=prometheus_url(platform.monitoring.namespace),
            load_tester_url=load_tester_url(platform.delivery),
            loop_url=loop_service_url(platform.loop.namespace),
        )
        if platform.delivery.enabled
        else None
    )
    deployments = {
        key: ModelDeployment(
            key,
            ModelDeploymentArgs(
                config=deployment,
                kubernetes=cluster.provider,
                kafka=kafka_clients[f"serving-{key}"].wiring
                if f"serving-{key}" in kafka_clients
                else None,
                flagger=flagger if deployment.progressive is not None else None,
                prometheus_namespace=platform.monitoring.namespace,
                tracing=traces,
            ),
            made.waits(f"serving:{key}"),
        )
        for key, deployment in platform.serving.items()
    }

    pulumi.export("cloud", cloud.type)
    pulumi.export(
        "kafka",
        {
            "bootstrap_servers": kafka.bootstrap_servers,
            "topics": kafka.topic_names,
            "security_protocol": kafka.security_protocol,
            "sasl_mechanism": kafka.sasl_mechanism,
        },
    )
    pulumi.export(
        "mlflow",
        {
            "tracking_uri": mlflow.tracking_uri,
            "admin_username": mlflow.admin_username,
            "admin_password": mlflow.admin_password,
            "credentials_secret": mlflow.credentials_secret_name,
            "database_endpoint": mlflow.database_endpoint,
        },
    )
    pulumi.export(
        "feast",
        {
            "feature_server_url": feast.feature_server_url,
            "online_store_host": feast.online_store_host,
            "online_store_port": feast.online_store_port,
            "online_store_password": feast.online_store_password,
            "registry_path": feast.registry_path,
        },
    )
    pulumi.export("loop", {"receiver_url": receiver.url})
    pulumi.export(
        "serving",
        {
            key: {"url": deployment.url, "canary_weight": deployment.canary_weight}
            for key, deployment in deployments.items()
        },
    )
    pulumi.export(
        "workload_identities",
        {
            key: {
                "namespace": identity.namespace,
                "service_account": identity.service_account_name,
                "role_arn": identity.role_arn,
                "gcp_service_account": identity.gcp_service_account_email,
                "credentials_secret": identity.credentials_secret_name,
            }
            for key, identity in identities.items()
        },
    )


COMPOSERS = {"infra": compose_infra, "platform": compose_platform, "ml": compose_ml}


def _release_wiring(platform: config.PlatformConfig) -> ReleaseWiring | None:
    releases = tuple(
        Release(
            model=served_model_name(deployment),
            namespace=deployment.namespace,
            name=key,
            port=deployment.port,
        )
        for key, deployment in sorted(platform.serving.items())
        if deployment.progressive is not None
    )
    if not releases:
        return None
    return ReleaseWiring(
        releases=releases,
        mlflow_credentials_secret=config.loop_mlflow_client(platform).secret_name,
        flagger_namespace=platform.delivery.namespace,
    )
