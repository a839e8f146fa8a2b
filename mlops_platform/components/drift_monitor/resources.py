"""The drift monitor, resource layer: wires the pure model's objects into resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.drift_monitor import model
from mlops_platform.components.kube_resources import depends_on_of


@dataclass(frozen=True)
class DriftMonitorArgs:
    """Inputs of `DriftMonitor`: its config, the loop's namespace and image, the consumer's
    service account (reads the bucket), the bucket and MLflow URIs, the models, the Secrets
    mounted as files (the loop's MLflow client; locally the MinIO user's) and the namespace of
    the platform's Prometheus. Pass the namespace, the identity and the monitoring layer (the
    PodMonitor CRD) in `opts.depends_on`.

    Attributes:
        config: The drift monitor's settings (`loop.drift_monitor`).
        kubernetes: The provider every object is created with.
        namespace: The loop's namespace, where the monitor runs.
        image: The platform image (pinned).
        service_account: The consumer's service account (reads the loop's bucket).
        bucket_uri: URI of the bucket holding the prediction-log windows.
        tracking_uri: The MLflow tracking URI (the reference data and the models).
        models: Registered models to check.
        prometheus_namespace: Namespace of the platform's Prometheus, let through to the metrics
            port.
        mlflow_credentials_secret: The loop's MLflow client Secret; its `credentials` key
            (MLflow's credentials file) is mounted. None: MLflow without authentication.
        object_store_secret: Locally, the MinIO user's Secret of the consumer's identity (its
            AWS SDK files are mounted); None on the clouds (workload identity).
        reference_uri: Reference data in the bucket; empty: the champion's training data, found in
            MLflow.
    """

    config: model.DriftMonitorConfig
    kubernetes: k8s.Provider
    namespace: str
    image: str
    service_account: str
    bucket_uri: pulumi.Input[str]
    tracking_uri: pulumi.Input[str]
    models: list[str]
    prometheus_namespace: str
    # The loop's MLflow client Secret (its credentials file is mounted).
    mlflow_credentials_secret: str | None = None
    # Locally, the MinIO user's Secret of the consumer's identity (its AWS SDK files).
    object_store_secret: str | None = None
    # loop.reference_path under the bucket, as the receiver's; empty: the champion's sample.
    reference_uri: pulumi.Input[str] = ""


class DriftMonitor(pulumi.ComponentResource):
    """Checks the prediction log for drift with the pipeline's detector; exports verdicts."""

    def __init__(
        self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("DriftMonitorArgs.kubernetes: a Kubernetes provider is required")
        # Rendered (and so checked) before anything registers; the URIs stay Outputs inside.
        rendered = model.deployment(
            args.config,
            namespace=args.namespace,
            image=args.image,
            service_account=args.service_account,
            bucket_uri=args.bucket_uri,
            tracking_uri=args.tracking_uri,
            models=args.models,
            mlflow_credentials_secret=args.mlflow_credentials_secret,
            object_store_secret=args.object_store_secret,
            reference_uri=args.reference_uri,
        )
        monitor = model.pod_monitor(args.config, args.namespace)
        policy = model.network_policy(args.namespace, args.prometheus_namespace)
        super().__init__("mlops:loop:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=rendered["metadata"], spec=rendered["spec"], opts=child
        )
        k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version=monitor["apiVersion"],
            kind=monitor["kind"],
            metadata=monitor["metadata"],
            spec=monitor["spec"],
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy", metadata=policy["metadata"], spec=policy["spec"], opts=child
        )
        self.register_outputs({})
