"""Kubeflow Pipelines, resource layer: the upstream manifests, the platform's launcher config and
the sync Job that publishes the shipped pipelines, the experiment and the schedules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.identity.model import WorkloadIdentityConfig
from mlops_platform.components.pipelines import model


class ArtifactStore(Protocol):
    """What KFP needs from the object store (`mlops_platform.components.storage.ObjectStore` fits)."""

    # read-only, so the ml layer's frozen `mlops_platform.handoff.StorageHandoff` fits too
    @property
    def bucket_names(self) -> Mapping[str, pulumi.Input[str]]: ...
    @property
    def endpoint(self) -> pulumi.Output[str] | None: ...  # local: MinIO's in-cluster URL


@dataclass(frozen=True)
class KubeflowPipelinesArgs:
    """Inputs of `KubeflowPipelines`.

    `identities` are the root config's `workload_identities`: one of them must be the runner
    (`kubeflow/pipeline-runner`, read_write on the artifact bucket); its `WorkloadIdentity`
    creates that ServiceAccount and must depend on `KubeflowPipelines.namespace_owner`.

    Attributes:
        config: The `pipelines` settings.
        cloud: The stack's cloud: the artifact store's flavour (S3, GCS or MinIO) and the runner's
            identity.
        storage: The object store holding the pipeline artifacts.
        kubernetes: The provider every object is created with.
        identities: The root `workload_identities`: one must be the runner
            (`kubeflow/pipeline-runner`, `read_write` on the artifact bucket).
        parameter_defaults: Values the platform fills into compiled pipelines' parameters (e.g. the
            MLflow tracking URI), by parameter name.
    """

    config: model.PipelinesConfig
    cloud: Cloud
    storage: ArtifactStore
    kubernetes: k8s.Provider
    identities: Mapping[str, WorkloadIdentityConfig] = field(default_factory=dict)
    # Values of `model.PLATFORM_PARAMETERS` (tracking_uri, bucket_uri, drift_config) for the
    # schedules whose pipelines declare them; a schedule's own `parameters` win.
    parameter_defaults: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class KubeflowPipelines(pulumi.ComponentResource):
    """KFP standalone (API server, UI, Argo, MySQL, SeaweedFS) with artifacts in our bucket.

    Attributes:
        namespace: Namespace of KFP (`kubeflow`).
        api_endpoint: In-cluster KFP API URL (`http://ml-pipeline.kubeflow.svc.cluster.local:8888`).
        ui_service: The KFP UI's Service (port 80).
        pipeline_root: Where runs keep artifacts: `s3://`, `gs://` or `minio://<bucket>/pipelines`.
    """

    namespace: pulumi.Output[str]
    api_endpoint: pulumi.Output[str]
    ui_service: pulumi.Output[str]
    pipeline_root: pulumi.Output[str]
    namespace_owner: pulumi.Resource

    def __init__(
        self, name: str, args: KubeflowPipelinesArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("KubeflowPipelinesArgs.kubernetes: a Kubernetes provider is required")
        config = args.config
        problems = model.pipelines_problems(config, args.storage.bucket_names, args.identities)
        unknown = sorted(set(args.parameter_defaults) - set(model.PLATFORM_PARAMETERS))
        if unknown:
            raise ValueError(
                f"KubeflowPipelinesArgs.parameter_defaults: {', '.join(unknown)} are not platform "
                f"parameters ({', '.join(model.PLATFORM_PARAMETERS)})"
            )
        problems += model.schedule_problems(config, args.parameter_defaults)
        if problems:
            path, message = problems[0]
            raise ValueError(f"{path}: {message}")
        cloud_type = args.cloud.type
        if cloud_type == "local" and args.storage.endpoint is None:
            raise ValueError("pipelines: locally the object store must report its MinIO endpoint")
        bucket = pulumi.Output.from_input(args.storage.bucket_names[config.artifact_bucket])
        endpoint = args.storage.endpoint if cloud_type == "local" else None
        # Rendered before anything is registered (the compiled pipelines are read here), then
        # again with the platform's values once they resolve.
        sync_objects = None
        if config.publish:
            texts = model.pipeline_texts()
            model.sync_spec(config, texts)
            sync_objects = pulumi.Output.all(**args.parameter_defaults).apply(
                lambda defaults: (
                    model.sync_config_map(config, texts, defaults),
                    model.sync_job(config, texts, defaults),
                )
            )

        super().__init__("mlops:pipelines:KubeflowPipelines", name, None, opts)

        # Namespace `kubeflow` (Pod Security `baseline`, warn `restricted`), the Argo, KFP and
        # Application CRDs and cluster RBAC, straight from the pinned release. Upstream applies
        # these first so the CRDs are established before anything uses them.
        cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=model.cluster_scoped_url(),
            opts=pulumi.ResourceOptions(parent=self, providers=[args.kubernetes]),
        )
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=[cluster_scoped]
        )
        install = k8s.kustomize.v2.Directory(
            f"{name}-platform-agnostic",
            directory=model.overlay_directory(),
            opts=pulumi.ResourceOptions(
                parent=self, providers=[args.kubernetes], depends_on=[cluster_scoped]
            ),
        )

        launcher = pulumi.Output.all(bucket, endpoint).apply(
            lambda v: model.launcher_configmap(cloud_type, v[0], config.pipeline_root_prefix, v[1])
        )
        launcher_config = k8s.core.v1.ConfigMap(
            f"{name}-launcher-config",
            metadata=launcher["metadata"],
            data=launcher["data"],
            opts=in_namespace,
        )
        policy = model.mysql_network_policy()
        k8s.networking.v1.NetworkPolicy(
            f"{name}-mysql-ingress",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=in_namespace,
        )

        if sync_objects is not None:
            _sync(name, sync_objects, in_namespace, [install, launcher_config])

        self.namespace_owner = cluster_scoped
        self.namespace = pulumi.Output.from_input(model.NAMESPACE)
        self.api_endpoint = pulumi.Output.from_input(model.api_endpoint())
        self.ui_service = pulumi.Output.from_input(model.UI_SERVICE)
        self.pipeline_root = launcher["data"]["defaultPipelineRoot"]
        self.register_outputs(
            {
                "namespace": self.namespace,
                "api_endpoint": self.api_endpoint,
                "ui_service": self.ui_service,
                "pipeline_root": self.pipeline_root,
            }
        )


def _sync(
    name: str,
    objects: pulumi.Output[tuple[dict[str, Any], dict[str, Any]]],
    in_namespace: pulumi.ResourceOptions,
    install: list[pulumi.Resource],
) -> None:
    """The spec ConfigMap and the Job that applies it, both named by the digest of what the Job
    would do. The Job is created after the install and the launcher config its runs read; the
    API server may still be starting then, so the program waits for its health check itself.
    `pulumi up` waits for the Job to complete: a failed sync fails the update."""
    config_map, job = objects[0], objects[1]
    spec = k8s.core.v1.ConfigMap(
        f"{name}-sync-spec",
        metadata=config_map["metadata"],
        immutable=True,
        data=config_map["data"],
        opts=in_namespace,
    )
    k8s.batch.v1.Job(
        f"{name}-sync",
        metadata=job["metadata"],
        spec=job["spec"],
        opts=pulumi.ResourceOptions.merge(
            in_namespace, pulumi.ResourceOptions(depends_on=[*install, spec])
        ),
    )
