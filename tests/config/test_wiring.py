"""mlops_platform/wiring.py: what the program wires, derived from the config alone (no Pulumi)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_platform import config, plan, wiring

LOCAL = {"type": "local", "kube_context": "kind-mlops", "distribution": "kind"}
AWS = {"type": "aws", "region": "us-east-1"}
CHURN = {"stable": {"model_uri": "models:/churn@champion"}, "service_account": "model-server"}


def _platform(**values) -> config.PlatformConfig:
    values.setdefault("cloud", LOCAL)
    return config.validate({f"mlops:{k}": v for k, v in values.items()}, "stacks/Pulumi.t.yaml")


def _identities(platform) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {
        key: (i.namespace, i.service_account, dict(i.buckets))
        for key, i in platform.workload_identities.items()
    }


BASE = {
    "mlflow": ("mlflow", "mlflow", {"artifacts": "read_write"}),
    "pipelines": (
        "kubeflow",
        "pipeline-runner",
        {"artifacts": "read_write", "datasets": "read_write", "features": "read"},
    ),
    "feast": ("feast", "feast", {"features": "read_write", "datasets": "read"}),
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # nothing served: the always-on components' identities only
        ({}, BASE),
        # a served model's account reads MLflow's artifact bucket; logging to the platform's
        # Kafka adds the loop's consumer, which writes windows to the loop's bucket
        (
            {"serving": {"churn": {**CHURN, "prediction_sink": "kafka"}}},
            {
                **BASE,
                "serving": ("serving", "model-server", {"artifacts": "read"}),
                "prediction-log": ("mlops-loop", "prediction-log", {"datasets": "read_write"}),
            },
        ),
        # two accounts in one namespace get one identity each, named by namespace and account
        (
            {
                "serving": {
                    "a": CHURN,
                    "b": {**CHURN, "service_account": "other"},
                    "c": CHURN,  # shares a's account: one identity
                }
            },
            {
                **BASE,
                "serving-model-server": ("serving", "model-server", {"artifacts": "read"}),
                "serving-other": ("serving", "other", {"artifacts": "read"}),
            },
        ),
        # a deployment without a service account runs as `default`: no identity
        ({"serving": {"churn": {"stable": CHURN["stable"]}}}, BASE),
        # the user's extra identity is added; one for a platform account adds its grants
        (
            {
                "workload_identities": {
                    "trainer": {
                        "namespace": "team-a",
                        "service_account": "trainer",
                        "buckets": {"datasets": "read"},
                    },
                    "more-feast": {
                        "namespace": "feast",
                        "service_account": "feast",
                        "buckets": {"artifacts": "read", "datasets": "read_write"},
                    },
                }
            },
            {
                **BASE,
                "feast": (
                    "feast",
                    "feast",
                    {"features": "read_write", "datasets": "read_write", "artifacts": "read"},
                ),
                "trainer": ("team-a", "trainer", {"datasets": "read"}),
            },
        ),
        # read never downgrades a platform grant
        (
            {
                "workload_identities": {
                    "x": {
                        "namespace": "mlflow",
                        "service_account": "mlflow",
                        "buckets": {"artifacts": "read"},
                    }
                }
            },
            BASE,
        ),
    ],
)
def test_workload_identities_are_derived_and_merged(values, expected):
    assert _identities(_platform(**values)) == expected


@pytest.mark.parametrize(
    ("serving", "clients", "expected"),
    [
        ({}, {}, {"pipelines": ("kubeflow", "EDIT")}),
        (
            {"churn": CHURN},
            {},
            {"pipelines": ("kubeflow", "EDIT"), "serving": ("serving", "READ")},
        ),
        # a progressive deployment: the loop service moves the aliases (EDIT)
        (
            {"churn": {**CHURN, "progressive": {}}},
            {},
            {
                "pipelines": ("kubeflow", "EDIT"),
                "serving": ("serving", "READ"),
                "loop": ("mlops-loop", "EDIT"),
            },
        ),
        # the user's entry with a platform key replaces it; others are added
        (
            {"churn": CHURN},
            {
                "serving": {"namespace": "serving", "permission": "MANAGE"},
                "notebooks": {"namespace": "team-a"},
            },
            {
                "pipelines": ("kubeflow", "EDIT"),
                "serving": ("serving", "MANAGE"),
                "notebooks": ("team-a", "READ"),
            },
        ),
    ],
)
def test_mlflow_clients_are_derived(serving, clients, expected):
    values = {"serving": serving, "mesh": {"enabled": True}, "delivery": {"enabled": True}}
    if clients:
        values["mlflow"] = {"clients": clients}
    platform = _platform(**values)
    got = {k: (c.namespace, c.permission) for k, c in platform.mlflow.clients.items()}
    assert got == expected


def test_serving_gets_the_platform_tracking_uri_and_its_namespace_client_secret():
    platform = _platform(
        mlflow={"namespace": "tracking"},
        serving={
            "churn": CHURN,
            "own": {
                **CHURN,
                "mlflow_tracking_uri": "https://mlflow.example.com",
                "credentials_secret": "mine",
            },
        },
    )
    churn, own = platform.serving["churn"], platform.serving["own"]
    assert churn.mlflow_tracking_uri == "http://mlflow.tracking.svc.cluster.local:5000"
    assert churn.credentials_secret == "mlflow-client-credentials"
    assert (own.mlflow_tracking_uri, own.credentials_secret) == (
        "https://mlflow.example.com",
        "mine",
    )


def test_effective_config_is_a_fixed_point():
    platform = _platform(serving={"churn": {**CHURN, "prediction_sink": "kafka"}})
    assert wiring.effective(platform) == platform


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        ({}, []),
        ({"churn": CHURN}, []),  # logs nowhere
        (
            {"churn": {**CHURN, "prediction_sink": "kafka"}},
            [
                ("serving-churn", "serving", "model-server", ("predictions",), ()),
                ("prediction-log", "mlops-loop", "prediction-log", (), ("predictions", "labels")),
            ],
        ),
        # a deployment logging to another Kafka is not the platform's client
        ({"churn": {**CHURN, "prediction_sink": "kafka", "kafka_bootstrap_servers": "k:9092"}}, []),
    ],
)
def test_kafka_clients(serving, expected):
    platform = _platform(serving=serving)
    got = [
        (c.name, c.namespace, c.service_account, c.write_topics, c.read_topics)
        for c in wiring.kafka_clients(platform)
    ]
    assert got == expected


def test_workload_namespaces_leave_kubeflow_to_its_manifests():
    platform = _platform(
        serving={"churn": {**CHURN, "namespace": "models", "service_account": "model-server"}}
    )
    assert wiring.workload_namespaces(platform) == ["feast", "mlflow", "mlops-loop", "models"]


PROD_LIKE = {
    "cloud": AWS,
    "mesh": {"enabled": True},
    "delivery": {"enabled": True},
    "serving": {"churn": {**CHURN, "prediction_sink": "kafka", "progressive": {}}},
}


def test_graph_waits_for_namespaces_identities_and_crds():
    edges = wiring.graph(_platform(**PROD_LIKE))
    assert set(edges["serving:churn"]) == {
        "namespace:serving",
        "mlflow",
        "monitoring",
        "mesh",
        "delivery",
        "kafka-client:serving-churn",
        "identity:serving",
    }
    assert set(edges["identity:serving"]) == {
        "storage",
        "namespace:serving",
        "kafka-client:serving-churn",
    }
    # the runner's identity lives in Kubeflow's namespace: it waits for KFP
    assert "pipelines" in edges["identity:pipelines"]
    assert set(edges["consumer"]) == {
        "namespace:mlops-loop",
        "kafka-client:prediction-log",
        "identity:prediction-log",
    }
    # within its layer, serving waits for what the ml layer creates; the rest is layer order
    assert set(wiring.same_layer(edges, "serving:churn")) == {
        "namespace:serving",
        "mlflow",
        "kafka-client:serving-churn",
        "identity:serving",
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # on a cloud: the alert rules and mesh-wide mTLS wait for their add-ons; Kafka is managed
        (
            PROD_LIKE,
            {
                "alerts": ("ml", ["monitoring"]),
                "mesh-mtls": ("ml", ["mesh"]),
                "kafka": ("ml", ["cluster"]),
            },
        ),
        # locally, Strimzi's operator is a platform add-on and the Kafka objects wait for it;
        # without the mesh there is no mesh-wide policy
        (
            {"mesh": {"enabled": False}},
            {
                "alerts": ("ml", ["monitoring"]),
                "kafka-operator": ("platform", ["cluster"]),
                "kafka": ("ml", ["cluster", "kafka-operator"]),
            },
        ),
    ],
    ids=["aws", "local"],
)
def test_custom_resources_wait_one_layer_after_the_add_on_with_their_crds(values, expected):
    edges = wiring.graph(_platform(**values))
    crd_users = {"alerts", "mesh-mtls", "kafka", "kafka-operator"}
    assert {
        node: (wiring.layer_of(node), list(edges[node])) for node in edges if node in crd_users
    } == expected
    # in their own layer they wait for nothing: the add-on is one `pulumi up` earlier
    assert wiring.same_layer(edges, "alerts") == []


@pytest.mark.parametrize("values", [{}, PROD_LIKE])
def test_no_layer_waits_for_a_later_one(values):
    assert wiring.check_layers(wiring.graph(_platform(**values))) == []


def test_check_layers_names_a_backwards_edge():
    assert wiring.check_layers({"cluster": ("serving:x",), "serving:x": ()}) == [
        "cluster (infra) waits for serving:x (ml)"
    ]


GCP = {"type": "gcp", "project": "p", "region": "europe-west4"}


@pytest.mark.parametrize(
    ("cloud", "values", "expected"),
    [
        # the cloud's own backend, with or without `type`: valid
        (AWS, {"mlflow": {"database": {"instance_class": "db.t4g.small"}}}, []),
        (AWS, {"mlflow": {"database": {"type": "rds", "instance_class": "db.t4g.small"}}}, []),
        (LOCAL, {"kafka": {"backend": {"type": "strimzi", "cpu_request": "100m"}}}, []),
        # another backend's setting: an unknown field of this backend, saying whose it is
        (
            AWS,
            {"mlflow": {"database": {"tier": "db-custom-2-7680"}}},
            [
                (
                    "mlops:mlflow.database.tier",
                    "unknown field for type 'rds': a setting of cloud_sql (gcp); this stack's "
                    "cloud is aws",
                )
            ],
        ),
        (
            LOCAL,
            {"kafka": {"backend": {"instance_type": "kafka.t3.small"}}},
            [
                (
                    "mlops:kafka.backend.instance_type",
                    "unknown field for type 'strimzi': a setting of msk (aws); this stack's "
                    "cloud is local",
                )
            ],
        ),
        (
            GCP,
            {"feast": {"online_store": {"memory_limit": "1Gi", "storage_class": "gp3"}}},
            [
                (
                    "mlops:feast.online_store.memory_limit",
                    "unknown field for type 'memorystore': a setting of redis (local); this "
                    "stack's cloud is gcp",
                ),
                (
                    "mlops:feast.online_store.storage_class",
                    "unknown field for type 'memorystore': a setting of redis (local); this "
                    "stack's cloud is gcp",
                ),
            ],
        ),
        # a type for another cloud
        (
            GCP,
            {"storage": {"backend": {"type": "minio", "storage_size": "5Gi"}}},
            [
                (
                    "mlops:storage.backend.type",
                    "'minio' runs on local; this stack's cloud is gcp: use 'gcs' (or leave "
                    "`type` out)",
                )
            ],
        ),
        (
            AWS,
            {"kafka": {"backend": {"type": "kafka"}}},
            [
                (
                    "mlops:kafka.backend.type",
                    "'kafka' is no backend; this stack's cloud is aws: use 'msk' (or leave "
                    "`type` out)",
                )
            ],
        ),
        # the keys of before the `type:` blocks say where they went
        (
            LOCAL,
            {"kafka": {"msk": {"instance_type": "kafka.t3.small"}}},
            [
                (
                    "mlops:kafka.msk",
                    "unknown field: moved to kafka.backend (type: msk), see UPGRADING.md",
                )
            ],
        ),
        (
            AWS,
            {"mlflow": {"database": {"aws_instance_class": "db.t4g.small"}}},
            [
                (
                    "mlops:mlflow.database.aws_instance_class",
                    "unknown field: a `type:` block names its settings without the cloud "
                    "prefix (aws_instance_class -> instance_class), see UPGRADING.md",
                )
            ],
        ),
        # the cluster's node settings: the system pool and each GPU pool are `type:` blocks
        (
            GCP,
            {"cluster": {"system_pool": {"instance_type": "m6i.large"}}},
            [
                (
                    "mlops:cluster.system_pool.instance_type",
                    "unknown field for type 'gke': a setting of eks (aws); this stack's cloud "
                    "is gcp",
                )
            ],
        ),
        (
            LOCAL,
            {"cluster": {"system_pool": {"min_size": 3}}},
            [
                (
                    "mlops:cluster.system_pool.min_size",
                    "unknown field for type 'existing': a setting of eks (aws), gke (gcp); this "
                    "stack's cloud is local",
                )
            ],
        ),
        (
            AWS,
            {"cluster": {"system_pool": {"type": "gke"}}},
            [
                (
                    "mlops:cluster.system_pool.type",
                    "'gke' runs on gcp; this stack's cloud is aws: use 'eks' (or leave `type` out)",
                )
            ],
        ),
        (
            AWS,
            {"gpu_pools": {"l4": {"instance_type": "g6.xlarge", "accelerator": "nvidia-l4"}}},
            [
                (
                    "mlops:gpu_pools.l4.accelerator",
                    "unknown field for type 'eks': a setting of gke (gcp); this stack's cloud "
                    "is aws",
                )
            ],
        ),
        (
            GCP,
            {"gpu_pools": {"a": {"type": "eks", "instance_type": "g6.xlarge"}}},
            [
                (
                    "mlops:gpu_pools.a.type",
                    "'eks' runs on aws; this stack's cloud is gcp: use 'gke' (or leave `type` out)",
                )
            ],
        ),
        # ... and the keys of before say where they went
        (
            AWS,
            {"cluster": {"system_pool": {"aws_instance_type": "m6i.xlarge"}}},
            [
                (
                    "mlops:cluster.system_pool.aws_instance_type",
                    "unknown field: a `type:` block names its settings without the cloud "
                    "prefix (aws_instance_type -> instance_type), see UPGRADING.md",
                )
            ],
        ),
        (
            AWS,
            {"cluster": {"system_pool": {"gcp_machine_type": "e2-standard-8"}}},
            [
                (
                    "mlops:cluster.system_pool.gcp_machine_type",
                    "unknown field for type 'eks': now machine_type, a setting of gke (gcp); "
                    "this stack's cloud is aws",
                )
            ],
        ),
        (
            GCP,
            {"gpu_pools": {"l4": {"instance_type": "g2-standard-8", "accelerator": "nvidia-l4"}}},
            # one mistake, one error: not also "machine_type: Field required"
            [
                (
                    "mlops:gpu_pools.l4.instance_type",
                    "unknown field: named machine_type in a `type: gke` block, see UPGRADING.md",
                ),
            ],
        ),
        # a missing setting that was not given under its old name is still required
        (
            GCP,
            {"gpu_pools": {"l4": {"accelerator": "nvidia-l4"}}},
            [("mlops:gpu_pools.l4.machine_type", "Field required")],
        ),
        # what is valid for the cloud passes, with the type filled in
        (
            GCP,
            {"gpu_pools": {"l4": {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4"}}},
            [],
        ),
    ],
)
def test_a_setting_for_another_cloud_is_an_error_of_the_backend_block(cloud, values, expected):
    raw = {"mlops:cloud": cloud, **{f"mlops:{k}": v for k, v in values.items()}}
    if expected == []:
        config.validate(raw, "stacks/Pulumi.t.yaml")
        return
    with pytest.raises(config.ConfigError) as caught:
        config.validate(raw, "stacks/Pulumi.t.yaml")
    assert caught.value.problems == expected
    assert str(caught.value).startswith("invalid stack config in stacks/Pulumi.t.yaml:")


@pytest.mark.parametrize(
    ("cloud", "expected"),
    [
        (AWS, ("msk", "s3", "elasticache", "rds", "eks")),
        (GCP, ("managed_kafka", "gcs", "memorystore", "cloud_sql", "gke")),
        (LOCAL, ("strimzi", "minio", "redis", "postgres", "existing")),
    ],
)
def test_an_omitted_backend_block_is_the_clouds_own(cloud, expected):
    platform = config.validate({"mlops:cloud": cloud}, "stacks/Pulumi.t.yaml")
    assert (
        platform.kafka.backend.type,
        platform.storage.backend.type,
        platform.feast.online_store.type,
        platform.mlflow.database.type,
        platform.cluster.system_pool.type,
    ) == expected


@pytest.mark.parametrize(
    ("cloud", "values", "expected"),
    [
        # the settings not in a `type:` block keep their cloud prefix
        (
            AWS,
            {"workload_identities": {"x": {"gcp_account_id": "x-sa"}}},
            [
                (
                    "workload_identities.x.gcp_account_id",
                    "only read on gcp; this stack's cloud is aws",
                )
            ],
        ),
        # user-named keys are not settings
        (
            LOCAL,
            {"pipelines": {"schedules": {"s": {"parameters": {"aws_like": "x"}}}}},
            [],
        ),
    ],
)
def test_cloud_prefixed_settings_of_another_cloud(cloud, values, expected):
    assert config.wrong_cloud_problems(values, cloud["type"]) == expected


@pytest.mark.parametrize(
    ("cloud", "values", "expected"),
    [
        (
            AWS,
            {"cluster": {"release_channel": "STABLE", "network": {"pods_cidr": "10.64.0.0/14"}}},
            [
                ("cluster.network.pods_cidr", "only read on gcp; this stack's cloud is aws"),
                ("cluster.release_channel", "only read on gcp; this stack's cloud is aws"),
            ],
        ),
        (
            GCP,
            {"cluster": {"admin_role_arns": [], "autoscaler": False}},
            [
                ("cluster.admin_role_arns", "only read on aws; this stack's cloud is gcp"),
                ("cluster.autoscaler", "only read on aws; this stack's cloud is gcp"),
            ],
        ),
        (
            LOCAL,
            {"cluster": {"network": {"nat_gateway_per_zone": False}}},
            [
                (
                    "cluster.network.nat_gateway_per_zone",
                    "only read on aws; this stack's cloud is local",
                )
            ],
        ),
        # both clouds read these; each cloud's own settings pass
        (AWS, {"cluster": {"api_allowed_cidrs": [], "autoscaler": True}}, []),
        (
            GCP,
            {"cluster": {"network": {"vpc_cidr": "10.0.0.0/16", "pods_cidr": "10.64.0.0/14"}}},
            [],
        ),
    ],
)
def test_cluster_settings_of_another_cloud_are_refused(cloud, values, expected):
    assert sorted(config.wrong_cloud_problems(values, cloud["type"])) == expected


def test_a_wrong_cloud_cluster_setting_fails_validation_naming_the_file():
    raw = {"mlops:cloud": AWS, "mlops:cluster": {"name": "x", "release_channel": "STABLE"}}
    with pytest.raises(config.ConfigError) as error:
        config.validate(raw, "stacks/Pulumi.t.yaml")
    assert "stacks/Pulumi.t.yaml" in str(error.value)
    assert "cluster.release_channel: only read on gcp; this stack's cloud is aws" in str(
        error.value
    )


def test_the_cloud_only_table_matches_the_cluster_descriptions():
    """Every cluster setting whose description starts with one cloud (`AWS: ...` and no
    `GCP:`) is in CLOUD_ONLY_SETTINGS under that cloud, and nothing else is."""
    from mlops_platform.components.cluster import CLOUD_ONLY_SETTINGS, ClusterConfig

    found = {}
    for prefix, model in (
        ("", ClusterConfig),
        ("network.", ClusterConfig.model_fields["network"].annotation),
    ):
        for name, field in model.model_fields.items():
            text = field.description or ""
            owners = [c for c in ("aws", "gcp") if f"{c.upper()}:" in text]
            if len(owners) == 1 and text.startswith(f"{owners[0].upper()}:"):
                found[f"{prefix}{name}"] = owners[0]
    assert found == CLOUD_ONLY_SETTINGS


# -- the network hand-off ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "values", "expected"),
    [
        (LOCAL, {"gpu_pools": {"rtx": {}}}, []),
        (AWS, {}, ["kafka", "mlflow", "feast"]),
        (
            AWS,
            {"gpu_pools": {"l4": {"instance_type": "g6.xlarge"}}},
            ["gpu", "kafka", "mlflow", "feast"],
        ),
        (
            GCP,
            {"gpu_pools": {"l4": {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4"}}},
            ["gpu", "kafka", "mlflow", "feast"],
        ),
    ],
)
def test_what_takes_the_network_hand_off(cloud, values, expected):
    raw = {"mlops:cloud": cloud, **{f"mlops:{k}": v for k, v in values.items()}}
    assert wiring.network_attached(config.validate(raw, "stacks/Pulumi.t.yaml")) == expected


STACKS = sorted(Path(__file__).resolve().parents[2].joinpath("stacks").glob("Pulumi.*.yaml"))
# the component each wiring node is, in a plan (`component` of a planned resource)
COMPONENT_NODES = {
    "mlops:gpu:NodePools": "gpu",
    "mlops:kafka:KafkaCluster": "kafka",
    "mlops:mlflow:TrackingServer": "mlflow",
    "mlops:feast:FeatureStore": "feast",
}


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name.removeprefix("Pulumi."))
def test_the_network_reaches_exactly_what_wiring_says(path):
    """In the plans of all layers, the components whose resources name the cluster network's
    VPC, subnets or security group are the nodes `network_attached` derives (a GKE node pool
    is placed by project and region, not by an id, so it shows on AWS only)."""
    name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    platform = config.load_stack_file(path)
    resources = [r.as_json() for r in plan.build_plan(name, path).resources]
    cluster = [r for r in resources if r.get("component", "").startswith("mlops:cluster:")]
    network_ids = {
        f"{r['name']}-id"
        for r in cluster
        if r["type"]
        in (
            "aws:ec2/vpc:Vpc",
            "aws:ec2/subnet:Subnet",
            "gcp:compute/network:Network",
            "gcp:compute/subnetwork:Subnetwork",
        )
    }
    reaching = {
        COMPONENT_NODES[r["component"].split()[0]]
        for r in resources
        if r.get("component", "").split(" ")[0] in COMPONENT_NODES
        and any(network_id in json.dumps(r["inputs"]) for network_id in network_ids)
    }
    expected = set(wiring.network_attached(platform))
    if platform.cloud.type == "gcp":
        expected.discard("gpu")
    assert reaching == expected


def test_online_features_read_the_platforms_feature_server():
    platform = wiring.effective(
        _platform(
            feast={"namespace": "features"},
            serving={
                "churn": {**CHURN, "online_features": True},
                "plain": CHURN,
                "own": {**CHURN, "online_features": True, "feature_server_url": "http://f:1"},
            },
        )
    )
    urls = {key: d.feature_server_url for key, d in platform.serving.items()}
    assert urls == {
        "churn": "http://feast-feature-server.features.svc.cluster.local:6566",
        "plain": None,
        "own": "http://f:1",
    }
    assert wiring.effective(platform) == platform


def test_online_features_need_a_namespace_the_feature_server_admits():
    with pytest.raises(config.ConfigError) as error:
        _platform(
            feast={"client_namespaces": ["kubeflow"]},
            serving={"churn": {**CHURN, "online_features": True}},
        )
    assert (
        "mlops:serving.churn.online_features: the feature server admits feast.client_namespaces "
        "['kubeflow']; add 'serving' there"
    ) in str(error.value)
