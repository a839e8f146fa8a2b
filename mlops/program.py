"""The Pulumi program: validate the stack config once, then compose the components.

`__main__.py` (what `pulumi up` runs) and `mlops plan` (the same program under mocks) both call
`main()`; there is no other entry point and no logic outside the components.
"""

from __future__ import annotations

import pulumi

from components.cluster import KubernetesCluster, KubernetesClusterArgs
from components.gpu import GpuNodePools, GpuNodePoolsArgs
from components.identity import WorkloadIdentity, WorkloadIdentityArgs
from components.monitoring import Observability, ObservabilityArgs
from components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from components.providers import cloud_provider
from components.serving import ModelDeployment, ModelDeploymentArgs
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
    namespaces = WorkloadNamespaces(
        NAME,
        WorkloadNamespacesArgs(
            names=[
                *(identity.namespace for identity in platform.workload_identities.values()),
                *(deployment.namespace for deployment in platform.serving.values()),
            ],
            kubernetes=cluster.provider,
        ),
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
            ),
            pulumi.ResourceOptions.merge(
                on_cloud,
                pulumi.ResourceOptions(depends_on=[namespaces.by_name[identity.namespace]]),
            ),
        )
        for key, identity in platform.workload_identities.items()
    }
    monitoring = Observability(
        f"{NAME}-monitoring",
        ObservabilityArgs(
            config=platform.monitoring,
            kubernetes=cluster.provider,
            protect=platform.protect_stateful,
        ),
    )
    deployments = {
        key: ModelDeployment(
            key,
            ModelDeploymentArgs(config=deployment, kubernetes=cluster.provider),
            pulumi.ResourceOptions(
                depends_on=[
                    namespaces.by_name[deployment.namespace],
                    # Its PodMonitor is a prometheus-operator resource: the CRDs come with the
                    # monitoring chart.
                    monitoring,
                    *(
                        identities[name]
                        for name, identity in platform.workload_identities.items()
                        if (identity.namespace, identity.service_account)
                        == (deployment.namespace, deployment.service_account)
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
