"""The multi-language component package (provider/): the schema the Python SDK's analyzer
infers from provider/platform_components.py, offline and without the CLI, and the components
constructed through the provider as a TypeScript or Go program's engine would ask for them.

Run by test_component_package.py in a fresh interpreter (why: see there); directly with
`uv run pytest tests/provider/package_checks.py`."""

import json
import runpy
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.provider.experimental import component as experimental_component
from pulumi.provider.experimental.component import ComponentProvider

from mlops_platform import mocks

PROVIDER = Path(__file__).resolve().parents[2] / "provider"
sys.path.insert(0, str(PROVIDER))
import platform_components as package  # noqa: E402

TOKEN = "mlops-platform:index:{}"


@pytest.fixture(scope="module")
def provider() -> ComponentProvider:
    # What `component_provider_host` serves: the same class, the same analysis.
    return ComponentProvider(package.COMPONENTS, package.PACKAGE, None, package.package_version())


@pytest.fixture(scope="module")
def schema(provider) -> dict:
    return json.loads(provider.schema)


def _input(schema, component, name):
    return schema["resources"][TOKEN.format(component)]["inputProperties"][name]


def _output(schema, component, name):
    return schema["resources"][TOKEN.format(component)]["properties"][name]


def test_schema_names_the_package_and_its_components(schema):
    pyproject = tomllib.loads((PROVIDER.parent / "pyproject.toml").read_text())
    assert schema["name"] == "mlops-platform"
    assert schema["version"] == pyproject["project"]["version"]
    assert set(schema["resources"]) == {
        TOKEN.format(c) for c in ("ArtifactStore", "WorkloadIdentity", "Mlflow", "ModelServing")
    }
    assert all(r["isComponent"] for r in schema["resources"].values())
    cloud = schema["types"][TOKEN.format("CloudKind")]
    assert cloud["type"] == "string"
    assert [v["value"] for v in cloud["enum"]] == ["aws", "gcp", "local"]


def test_artifact_store_inputs_and_outputs(schema):
    resource = schema["resources"][TOKEN.format("ArtifactStore")]
    assert sorted(resource["requiredInputs"]) == ["bucketPrefix", "cloud"]
    assert _input(schema, "ArtifactStore", "cloud")["$ref"] == "#/types/" + TOKEN.format(
        "CloudKind"
    )
    buckets = _input(schema, "ArtifactStore", "buckets")
    assert (buckets["type"], buckets["items"]["type"]) == ("array", "string")
    assert _input(schema, "ArtifactStore", "protect")["type"] == "boolean"
    uris = _output(schema, "ArtifactStore", "bucketUris")
    assert (uris["type"], uris["additionalProperties"]["type"]) == ("object", "string")
    assert _output(schema, "ArtifactStore", "kmsKeyArn")["type"] == "string"
    assert sorted(resource["required"]) == ["bucketArns", "bucketNames", "bucketUris"]


def test_workload_identity_inputs_and_outputs(schema):
    resource = schema["resources"][TOKEN.format("WorkloadIdentity")]
    assert sorted(resource["requiredInputs"]) == [
        "buckets",
        "cloud",
        "namespace",
        "serviceAccount",
    ]
    buckets = _input(schema, "WorkloadIdentity", "buckets")
    assert (buckets["type"], buckets["additionalProperties"]["type"]) == ("object", "string")
    arns = _input(schema, "WorkloadIdentity", "bucketArns")
    assert (arns["type"], "plain" in arns) == ("object", False)  # an ArtifactStore's output
    assert _output(schema, "WorkloadIdentity", "serviceAccountName")["type"] == "string"
    assert _output(schema, "WorkloadIdentity", "roleArn")["type"] == "string"
    assert "roleArn" not in resource["required"]


def test_mlflow_inputs_and_outputs(schema):
    resource = schema["resources"][TOKEN.format("Mlflow")]
    assert sorted(resource["requiredInputs"]) == ["artifactBucketUri", "cloud"]
    # Outputs of other resources may flow in (not plain); config values are plain.
    assert "plain" not in _input(schema, "Mlflow", "artifactBucketUri")
    assert _input(schema, "Mlflow", "replicas") == {
        "description": "Tracking-server pods. Default: 2.",
        "type": "integer",
        "plain": True,
    }
    subnets = _input(schema, "Mlflow", "databaseSubnetIds")
    assert (subnets["type"], subnets["items"]["type"]) == ("array", "string")
    assert "plain" not in subnets["items"]
    for name in ("trackingUri", "databaseEndpoint", "adminPassword", "credentialsSecretName"):
        assert _output(schema, "Mlflow", name)["type"] == "string"
    assert "adminPassword" not in resource["required"]  # none without auth
    assert "trackingUri" in resource["required"]


def test_model_serving_inputs_and_outputs(schema):
    resource = schema["resources"][TOKEN.format("ModelServing")]
    assert resource["requiredInputs"] == ["modelUri"]
    assert _input(schema, "ModelServing", "progressive")["type"] == "boolean"
    assert _input(schema, "ModelServing", "canaryWeight")["type"] == "integer"
    assert "plain" not in _input(schema, "ModelServing", "kubeconfig")
    assert _output(schema, "ModelServing", "url")["type"] == "string"
    assert _output(schema, "ModelServing", "canaryWeight")["type"] == "integer"
    assert sorted(resource["required"]) == sorted(
        ["url", "serviceName", "namespace", "modelName", "canaryWeight"]
    )


def test_every_input_and_output_is_described(schema):
    undocumented = [
        f"{token}.{name}"
        for token, resource in schema["resources"].items()
        for group in ("inputProperties", "properties")
        for name, prop in resource[group].items()
        if not prop.get("description")
    ]
    assert undocumented == []


def test_plugin_file_and_entry_point(monkeypatch):
    plugin = yaml.safe_load((PROVIDER / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}
    hosted = {}

    def host(components, name, namespace=None, version=None):
        hosted.update(components=components, name=name, version=version)

    import pulumi.provider.experimental as experimental

    monkeypatch.setattr(experimental, "component_provider_host", host)
    runpy.run_path(str(PROVIDER / "__main__.py"), run_name="__main__")
    assert hosted == {
        "components": package.COMPONENTS,
        "name": "mlops-platform",
        "version": package.package_version(),
    }


# --- constructed through the provider, under mocks ------------------------------------------


def _construct(provider, component, inputs, kubernetes_option=False):
    """`inputs` in schema (camelCase) names, as another language's SDK sends them."""

    def program():
        options = None
        if kubernetes_option:
            options = pulumi.ResourceOptions(providers={"kubernetes": k8s.Provider("team-k8s")})
        provider.construct("x", TOKEN.format(component), inputs, options)

    return mocks.run(program)


def test_model_serving_through_the_provider(provider):
    monitor = _construct(
        provider,
        "ModelServing",
        {
            "modelUri": "models:/churn@champion",
            "mlflowTrackingUri": "http://mlflow.mlflow:5000",
            "canaryModelUri": "models:/churn@challenger",
            "canaryWeight": 10.0,  # numbers arrive as floats
            "kubeconfig": "apiVersion: v1\nkind: Config\n",
        },
    )
    (wrapper,) = monitor.of_type(TOKEN.format("ModelServing"))
    (inner,) = monitor.of_type("mlops:serving:ModelDeployment")
    assert inner.parent == wrapper.urn
    (cluster,) = monitor.of_type("pulumi:providers:kubernetes")
    assert cluster.name == "x-k8s" and "kubeconfig" in cluster.secret_inputs
    deployments = {r.name for r in monitor.of_type("kubernetes:apps/v1:Deployment")}
    assert deployments == {"x-stable", "x-canary"}
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.custom:
            assert record.provider and "::x-k8s::" in record.provider, record.name


def test_artifact_store_through_the_provider(provider):
    monitor = _construct(
        provider,
        "ArtifactStore",
        {
            "cloud": "gcp",
            "gcpProject": "acme-ml",
            "region": "europe-west4",
            "bucketPrefix": "acme-ml",
            "buckets": ["artifacts"],
        },
    )
    (bucket,) = monitor.of_type("gcp:storage/bucket:Bucket")
    assert (bucket.inputs["name"], bucket.inputs["location"]) == (
        "acme-ml-artifacts",
        "EUROPE-WEST4",
    )
    assert bucket.parent_type == "mlops:storage:ObjectStore"


def test_mlflow_through_the_provider_with_the_callers_kubernetes_provider(provider):
    monitor = _construct(
        provider,
        "Mlflow",
        {
            "cloud": "aws",
            "region": "eu-west-1",
            "artifactBucketUri": "s3://acme-ml-artifacts",
            "vpcId": "vpc-1",
            "networkCidr": "10.0.0.0/16",
            "databaseSubnetIds": ["subnet-a", "subnet-b"],
            "clientSecurityGroupIds": ["sg-cluster"],
            "replicas": 3.0,
        },
        kubernetes_option=True,
    )
    types = Counter(r.type for r in monitor.recorded)
    assert types["mlops:mlflow:TrackingServer"] == 1
    assert types["aws:rds/instance:Instance"] == 1
    assert types["kubernetes:core/v1:Namespace"] == 1
    assert not monitor.of_type("aws:ec2/vpc:Vpc")
    (server,) = monitor.of_type("kubernetes:apps/v1:Deployment")
    assert server.inputs["spec"]["replicas"] == 3
    assert "::team-k8s::" in server.provider
    (group,) = monitor.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert group.inputs["subnetIds"] == ["subnet-a", "subnet-b"]


def test_workload_identity_through_the_provider(provider):
    def program():
        # The bucket ARNs and key as another resource's outputs, as from an ArtifactStore.
        provider.construct(
            "mlflow-server",
            TOKEN.format("WorkloadIdentity"),
            {
                "cloud": "aws",
                "region": "eu-west-1",
                "namespace": "mlflow",
                "serviceAccount": "mlflow",
                "buckets": {"artifacts": "read_write"},
                "bucketArns": pulumi.Output.from_input({"artifacts": "arn:aws:s3:::acme"}),
                "kmsKeyArn": pulumi.Output.from_input("arn:aws:kms:eu-west-1:1:key/k"),
                "oidcProviderArn": "arn:aws:iam::1:oidc-provider/oidc.eks/id/X",
                "oidcIssuer": "https://oidc.eks/id/X",
                "kubeconfig": "x",
            },
            None,
        )

    monitor = mocks.run(program)
    (role,) = monitor.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "oidc.eks/id/X:sub": "system:serviceaccount:mlflow:mlflow",
        "oidc.eks/id/X:aud": "sts.amazonaws.com",
    }
    (policy,) = monitor.of_type("aws:iam/rolePolicy:RolePolicy")
    resources = {
        r for st in json.loads(policy.inputs["policy"])["Statement"] for r in [st["Resource"]]
    }
    assert resources == {
        "arn:aws:s3:::acme",
        "arn:aws:s3:::acme/*",
        "arn:aws:kms:eu-west-1:1:key/k",
    }
    (account,) = monitor.of_type("kubernetes:core/v1:ServiceAccount")
    assert account.inputs["metadata"]["name"] == "mlflow"


@pytest.mark.parametrize(
    ("component", "inputs", "message"),
    [
        (
            "ModelServing",
            {"modelUri": "models:/churn@champion", "mlflowTrackingUri": "http://m:5000"},
            "ModelServing: set the `kubeconfig` input or pass a `kubernetes` provider",
        ),
        (
            "ModelServing",
            {"modelUri": "churn.pkl", "kubeconfig": "x"},
            "ModelServing: invalid inputs: model_uri: .*a local path",
        ),
        (
            "ModelServing",
            {
                "modelUri": "models:/churn@champion",
                "mlflowTrackingUri": "http://m:5000",
                "progressive": True,
                "kubeconfig": "x",
            },
            "ModelServing: progressive needs prometheus_url, load_tester_url",
        ),
        (
            "Mlflow",
            {
                "cloud": "aws",
                "region": "eu-west-1",
                "artifactBucketUri": "s3://b",
                "kubeconfig": "x",
            },
            "Mlflow: on aws vpc_id, network_cidr, database_subnet_ids, client_security_group_ids "
            "are required",
        ),
        (
            "ArtifactStore",
            {"cloud": "aws", "bucketPrefix": "acme"},
            "ArtifactStore: invalid inputs: region",
        ),
        (
            "ModelServing",
            {"modelUri": "models:/churn@champion", "kubeconfig": "x"},
            "ModelServing: invalid inputs: mlflow_tracking_uri is required",
        ),
        (
            "WorkloadIdentity",
            {
                "cloud": "gcp",
                "gcpProject": "p",
                "region": "europe-west4",
                "namespace": "mlflow",
                "serviceAccount": "mlflow",
                "buckets": {"artifacts": "write"},
                "kubeconfig": "x",
            },
            "WorkloadIdentity: invalid inputs: buckets.artifacts: Input should be 'read' or",
        ),
        (
            "WorkloadIdentity",
            {
                "cloud": "gcp",
                "gcpProject": "p",
                "region": "europe-west4",
                "namespace": "mlflow",
                "serviceAccount": "mlflow",
                "buckets": {"artifacts": "read"},
                "bucketNames": {"datasets": "acme-datasets"},
                "workloadPool": "p.svc.id.goog",
                "kubeconfig": "x",
            },
            "WorkloadIdentity: bucket_names has no artifacts",
        ),
        (
            "WorkloadIdentity",
            {
                "cloud": "aws",
                "region": "eu-west-1",
                "namespace": "mlflow",
                "serviceAccount": "mlflow",
                "buckets": {"artifacts": "read"},
                "kubeconfig": "x",
            },
            "WorkloadIdentity: on aws bucket_arns, oidc_provider_arn, oidc_issuer are required",
        ),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_created(provider, component, inputs, message):
    registered = []

    def program():
        try:
            provider.construct("x", TOKEN.format(component), inputs, None)
        finally:
            registered.extend(pulumi.runtime.settings.get_monitor().recorded)

    with pytest.raises(experimental_component.ComponentInitError, match=message):
        mocks.run(program)
    assert registered == []


def test_readme_reference_is_current(schema):
    import reference

    readme = (PROVIDER / "README.md").read_text()
    assert readme == reference.updated(readme, schema), (
        "provider/README.md's reference is stale: run `uv run mlops docs`"
    )
