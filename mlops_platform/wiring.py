"""What the program wires between components, derived from the validated config (pure).

The program used to wire by hand what the config already says: which namespaces exist, which
service accounts get a cloud identity for which buckets, which workloads are MLflow or Kafka
clients, what waits for what. Everything here is a function of `PlatformConfig` alone, so it is
table-tested without Pulumi (tests/config/test_wiring.py) and the program is composition only.

- `effective(platform)`: the config the components receive: the platform's own workload
  identities and MLflow clients merged with the user's extra ones, and each serving deployment's
  tracking URI and credentials Secret filled in from the MLflow component.
- `network_attached(platform)`: what takes the cluster's `Network` hand-off (GPU pools, and the
  managed Kafka, database and Redis).
- `graph(platform)`: every node the program creates (`Node`), its layer and what it waits for.
  The program turns edges inside one layer into `depends_on`; edges across layers are the
  layers' order. Destroying runs the graph backwards (`teardown_order`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Literal

from mlops_platform.components.feast import feature_server_url
from mlops_platform.components.identity import WorkloadIdentityConfig
from mlops_platform.components.mlflow import ClientConfig
from mlops_platform.components.mlflow import tracking_uri as mlflow_tracking_uri
from mlops_platform.components.monitoring import TracingWiring, tracing_wiring
from mlops_platform.components.pipelines import NAMESPACE as PIPELINES_NAMESPACE
from mlops_platform.components.pipelines import RUNNER_SERVICE_ACCOUNT

if TYPE_CHECKING:
    from mlops_platform.config import PlatformConfig

Layer = Literal["infra", "platform", "ml"]
# The order `pulumi up` runs them in; `pulumi destroy` runs them backwards.
LAYERS: tuple[Layer, ...] = ("infra", "platform", "ml")
Access = Literal["read", "read_write"]

# The platform's own MLflow clients (keys name the MLflow users `svc-<key>`).
PIPELINES_CLIENT = "pipelines"
LOOP_CLIENT = "loop"
# The loop's prediction-log consumer: its identity and Kafka client share this name.
CONSUMER = "prediction-log"


# -- workload identities --------------------------------------------------------------------


def _grant(buckets: dict[str, Access], bucket: str, access: Access) -> None:
    """Add `access` to `bucket`; read_write wins over read."""
    if buckets.get(bucket) != "read_write":
        buckets[bucket] = access


def platform_identities(platform: PlatformConfig) -> dict[str, WorkloadIdentityConfig]:
    """The identities the platform's own workloads need, from each component's namespace,
    service account and buckets: MLflow, the pipeline runner, Feast, every serving account,
    and the loop's consumer when something logs to the platform's Kafka."""
    mlflow, feast, loop = platform.mlflow, platform.feast, platform.loop
    wanted: dict[str, tuple[str, str, dict[str, Access]]] = {
        "mlflow": (
            mlflow.namespace,
            mlflow.service_account,
            {mlflow.artifact_bucket: "read_write"},
        ),
        "pipelines": (
            PIPELINES_NAMESPACE,
            RUNNER_SERVICE_ACCOUNT,
            # steps read and write artifacts and datasets, and read the offline features
            {
                platform.pipelines.artifact_bucket: "read_write",
                "datasets": "read_write",
                feast.registry.bucket: "read",
            },
        ),
        "feast": (
            feast.namespace,
            feast.service_account,
            {feast.registry.bucket: "read_write", "datasets": "read"},
        ),
    }
    # Model servers load artifacts of registered models (MLflow's artifact bucket).
    accounts = sorted(
        {
            (d.namespace, d.service_account)
            for d in platform.serving.values()
            if d.service_account is not None
        }
    )
    for namespace, account in accounts:
        shared = sum(1 for ns, _ in accounts if ns == namespace) > 1
        key = f"{namespace}-{account}" if shared else namespace
        wanted[key] = (namespace, account, {mlflow.artifact_bucket: "read"})
    if consumed_topics(platform):
        wanted[CONSUMER] = (
            loop.namespace,
            loop.consumer.service_account,
            {loop.bucket: "read_write"},
        )
    known = set(platform.storage.buckets)
    return {
        key: WorkloadIdentityConfig(
            namespace=namespace,
            service_account=account,
            # a bucket the stack does not have is reported by the components' own checks
            buckets={b: a for b, a in buckets.items() if b in known} or buckets,
        )
        for key, (namespace, account, buckets) in wanted.items()
    }


def workload_identities(platform: PlatformConfig) -> dict[str, WorkloadIdentityConfig]:
    """The platform's identities merged with the user's `workload_identities`.

    A user entry for a service account the platform already gives an identity adds its bucket
    grants to that identity (read_write wins); any other entry is an extra identity."""
    merged = {
        key: identity.model_copy(deep=True)
        for key, identity in platform_identities(platform).items()
    }
    by_account = {(i.namespace, i.service_account): key for key, i in merged.items()}
    for key, extra in platform.workload_identities.items():
        owner = by_account.get((extra.namespace, extra.service_account))
        if owner is None:
            merged[key] = extra
            by_account[(extra.namespace, extra.service_account)] = key
            continue
        buckets = dict(merged[owner].buckets)
        for bucket, access in extra.buckets.items():
            _grant(buckets, bucket, access)
        update: dict[str, object] = {"buckets": buckets}
        if extra.gcp_account_id is not None:
            update["gcp_account_id"] = extra.gcp_account_id
        merged[owner] = merged[owner].model_copy(update=update)
    return merged


def identity_of(
    identities: Mapping[str, WorkloadIdentityConfig], namespace: str, account: str | None
) -> list[str]:
    """Keys of the identities whose service account a workload runs as."""
    return [
        key
        for key, identity in identities.items()
        if (identity.namespace, identity.service_account) == (namespace, account)
    ]


# -- MLflow and Kafka clients ---------------------------------------------------------------


def platform_mlflow_clients(platform: PlatformConfig) -> dict[str, ClientConfig]:
    """MLflow users the platform's own workloads need: READ for every serving namespace,
    EDIT for pipeline steps (log runs, register versions) and for the loop service when a
    deployment is progressive (it moves the aliases after each rollout)."""
    clients = {PIPELINES_CLIENT: ClientConfig(namespace=PIPELINES_NAMESPACE, permission="EDIT")}
    namespaces = sorted({d.namespace for d in platform.serving.values()})
    for namespace in namespaces:
        clients[namespace] = ClientConfig(namespace=namespace, permission="READ")
    if any(d.progressive is not None for d in platform.serving.values()):
        clients[LOOP_CLIENT] = ClientConfig(namespace=platform.loop.namespace, permission="EDIT")
    elif drift_monitored(platform):
        # The drift monitor reads the champion's training sample (mlops_platform/components/drift_monitor).
        clients[LOOP_CLIENT] = ClientConfig(namespace=platform.loop.namespace, permission="READ")
    return clients


def kafka_logged_models(platform: PlatformConfig) -> list[str]:
    """The served models whose prediction log the consumer writes (what the monitor checks)."""
    from mlops_platform.components.serving import served_model_name

    return sorted(
        {
            served_model_name(deployment)
            for deployment in platform.serving.values()
            if deployment.prediction_sink == "kafka" and deployment.kafka_bootstrap_servers is None
        }
    )


def drift_monitored(platform: PlatformConfig) -> bool:
    """The drift monitor runs: the consumer writes the prediction log and it is enabled."""
    return bool(consumed_topics(platform)) and platform.loop.drift_monitor.enabled


def mlflow_clients(platform: PlatformConfig) -> dict[str, ClientConfig]:
    """The platform's clients, then the user's `mlflow.clients` (a user entry with the same key
    replaces the platform's: e.g. to rotate its password or grant MANAGE)."""
    return {**platform_mlflow_clients(platform), **platform.mlflow.clients}


def consumed_topics(platform: PlatformConfig) -> list[str]:
    """What the loop's consumer reads: the topics the serving deployments log to on the
    platform's Kafka, then the labels topic; empty when nothing logs there (no consumer)."""
    logged = sorted(
        {
            deployment.kafka_topic
            for deployment in platform.serving.values()
            if deployment.prediction_sink == "kafka" and deployment.kafka_bootstrap_servers is None
        }
    )
    return [*logged, platform.loop.consumer.labels_topic] if logged else []


@dataclass(frozen=True)
class KafkaClientSpec:
    """One client of the platform's Kafka: its resource name, where its pods run, its topics,
    and the name of the grant its workload identity carries (MSK IAM, Managed Kafka)."""

    name: str
    namespace: str
    service_account: str | None
    write_topics: tuple[str, ...] = ()
    read_topics: tuple[str, ...] = ()
    serving: str | None = None  # the serving deployment it belongs to

    @property
    def grant(self) -> str:
        return f"kafka-{self.name.removeprefix('serving-')}"


def kafka_clients(platform: PlatformConfig) -> list[KafkaClientSpec]:
    """Serving deployments that log to the platform's Kafka, then the loop's consumer."""
    clients = [
        KafkaClientSpec(
            name=f"serving-{key}",
            namespace=deployment.namespace,
            service_account=deployment.service_account,
            write_topics=(deployment.kafka_topic,),
            serving=key,
        )
        for key, deployment in platform.serving.items()
        if deployment.prediction_sink == "kafka" and deployment.kafka_bootstrap_servers is None
    ]
    topics = consumed_topics(platform)
    if topics:
        clients.append(
            KafkaClientSpec(
                name=CONSUMER,
                namespace=platform.loop.namespace,
                service_account=platform.loop.consumer.service_account,
                read_topics=tuple(topics),
            )
        )
    return clients


# -- the effective config -------------------------------------------------------------------


def effective(platform: PlatformConfig) -> PlatformConfig:
    """The config the components receive: derived identities and MLflow clients, and every
    serving deployment's tracking URI and credentials Secret (its namespace's MLflow client)
    unless the stack names others."""
    clients = mlflow_clients(platform)
    secrets = {client.namespace: client.secret_name for _, client in sorted(clients.items())}
    serving = {
        key: deployment.model_copy(
            update={
                "mlflow_tracking_uri": deployment.mlflow_tracking_uri
                or mlflow_tracking_uri(platform.mlflow.namespace),
                "credentials_secret": deployment.credentials_secret
                or secrets.get(deployment.namespace),
                "feature_server_url": deployment.feature_server_url
                or (
                    feature_server_url(platform.feast.namespace)
                    if deployment.online_features
                    else None
                ),
            }
        )
        for key, deployment in platform.serving.items()
    }
    return platform.model_copy(
        update={
            "workload_identities": workload_identities(platform),
            "mlflow": platform.mlflow.model_copy(update={"clients": clients}),
            "serving": serving,
        }
    )


def workload_namespaces(platform: PlatformConfig) -> list[str]:
    """Namespaces the platform creates for its workloads, sorted. Kubeflow's own manifests
    create and label theirs (Pod Security baseline); the add-ons of the platform layer create
    their own (istio-system, monitoring, flagger-system)."""
    names = {
        *(identity.namespace for identity in platform.workload_identities.values()),
        *(deployment.namespace for deployment in platform.serving.values()),
        platform.mlflow.namespace,
        *(client.namespace for client in platform.mlflow.clients.values()),
        platform.feast.namespace,
        platform.loop.namespace,
    }
    return sorted(names - {PIPELINES_NAMESPACE})


# -- the dependency graph -------------------------------------------------------------------

Node = str  # "cluster", "namespace:serving", "identity:mlflow", "serving:churn", ...

# The add-ons that bring CRDs and controllers. Nothing of theirs is a custom resource of their
# own CRDs: those are the nodes that wait for them in the ml layer ("alerts" for "monitoring",
# "mesh-mtls" and "mesh-tracing" for "mesh", "kafka" for "kafka-operator"), so a layer's
# preview never needs a CRD that its own `pulumi up` would install (pulumi-kubernetes #3027,
# #3176).
PLATFORM_NODES = frozenset(
    {"mesh", "monitoring", "delivery", "pipelines", "loop-token", "kafka-operator"}
)


def tracing(platform: PlatformConfig) -> TracingWiring | None:
    """Where the mesh's and the model servers' spans go, and how many: the trace backend of
    `monitoring.tracing` in the monitoring namespace; None when tracing is off."""
    monitoring = platform.monitoring
    return tracing_wiring(monitoring.namespace, monitoring.tracing)


def mesh_tracing(platform: PlatformConfig) -> bool:
    """The mesh-wide Telemetry is created: tracing is on and there is a mesh to trace."""
    return platform.mesh.enabled and tracing(platform) is not None


def strimzi(platform: PlatformConfig) -> bool:
    """Kafka runs in the cluster (Strimzi): its operator is a platform add-on."""
    return platform.kafka.backend is not None and platform.kafka.backend.type == "strimzi"


# -- the network hand-off ---------------------------------------------------------------------

# The backends that live in the cluster's network (mlops_platform/components/network.py `Network`, the one
# hand-off they all take), by the node that creates them.
NETWORK_BACKENDS: dict[Node, frozenset[str]] = {
    "kafka": frozenset({"msk", "managed_kafka"}),
    "mlflow": frozenset({"rds", "cloud_sql"}),
    "feast": frozenset({"elasticache", "memorystore"}),
}


def network_attached(platform: PlatformConfig) -> list[Node]:
    """The nodes that create something in the cluster's network and so take its `Network`:
    the GPU pools (their nodes join its private subnets), and Kafka, MLflow's database and
    Feast's online store where they are the cloud's managed service. None locally: a local
    cluster hands over no network."""
    if platform.cloud.type == "local":
        return []
    backends = {
        "kafka": platform.kafka.backend,
        "mlflow": platform.mlflow.database,
        "feast": platform.feast.online_store,
    }
    attached = ["gpu"] if platform.gpu_pools else []
    return attached + [
        node
        for node, backend in backends.items()
        if backend is not None and backend.type in NETWORK_BACKENDS[node]
    ]


def layer_of(node: Node) -> Layer:
    kind = node.split(":", 1)[0]
    if kind in ("cluster", "gpu", "storage"):
        return "infra"
    if kind in PLATFORM_NODES:
        return "platform"
    return "ml"


def graph(platform: PlatformConfig) -> dict[Node, tuple[Node, ...]]:
    """Every node of the (effective) platform and the nodes it waits for.

    Within a layer these are the program's `depends_on`; a node of a later layer waiting for
    one of an earlier layer is satisfied by the order of the layers (and must point backwards:
    `check_layers`)."""
    identities = platform.workload_identities

    def namespace(name: str) -> Node:
        return "pipelines" if name == PIPELINES_NAMESPACE else f"namespace:{name}"

    def identity(ns: str, account: str | None) -> list[Node]:
        return [f"identity:{key}" for key in identity_of(identities, ns, account)]

    mesh = ["mesh"] if platform.mesh.enabled else []
    nodes: dict[Node, list[Node]] = {
        "cluster": [],
        "gpu": ["cluster"],
        "storage": ["cluster"],
        # the add-ons: after the cluster (and its system pool), KFP after the store it uses
        "pipelines": ["cluster", "storage"],
        "loop-token": [],
        "monitoring": ["cluster", "loop-token"],
        **({"mesh": ["cluster"]} if platform.mesh.enabled else {}),
    }
    if strimzi(platform):
        nodes["kafka-operator"] = ["cluster"]
    if platform.delivery.enabled:
        nodes["delivery"] = ["cluster", "monitoring", *mesh]
    # the custom resources of the add-ons' CRDs, one layer after them
    nodes["alerts"] = ["monitoring"]
    if platform.mesh.enabled:
        nodes["mesh-mtls"] = ["mesh"]
    if mesh_tracing(platform):
        # the Telemetry names the extension provider istiod got, pointing at the backend
        nodes["mesh-tracing"] = ["mesh", "monitoring"]
    for name in workload_namespaces(platform):
        nodes[f"namespace:{name}"] = ["cluster"]
    nodes["kafka"] = ["cluster", *(["kafka-operator"] if strimzi(platform) else [])]
    for client in kafka_clients(platform):
        nodes[f"kafka-client:{client.name}"] = ["kafka", namespace(client.namespace)]
    grants = {
        (c.namespace, c.service_account): f"kafka-client:{c.name}" for c in kafka_clients(platform)
    }
    for key, config in identities.items():
        account = (config.namespace, config.service_account)
        nodes[f"identity:{key}"] = [
            "storage",
            namespace(config.namespace),
            *([grants[account]] if account in grants else []),
        ]
    mlflow = platform.mlflow
    nodes["mlflow"] = [
        "storage",
        namespace(mlflow.namespace),
        # its clients' credential Secrets go into their namespaces
        *(namespace(client.namespace) for client in mlflow.clients.values()),
        *identity(mlflow.namespace, mlflow.service_account),
    ]
    feast = platform.feast
    nodes["feast"] = [
        "storage",
        namespace(feast.namespace),
        *identity(feast.namespace, feast.service_account),
    ]
    loop = platform.loop
    progressive = [key for key, d in sorted(platform.serving.items()) if d.progressive is not None]
    nodes["receiver"] = [
        namespace(loop.namespace),
        "loop-token",
        "pipelines",
        *(
            [
                # its MLflow client Secret, Roles in the serving namespaces, a sidecar
                "mlflow",
                *(namespace(platform.serving[key].namespace) for key in progressive),
                *mesh,
            ]
            if progressive
            else []
        ),
    ]
    if consumed_topics(platform):
        nodes["consumer"] = [
            namespace(loop.namespace),
            f"kafka-client:{CONSUMER}",
            *identity(loop.namespace, loop.consumer.service_account),
        ]
    if drift_monitored(platform):
        nodes["drift-monitor"] = [
            namespace(loop.namespace),
            # the loop's MLflow client Secret, and the PodMonitor CRD
            "mlflow",
            "monitoring",
            *identity(loop.namespace, loop.consumer.service_account),
        ]
    for key, deployment in platform.serving.items():
        nodes[f"serving:{key}"] = [
            namespace(deployment.namespace),
            # its model is loaded through MLflow, with the client credentials it creates
            "mlflow",
            # its PodMonitor is a prometheus-operator resource (CRDs of the monitoring chart)
            "monitoring",
            # sidecar injection and the DestinationRule/VirtualService CRDs
            *mesh,
            # the Canary and MetricTemplate CRDs, and Flagger to act on them
            *(["delivery"] if deployment.progressive is not None else []),
            *([f"kafka-client:serving-{key}"] if f"kafka-client:serving-{key}" in nodes else []),
            *identity(deployment.namespace, deployment.service_account),
        ]
    return {node: tuple(dict.fromkeys(waits)) for node, waits in nodes.items()}


def check_layers(edges: Mapping[Node, Iterable[Node]]) -> list[str]:
    """Edges that point from an earlier layer to a later one (a layer cannot wait for the
    next: its `pulumi up` runs first), as readable problems."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    return [
        f"{node} ({layer_of(node)}) waits for {wait} ({layer_of(wait)})"
        for node, waits in edges.items()
        for wait in waits
        if rank[layer_of(wait)] > rank[layer_of(node)]
    ]


def same_layer(edges: Mapping[Node, Iterable[Node]], node: Node) -> list[Node]:
    """What `node` waits for inside its own layer: its `depends_on`."""
    return [wait for wait in edges[node] if layer_of(wait) == layer_of(node)]


def deploy_order(edges: Mapping[Node, Iterable[Node]]) -> list[Node]:
    """A creation order: layer by layer, each node after everything it waits for."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    order = list(TopologicalSorter(edges).static_order())
    return sorted(order, key=lambda node: rank[layer_of(node)])  # stable: keeps the topology


def teardown_order(edges: Mapping[Node, Iterable[Node]]) -> list[Node]:
    """What `pulumi destroy` of the layers (ml, then platform, then infra) deletes first:
    the creation order backwards."""
    return list(reversed(deploy_order(edges)))
