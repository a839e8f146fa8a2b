"""The retrain receiver, resource layer: wires the pure model's objects into resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components.kafka.model import KafkaClientWiring
from mlops_platform.components.kube_resources import depends_on_of
from mlops_platform.components.loop import consumer, model


@dataclass(frozen=True)
class RetrainReceiverArgs:
    """Inputs of `RetrainReceiver`.

    Attributes:
        config: The `loop` settings.
        kubernetes: The provider every object is created with.
        bucket_uri: URI of `config.bucket`, the drift pipeline's data.
        tracking_uri: The MLflow tracking URI the pipeline runs use.
        kfp_host: The KFP API endpoint the receiver starts runs on.
        alertmanager_namespace: The only namespace admitted to call the receiver (Alertmanager's).
        releases: The progressive serving deployments whose releases the receiver drives
            (None: none); pass their namespaces and the mesh in `opts.depends_on`.
        token: Bearer token Alertmanager sends; None: one is generated (`token` output).
        windows: The loop's consumer writes the prediction log's windows to `bucket_uri`: the
            runs the receiver starts retrain on them.
    """

    config: model.LoopConfig
    kubernetes: k8s.Provider
    bucket_uri: pulumi.Input[str]
    tracking_uri: pulumi.Input[str]
    kfp_host: str
    alertmanager_namespace: str
    # The progressive serving deployments whose releases the service drives (None: none). Pass
    # their namespaces and the mesh in `opts.depends_on` (Roles there; a PeerAuthentication).
    releases: model.ReleaseWiring | None = None
    # The bearer token Alertmanager sends (a secret). Given when the monitoring release is
    # created first, in an earlier stack (mlops_platform/program.py); else generated here.
    token: pulumi.Input[str] | None = None
    # The loop's consumer writes the prediction log's windows to `bucket_uri`: retrain on them.
    windows: bool = False


class RetrainReceiver(pulumi.ComponentResource):
    """The platform's Alertmanager receiver that starts drift-pipeline runs.

    Attributes:
        namespace: Namespace of the receiver.
        service_name: The receiver's Service.
        url: In-cluster URL Alertmanager posts drift alerts to
            (`http://retrain-receiver.<ns>.svc.cluster.local:8080/alerts`).
        token: Bearer token the receiver requires.
    """

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    url: pulumi.Output[str]
    token: pulumi.Output[str]

    def __init__(
        self, name: str, args: RetrainReceiverArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("RetrainReceiverArgs.kubernetes: a Kubernetes provider is required")
        config = args.config
        # Rendered (and so checked) before anything is registered.
        account = model.service_account(config)
        envelope = model.token_secret(config)
        service = model.service(config)
        releases = args.releases
        policy = model.network_policy(
            config,
            args.alertmanager_namespace,
            releases.flagger_namespace if releases is not None else None,
        )
        roles = model.release_roles(config, releases) if releases is not None else []
        peer_authentication = model.peer_authentication(config) if releases is not None else None

        super().__init__("mlops:loop:RetrainReceiver", name, None, opts)
        k8s_child = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
        )

        if args.token is not None:
            token = pulumi.Output.secret(args.token)
        else:
            password = random.RandomPassword(
                f"{name}-token",
                length=model.TOKEN_LENGTH,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            token = pulumi.Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=envelope["metadata"],
            type=envelope["type"],
            string_data={model.TOKEN_KEY: token},
            opts=k8s_child,
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=account["metadata"],
            automount_service_account_token=account["automountServiceAccountToken"],
            opts=k8s_child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=k8s_child,
        )
        for role in roles:
            namespace = role["metadata"]["namespace"]
            k8s.rbac.v1.Role(
                f"{name}-releases-{namespace}",
                metadata=role["metadata"],
                rules=role["rules"],
                opts=k8s_child,
            )
            binding = model.release_role_binding(config, namespace)
            k8s.rbac.v1.RoleBinding(
                f"{name}-releases-{namespace}",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                opts=k8s_child,
            )
        if peer_authentication is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-peer-authentication",
                api_version=peer_authentication["apiVersion"],
                kind=peer_authentication["kind"],
                metadata=peer_authentication["metadata"],
                spec=peer_authentication["spec"],
                opts=k8s_child,
            )
        rendered = pulumi.Output.all(args.bucket_uri, args.tracking_uri).apply(
            lambda uris: model.deployment(
                config, uris[0], uris[1], args.kfp_host, releases, args.windows
            )
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=rendered["metadata"],
            spec=rendered["spec"],
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.kubernetes,
                depends_on=[secret, service_account, *depends_on_of(opts)],
            ),
        )
        created = k8s.core.v1.Service(
            f"{name}-service", metadata=service["metadata"], spec=service["spec"], opts=k8s_child
        )

        self.namespace = pulumi.Output.from_input(config.namespace)
        self.service_name = created.metadata.name
        self.url = pulumi.Output.from_input(model.receiver_url(config.namespace))
        self.token = token
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_name": self.service_name,
                "url": self.url,
                "token": self.token,
            }
        )


@dataclass(frozen=True)
class PredictionLogConsumerArgs:
    """Inputs of `PredictionLogConsumer`: the loop config (namespace, image, `consumer`), the
    URI of its bucket, the topic the model servers log to, and the platform Kafka client it
    reads with (`KafkaClient(..., read_topics=[predictions, labels]).wiring`). Locally,
    `credentials_secret` is its workload identity's MinIO Secret. Pass the namespace and the
    identity in `opts.depends_on`.

    Attributes:
        config: The `loop` settings (namespace, image and its `consumer` block).
        kubernetes: The provider every object is created with.
        bucket_uri: URI of the loop's bucket, where the Parquet windows are written.
        predictions_topic: The topic the model servers log predictions to.
        kafka: The platform Kafka client it reads with (`KafkaClient(..., read_topics=[predictions,
            labels]).wiring`).
        credentials_secret: Locally, its workload identity's MinIO Secret; None on the clouds
            (keyless identity).
    """

    config: model.LoopConfig
    kubernetes: k8s.Provider
    bucket_uri: pulumi.Input[str]
    predictions_topic: str
    kafka: KafkaClientWiring
    credentials_secret: str | None = None


class PredictionLogConsumer(pulumi.ComponentResource):
    """The prediction log, consumed into hourly Parquet windows the drift pipeline reads."""

    def __init__(
        self,
        name: str,
        args: PredictionLogConsumerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        if args.kubernetes is None:
            raise ValueError(
                "PredictionLogConsumerArgs.kubernetes: a Kubernetes provider is required"
            )
        config = args.config
        super().__init__("mlops:loop:PredictionLogConsumer", name, None, opts)
        # Rendered before anything registers; the bucket and the brokers stay Outputs inside.
        rendered = consumer.deployment(
            config.consumer,
            config.namespace,
            config.image,
            args.bucket_uri,
            args.predictions_topic,
            args.kafka,
            args.credentials_secret,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=rendered["metadata"],
            spec=rendered["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
            ),
        )
        self.register_outputs({})
