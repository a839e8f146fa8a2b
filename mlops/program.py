"""The Pulumi program: validate the stack config once, then compose the components.

`__main__.py` (what `pulumi up` runs) and `mlops plan` (the same program under mocks) both call
`main()`; there is no other entry point and no logic outside the components.
"""

from __future__ import annotations

import pulumi

from components.cluster import KubernetesCluster, KubernetesClusterArgs
from components.cluster.wiring import AwsNetwork, GcpNetwork
from components.delivery import ProgressiveDelivery, ProgressiveDeliveryArgs
from components.delivery.model import load_tester_url
from components.feast import FeatureStore, FeatureStoreArgs
from components.gpu import GpuNodePools, GpuNodePoolsArgs
from components.identity import WorkloadIdentity, WorkloadIdentityArgs
from components.identity.model import credentials_secret_name
from components.kafka import (
    AwsKafkaNetwork,
    KafkaClient,
    KafkaClientArgs,
    KafkaCluster,
    KafkaClusterArgs,
)
from components.loop import (
    PredictionLogConsumer,
    PredictionLogConsumerArgs,
    RetrainReceiver,
    RetrainReceiverArgs,
)
from components.loop.model import Release, ReleaseWiring
from components.loop.model import receiver_url as loop_receiver_url
from components.loop.model import service_url as loop_service_url
from components.mesh import IstioMesh, IstioMeshArgs
from components.mlflow import (
    AwsDatabaseNetwork,
    GcpDatabaseNetwork,
    TrackingServer,
    TrackingServerArgs,
)
from components.mlflow.model import tracking_uri as mlflow_tracking_uri
from components.monitoring import Observability, ObservabilityArgs, RetrainWebhook
from components.monitoring.model import prometheus_url
from components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from components.pipelines import KubeflowPipelines, KubeflowPipelinesArgs
from components.pipelines.model import NAMESPACE as PIPELINES_NAMESPACE
from components.pipelines.model import api_endpoint as pipelines_api_endpoint
from components.providers import cloud_provider
from components.serving import ModelDeployment, ModelDeploymentArgs
from components.serving.delivery import FlaggerWiring
from components.serving.model import served_model_name
from components.storage import ObjectStore, ObjectStoreArgs
from mlops import config

NAME = "mlops"


def main() -> None:
    try:
        platform = config.from_pulumi_runtime()
    except config.ConfigError as exc:
        # RunError is reported by the engine as a clean message, without a Python stack trace,
        # and nothing has been registered yet.
        raise pulumi.RunError(str(exc)) from None
    compose(platform)


def compose(platform: config.PlatformConfig) -> None:
    """Create every component of the platform from validated config and export its outputs."""
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
    GpuNodePools(
        f"{NAME}-gpu",
        GpuNodePoolsArgs(
            cloud=cloud, pools=platform.gpu_pools, cluster=cluster, kubernetes=cluster.provider
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
            },
        ),
    )
    workload_namespaces = [
        *(identity.namespace for identity in platform.workload_identities.values()),
        *(deployment.namespace for deployment in platform.serving.values()),
        platform.mlflow.namespace,
        *(client.namespace for client in platform.mlflow.clients.values()),
        platform.feast.namespace,
        platform.loop.namespace,
    ]
    namespaces = WorkloadNamespaces(
        NAME,
        WorkloadNamespacesArgs(
            # Kubeflow's own manifests create and label its namespace (Pod Security baseline).
            names=[name for name in workload_namespaces if name != PIPELINES_NAMESPACE],
            kubernetes=cluster.provider,
        ),
    )

    def namespace(name: str) -> pulumi.Resource:
        return (
            pipelines.namespace_owner if name == PIPELINES_NAMESPACE else namespaces.by_name[name]
        )

    network = cluster.network
    kafka = KafkaCluster(
        f"{NAME}-kafka",
        KafkaClusterArgs(
            cloud=cloud,
            config=platform.kafka,
            protect=platform.protect_stateful,
            kubernetes=cluster.provider,
            aws_network=AwsKafkaNetwork(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                client_security_group_ids=[network.cluster_security_group_id],
            )
            if isinstance(network, AwsNetwork)
            else None,
            gcp_subnetwork=network.subnetwork_id if isinstance(network, GcpNetwork) else None,
        ),
        on_cloud,
    )
    # Serving deployments that log predictions to the platform's Kafka are its clients: their
    # credentials (Strimzi) or the grant their identity needs (MSK IAM, Managed Kafka).
    kafka_clients = {
        key: KafkaClient(
            f"serving-{key}",
            KafkaClientArgs(
                cluster=kafka, namespace=deployment.namespace, write_topics=[deployment.kafka_topic]
            ),
            pulumi.ResourceOptions(depends_on=[namespace(deployment.namespace)]),
        )
        for key, deployment in platform.serving.items()
        if deployment.prediction_sink == "kafka" and deployment.kafka_bootstrap_servers is None
    }
    # The loop's prediction-log consumer reads what the serving deployments log to the
    # platform's Kafka, and the labels that arrive later.
    consumer_client = (
        KafkaClient(
            "prediction-log",
            KafkaClientArgs(
                cluster=kafka,
                namespace=platform.loop.namespace,
                read_topics=config.consumed_topics(platform),
            ),
            pulumi.ResourceOptions(depends_on=[namespace(platform.loop.namespace)]),
        )
        if config.consumed_topics(platform)
        else None
    )
    # Whose identity carries which Kafka grant: (namespace, service account) -> client.
    kafka_grants = [
        (
            (platform.serving[key].namespace, platform.serving[key].service_account),
            f"kafka-{key}",
            client,
        )
        for key, client in kafka_clients.items()
    ]
    if consumer_client is not None:
        kafka_grants.append(
            (
                (platform.loop.namespace, platform.loop.consumer.service_account),
                "kafka-prediction-log",
                consumer_client,
            )
        )
    identities = {
        key: WorkloadIdentity(
            key,
            WorkloadIdentityArgs(
                cloud=cloud,
                config=identity,
                storage=store,
                cluster=cluster,
                kubernetes=cluster.provider,
                grants={
                    grant_key: client.grant
                    for account, grant_key, client in kafka_grants
                    if account == (identity.namespace, identity.service_account)
                },
            ),
            pulumi.ResourceOptions.merge(
                on_cloud,
                pulumi.ResourceOptions(depends_on=[namespace(identity.namespace)]),
            ),
        )
        for key, identity in platform.workload_identities.items()
    }
    mlflow = TrackingServer(
        f"{NAME}-mlflow",
        TrackingServerArgs(
            cloud=cloud,
            config=platform.mlflow,
            storage=store,
            kubernetes=cluster.provider,
            protect=platform.protect_stateful,
            aws_network=AwsDatabaseNetwork(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                client_security_group_ids=[network.cluster_security_group_id],
            )
            if isinstance(network, AwsNetwork)
            else None,
            gcp_network=GcpDatabaseNetwork(network=network.network_id)
            if isinstance(network, GcpNetwork)
            else None,
        ),
        pulumi.ResourceOptions.merge(
            on_cloud,
            pulumi.ResourceOptions(
                depends_on=[
                    namespace(platform.mlflow.namespace),
                    # its clients' credential Secrets go into their namespaces
                    *(namespace(client.namespace) for client in platform.mlflow.clients.values()),
                    *_identities_of(
                        platform,
                        identities,
                        platform.mlflow.namespace,
                        platform.mlflow.service_account,
                    ),
                ]
            ),
        ),
    )
    feast = FeatureStore(
        f"{NAME}-feast",
        FeatureStoreArgs(
            cloud=cloud,
            config=platform.feast,
            storage=store,
            kubernetes=cluster.provider,
            network=network,
            protect=platform.protect_stateful,
        ),
        pulumi.ResourceOptions.merge(
            on_cloud,
            pulumi.ResourceOptions(
                depends_on=[
                    namespace(platform.feast.namespace),
                    *_identities_of(
                        platform,
                        identities,
                        platform.feast.namespace,
                        platform.feast.service_account,
                    ),
                ]
            ),
        ),
    )
    mesh = (
        IstioMesh(
            f"{NAME}-mesh",
            IstioMeshArgs(config=platform.mesh, cloud=cloud, kubernetes=cluster.provider),
        )
        if platform.mesh.enabled
        else None
    )
    # The retrain receiver comes first: Alertmanager mounts its token from the monitoring
    # namespace, so the token must exist before the monitoring release.
    # The loop service drives the releases of every progressive deployment (Flagger's gate and
    # registry webhooks, new challengers into the release ConfigMaps).
    releases = _release_wiring(platform)
    receiver = RetrainReceiver(
        f"{NAME}-loop",
        RetrainReceiverArgs(
            config=platform.loop,
            kubernetes=cluster.provider,
            bucket_uri=store.bucket_uris[platform.loop.bucket],
            tracking_uri=mlflow.tracking_uri,
            kfp_host=pipelines_api_endpoint(),
            alertmanager_namespace=platform.monitoring.namespace,
            releases=releases,
            windows=consumer_client is not None,
        ),
        pulumi.ResourceOptions(
            depends_on=[
                namespace(platform.loop.namespace),
                *(
                    [
                        # its MLflow client Secret, Roles in the serving namespaces, a sidecar
                        mlflow,
                        *(namespace(r.namespace) for r in releases.releases),
                        *(mesh.ready if mesh is not None else []),
                    ]
                    if releases is not None
                    else []
                ),
            ]
        ),
    )
    if consumer_client is not None:
        consumer = platform.loop.consumer
        PredictionLogConsumer(
            f"{NAME}-prediction-log",
            PredictionLogConsumerArgs(
                config=platform.loop,
                kubernetes=cluster.provider,
                bucket_uri=store.bucket_uris[platform.loop.bucket],
                predictions_topic=config.consumed_topics(platform)[0],
                kafka=consumer_client.wiring,
                credentials_secret=credentials_secret_name(consumer.service_account)
                if cloud.type == "local"
                else None,
            ),
            pulumi.ResourceOptions(
                depends_on=[
                    namespace(platform.loop.namespace),
                    *_identities_of(
                        platform, identities, platform.loop.namespace, consumer.service_account
                    ),
                ]
            ),
        )
    monitoring = Observability(
        f"{NAME}-monitoring",
        ObservabilityArgs(
            config=platform.monitoring,
            kubernetes=cluster.provider,
            protect=platform.protect_stateful,
            retrain=RetrainWebhook(
                url=loop_receiver_url(platform.loop.namespace), token=receiver.token
            ),
        ),
    )
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
    delivery = (
        ProgressiveDelivery(
            f"{NAME}-delivery",
            ProgressiveDeliveryArgs(
                config=platform.delivery,
                prometheus_url=monitoring.prometheus_url,
                kubernetes=cluster.provider,
            ),
            pulumi.ResourceOptions(
                depends_on=[monitoring, *(mesh.ready if mesh is not None else [])]
            ),
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
                kafka=kafka_clients[key].wiring if key in kafka_clients else None,
                flagger=flagger if deployment.progressive is not None else None,
            ),
            pulumi.ResourceOptions(
                depends_on=[
                    namespace(deployment.namespace),
                    # its model is loaded through MLflow, with the client credentials it creates
                    mlflow,
                    # Its PodMonitor is a prometheus-operator resource: the CRDs come with the
                    # monitoring chart.
                    monitoring,
                    # sidecar injection and the DestinationRule/VirtualService CRDs
                    *(mesh.ready if mesh is not None else []),
                    # the Canary and MetricTemplate CRDs, and Flagger to act on them
                    *([delivery] if delivery is not None and deployment.progressive else []),
                    *_identities_of(
                        platform, identities, deployment.namespace, deployment.service_account
                    ),
                ]
            ),
        )
        for key, deployment in platform.serving.items()
    }

    pulumi.export("cloud", cloud.type)
    pulumi.export("cluster_name", cluster.cluster_name)
    pulumi.export("cluster_endpoint", cluster.endpoint)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("bucket_uris", store.bucket_uris)
    pulumi.export("storage_endpoint", store.endpoint)
    pulumi.export(
        "kafka",
        {
            "bootstrap_servers": kafka.bootstrap_servers,
            "topics": kafka.topic_names,
            "security_protocol": kafka.security_protocol,
            "sasl_mechanism": kafka.sasl_mechanism,
        },
    )
    if mesh is not None:
        pulumi.export("mesh", {"namespace": mesh.namespace, "version": mesh.version})
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
        "pipelines",
        {
            "api_endpoint": pipelines.api_endpoint,
            "ui_service": pipelines.ui_service,
            "pipeline_root": pipelines.pipeline_root,
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
    pulumi.export("prometheus_url", monitoring.prometheus_url)
    pulumi.export("alertmanager_url", monitoring.alertmanager_url)
    pulumi.export("grafana_service", monitoring.grafana_service)
    pulumi.export("grafana_admin_password", monitoring.grafana_admin_password)
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


def _identities_of(
    platform: config.PlatformConfig,
    identities: dict[str, WorkloadIdentity],
    namespace: str,
    service_account: str | None,
) -> list[WorkloadIdentity]:
    """The workload identities whose service account a workload runs as (it waits for them)."""
    return [
        identities[key]
        for key, identity in platform.workload_identities.items()
        if (identity.namespace, identity.service_account) == (namespace, service_account)
    ]
