"""Kubeflow Pipelines, resource layer under recording mocks: types, names, inputs, parents."""

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity import (
    WorkloadIdentity,
    WorkloadIdentityArgs,
    WorkloadIdentityConfig,
)
from mlops_platform.components.pipelines import (
    KubeflowPipelines,
    KubeflowPipelinesArgs,
    PipelinesConfig,
    model,
)
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs, StorageConfig
from tests.components.component_support import output_value

AWS = AwsCloud(type="aws", region="us-east-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
LOCAL = LocalCloud(type="local")
RUNNER = WorkloadIdentityConfig(
    namespace="kubeflow", service_account="pipeline-runner", buckets={"artifacts": "read_write"}
)
IDENTITIES = {"pipelines": RUNNER}
COMPONENT_URN = "urn:pulumi:test::mlops::mlops:pipelines:KubeflowPipelines"
CLUSTER_SCOPED = f"{COMPONENT_URN}$kubernetes:kustomize/v2:Directory::kfp-cluster-scoped"
INSTALL = f"{COMPONENT_URN}$kubernetes:kustomize/v2:Directory::kfp-platform-agnostic"
LAUNCHER = f"{COMPONENT_URN}$kubernetes:core/v1:ConfigMap::kfp-launcher-config"
SYNC_SPEC = f"{COMPONENT_URN}$kubernetes:core/v1:ConfigMap::kfp-sync-spec"
SCHEDULES = {
    "nightly-drift": {
        "pipeline": "drift",
        "cron": "0 0 2 * * *",
        "parameters": {
            "data_uri": "s3://acme-dev-datasets/churn/latest.parquet",
            "reference_uri": "s3://acme-dev-datasets/churn/reference.parquet",
            "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
        },
    }
}


@dataclass
class FakeStore:
    """The object store's outputs KFP reads, without creating any buckets."""

    bucket_names: dict = field(default_factory=lambda: {"artifacts": "acme-dev-artifacts"})
    endpoint: pulumi.Output | None = None


def _run(cloud, config=None, identities=IDENTITIES, store=None, defaults=None):
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        built["kfp"] = KubeflowPipelines(
            "kfp",
            KubeflowPipelinesArgs(
                config=config or PipelinesConfig(),
                cloud=cloud,
                storage=store or FakeStore(),
                kubernetes=provider,
                identities=identities,
                parameter_defaults=defaults or {},
            ),
        )

    monitor = mocks.run(program)
    return monitor, built["kfp"]


@pytest.fixture(scope="module")
def aws():
    return _run(AWS)


def test_creates_exactly_these_children_under_the_component(aws):
    monitor, _ = aws
    component = monitor.named("kfp")
    assert component.type == "mlops:pipelines:KubeflowPipelines"
    assert component.parent_type == "pulumi:pulumi:Stack"
    children = sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)
    assert children == [
        ("kubernetes:batch/v1:Job", "kfp-sync"),
        ("kubernetes:core/v1:ConfigMap", "kfp-launcher-config"),
        ("kubernetes:core/v1:ConfigMap", "kfp-sync-spec"),
        ("kubernetes:kustomize/v2:Directory", "kfp-cluster-scoped"),
        ("kubernetes:kustomize/v2:Directory", "kfp-platform-agnostic"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "kfp-mysql-ingress"),
    ]
    assert len(monitor.recorded) == len(children) + 2  # the test's provider and the component


def test_upstream_manifests_at_the_pinned_release(aws):
    monitor, _ = aws
    cluster_scoped = monitor.named("kfp-cluster-scoped")
    assert cluster_scoped.urn == CLUSTER_SCOPED
    assert cluster_scoped.inputs == {
        "directory": "https://github.com/kubeflow/pipelines/manifests/kustomize/"
        "cluster-scoped-resources?ref=2.16.1"
    }
    assert cluster_scoped.depends_on == []
    env = monitor.named("kfp-platform-agnostic")
    # relative to the project root: the same in every checkout's state and plan
    assert env.inputs == {"directory": "mlops_platform/components/pipelines/kustomize"}
    assert (model.OVERLAY_DIR / "kustomization.yaml").is_file()
    assert env.depends_on == [CLUSTER_SCOPED]


def test_every_kubernetes_child_uses_the_given_provider(aws):
    monitor, _ = aws
    provider = monitor.named("k8s").urn
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:"):
            assert record.provider is not None, record.name
            assert record.provider.startswith(provider), record.name


def test_objects_created_directly_wait_for_the_namespace_and_are_valid(aws):
    monitor, _ = aws
    for name in ("kfp-launcher-config", "kfp-mysql-ingress"):
        record = monitor.named(name)
        assert record.depends_on == [CLUSTER_SCOPED], name
        manifests.validate(record.inputs)
    assert (
        monitor.named("kfp-mysql-ingress").inputs["spec"] == (model.mysql_network_policy()["spec"])
    )


def test_sync_job_runs_after_the_install_with_the_rendered_spec():
    config = PipelinesConfig(schedules=SCHEDULES)
    monitor, _ = _run(AWS, config=config)
    spec = monitor.named("kfp-sync-spec")
    assert spec.inputs == model.sync_config_map(config)
    assert spec.depends_on == [CLUSTER_SCOPED]
    job = monitor.named("kfp-sync")
    assert job.inputs == model.sync_job(config)
    assert job.inputs["metadata"]["name"] == spec.inputs["metadata"]["name"]
    assert sorted(job.depends_on) == sorted([CLUSTER_SCOPED, INSTALL, LAUNCHER, SYNC_SPEC])
    for record in (spec, job):
        manifests.validate(record.inputs)
    recurring = json.loads(spec.inputs["data"]["spec.json"])["recurring_runs"]
    assert list(recurring) == ["nightly-drift"]


def test_a_changed_schedule_is_a_new_job_and_publish_false_creates_none():
    base, _ = _run(AWS)
    changed, _ = _run(AWS, config=PipelinesConfig(schedules=SCHEDULES))
    names = [m.named("kfp-sync").inputs["metadata"]["name"] for m in (base, changed)]
    assert names[0] != names[1]
    assert all(n.startswith("kfp-sync-") for n in names)
    off, _ = _run(AWS, config=PipelinesConfig(publish=False))
    assert not [r for r in off.recorded if r.name.startswith("kfp-sync")]


WINDOWS = {"nightly": {"pipeline": "windows_drift", "cron": "0 0 2 * * *"}}


def test_the_platform_fills_in_its_values_where_the_pipeline_declares_them():
    config = PipelinesConfig(
        schedules={
            **WINDOWS,
            "weekly": {**WINDOWS["nightly"], "parameters": {"tracking_uri": "http://other"}},
        }
    )
    defaults = {
        "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
        # An output of the object store, resolved before the spec is rendered.
        "bucket_uri": pulumi.Output.from_input("s3://acme-dev-datasets"),
    }
    monitor, _ = _run(AWS, config=config, defaults=defaults)
    spec = monitor.named("kfp-sync-spec").inputs
    recurring = json.loads(spec["data"]["spec.json"])["recurring_runs"]
    assert recurring["nightly"]["parameters"] == {
        "bucket_uri": "s3://acme-dev-datasets",
        "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
    }
    assert recurring["weekly"]["parameters"]["tracking_uri"] == "http://other"  # its own wins
    resolved = {"tracking_uri": defaults["tracking_uri"], "bucket_uri": "s3://acme-dev-datasets"}
    assert spec == model.sync_config_map(config, defaults=resolved)
    assert monitor.named("kfp-sync").inputs == model.sync_job(config, defaults=resolved)


@pytest.mark.parametrize(("cloud", "scheme"), [(AWS, "s3"), (GCP, "gs")])
def test_clouds_write_artifacts_to_the_platform_bucket_with_the_runner_identity(cloud, scheme):
    config = PipelinesConfig(pipeline_root_prefix="kfp/v2")
    monitor, kfp = _run(cloud, config=config)
    assert monitor.named("kfp-launcher-config").inputs == model.launcher_configmap(
        cloud.type, "acme-dev-artifacts", "kfp/v2"
    )
    assert monitor.named("kfp-launcher-config").inputs["data"] == {
        "defaultPipelineRoot": f"{scheme}://acme-dev-artifacts/kfp/v2"
    }
    assert output_value(kfp.pipeline_root) == f"{scheme}://acme-dev-artifacts/kfp/v2"


def test_outputs(aws):
    _, kfp = aws
    assert output_value(kfp.namespace) == "kubeflow"
    assert output_value(kfp.api_endpoint) == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert output_value(kfp.ui_service) == "ml-pipeline-ui"
    assert output_value(kfp.pipeline_root) == "s3://acme-dev-artifacts/pipelines"
    assert kfp.namespace_owner.__class__ is k8s.kustomize.v2.Directory


def test_local_launcher_uses_the_store_endpoint_and_the_runner_identity_secret():
    """With the real ObjectStore and WorkloadIdentity: the Secret the launcher config names is
    the one the identity creates, in the same namespace, with the same keys."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        store = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=LOCAL,
                config=StorageConfig(bucket_prefix="acme-dev", buckets={"artifacts": {}}),
                kubernetes=provider,
                identities=IDENTITIES,
            ),
        )
        kfp = KubeflowPipelines(
            "kfp",
            KubeflowPipelinesArgs(
                config=PipelinesConfig(),
                cloud=LOCAL,
                storage=store,
                kubernetes=provider,
                identities=IDENTITIES,
            ),
        )
        WorkloadIdentity(
            "pipelines",
            WorkloadIdentityArgs(cloud=LOCAL, config=RUNNER, storage=store, kubernetes=provider),
            pulumi.ResourceOptions(depends_on=[kfp.namespace_owner]),
        )
        built["kfp"] = kfp

    monitor = mocks.run(program)
    launcher = monitor.named("kfp-launcher-config").inputs
    manifests.validate(launcher)
    assert launcher["data"]["defaultPipelineRoot"] == "minio://acme-dev-artifacts/pipelines"
    assert output_value(built["kfp"].pipeline_root) == "minio://acme-dev-artifacts/pipelines"
    providers = yaml.safe_load(launcher["data"]["providers"])
    assert providers == model.launcher_providers(
        "local", "http://minio.minio.svc.cluster.local:9000"
    )
    ref = providers["minio"]["default"]["credentials"]["secretRef"]

    secret = monitor.named("pipelines-s3-credentials")
    assert secret.inputs["metadata"] == {"name": ref["secretName"], "namespace": "kubeflow"}
    assert {ref["accessKeyKey"], ref["secretKeyKey"]} <= set(secret.inputs["stringData"])
    assert secret.inputs["stringData"]["AWS_ENDPOINT_URL"] == providers["s3"]["default"]["endpoint"]
    # The only pipeline-runner ServiceAccount is the identity's, created after the namespace.
    accounts = [
        r
        for r in monitor.of_type("kubernetes:core/v1:ServiceAccount")
        if r.inputs["metadata"]["name"] == "pipeline-runner"
    ]
    assert [a.name for a in accounts] == ["pipelines-service-account"]
    assert CLUSTER_SCOPED in accounts[0].depends_on
    # No key material in the launcher config.
    assert "mock-" not in launcher["data"]["providers"]


@pytest.mark.parametrize(
    ("cloud", "config", "identities", "store", "message"),
    [
        (
            AWS,
            PipelinesConfig(artifact_bucket="models"),
            IDENTITIES,
            None,
            "pipelines.artifact_bucket: unknown bucket 'models'; storage.buckets has 'artifacts'",
        ),
        (
            AWS,
            None,
            {},
            None,
            "pipelines: pipeline steps run as kubeflow/pipeline-runner: add a workload_identities "
            "entry with namespace 'kubeflow' and service_account 'pipeline-runner' and read_write "
            "on 'artifacts'",
        ),
        (
            GCP,
            None,
            {"pipelines": RUNNER.model_copy(update={"buckets": {"artifacts": "read"}})},
            None,
            "workload_identities.pipelines.buckets: the pipeline runner writes artifacts to "
            "'artifacts' (pipelines.artifact_bucket): it needs read_write",
        ),
        (
            LOCAL,
            None,
            IDENTITIES,
            FakeStore(endpoint=None),
            "pipelines: locally the object store must report its MinIO endpoint",
        ),
        (
            AWS,
            PipelinesConfig(schedules=WINDOWS),
            IDENTITIES,
            None,
            "pipelines.schedules.nightly.parameters.bucket_uri: required by pipeline "
            "'windows_drift' and not provided by the platform here (the datasets bucket the "
            "prediction-log consumer writes its windows to): set it",
        ),
    ],
)
def test_invalid_input_fails_before_anything_is_registered(
    cloud, config, identities, store, message
):
    errors = []

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        try:
            KubeflowPipelines(
                "kfp",
                KubeflowPipelinesArgs(
                    config=config or PipelinesConfig(),
                    cloud=cloud,
                    storage=store or FakeStore(),
                    kubernetes=provider,
                    identities=identities,
                ),
            )
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [message]
    assert [r.name for r in monitor.recorded] == ["k8s"]


def test_a_provider_is_required():
    with pytest.raises(ValueError) as info:
        KubeflowPipelines(
            "kfp",
            KubeflowPipelinesArgs(
                config=PipelinesConfig(),
                cloud=AWS,
                storage=FakeStore(),
                kubernetes=None,
                identities=IDENTITIES,
            ),
        )
    assert str(info.value) == "KubeflowPipelinesArgs.kubernetes: a Kubernetes provider is required"
