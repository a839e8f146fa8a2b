"""examples/mlflow-on-existing-eks under mocks: MLflow, its bucket and its IRSA role are
created on the adopted cluster; no network, no cluster, no OIDC provider."""

import json
from collections import Counter

import pytest
from example_support import (
    module_of,
    project_file,
    readme_config_keys,
    run_example,
    single,
    types_of,
)

EXAMPLE = "mlflow-on-existing-eks"
OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/C0FFEE"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/C0FFEE"
ENDPOINT = "https://C0FFEE.gr7.eu-west-1.eks.amazonaws.com"
# What the data sources return for the team's cluster (aws eks describe-cluster, trimmed).
ANSWERS = {
    "aws:eks/getCluster:getCluster": {
        "name": "team-prod",
        "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/team-prod",
        "endpoint": ENDPOINT,
        "certificateAuthorities": [{"data": "VEVBTS1DQQ=="}],
        "identities": [{"oidcs": [{"issuer": ISSUER}]}],
        "vpcConfig": {
            "vpcId": "vpc-team",
            "subnetIds": ["subnet-private-a", "subnet-private-b", "subnet-public-a"],
            "clusterSecurityGroupId": "sg-team-cluster",
            "securityGroupIds": [],
            "publicAccessCidrs": [],
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
            "controlPlaneEgressMode": "AWS_MANAGED",
        },
    },
    "aws:ec2/getVpc:getVpc": {"id": "vpc-team", "cidrBlock": "10.42.0.0/16"},
    "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": {
        "arn": OIDC_ARN,
        "url": ISSUER.removeprefix("https://"),
        "clientIdLists": ["sts.amazonaws.com"],
        "thumbprintLists": [],
        "tags": {},
    },
}
CONFIG = {
    "aws:region": "eu-west-1",
    f"{EXAMPLE}:clusterName": "team-prod",
    f"{EXAMPLE}:databaseSubnetIds": ["subnet-private-a", "subnet-private-b"],
    f"{EXAMPLE}:bucketPrefix": "acme-ml",
}

# Everything the program may create, by type and count: one bucket (+ the access-log bucket),
# one IRSA role, RDS with its subnet group and security group, MLflow's objects.
EXPECTED = {
    "mlops:storage:ObjectStore": 1,
    "mlops:platform:WorkloadNamespaces": 1,
    "mlops:identity:WorkloadIdentity": 1,
    "mlops:mlflow:TrackingServer": 1,
    "pulumi:providers:kubernetes": 1,
    "aws:kms/key:Key": 1,
    "aws:kms/alias:Alias": 1,
    "aws:s3/bucket:Bucket": 2,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 2,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 2,
    "aws:s3/bucketPolicy:BucketPolicy": 2,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 2,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 2,
    "aws:s3/bucketVersioning:BucketVersioning": 1,
    "aws:s3/bucketLogging:BucketLogging": 1,
    "aws:iam/role:Role": 1,
    "aws:iam/rolePolicy:RolePolicy": 1,
    "aws:ec2/securityGroup:SecurityGroup": 1,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 1,
    "aws:rds/subnetGroup:SubnetGroup": 1,
    "aws:rds/instance:Instance": 1,
    "random:index/randomPassword:RandomPassword": 3,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 1,
    "kubernetes:core/v1:Secret": 1,
    "kubernetes:core/v1:Service": 1,
    "kubernetes:apps/v1:Deployment": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
}


@pytest.fixture(scope="module")
def run():
    return run_example(EXAMPLE, CONFIG, answers=ANSWERS)


def test_creates_exactly_mlflow_its_bucket_and_identity(run):
    monitor, _ = run
    assert dict(Counter(r.type for r in monitor.recorded)) == EXPECTED


def test_creates_no_network_no_cluster_no_oidc_provider(run):
    monitor, _ = run
    forbidden = {
        t
        for t in types_of(monitor)
        if t.startswith(("aws:ec2/vpc", "aws:ec2/subnet", "aws:ec2/natGateway", "aws:eks/"))
        or t in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable")
        or t == "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    }
    assert forbidden == set()


def test_adopts_the_cluster_by_name(run):
    _, example_mocks = run
    calls = dict(example_mocks.calls)
    assert calls["aws:eks/getCluster:getCluster"]["name"] == "team-prod"
    assert calls["aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider"]["url"] == ISSUER


def test_kubernetes_objects_go_to_the_adopted_cluster(run):
    monitor, _ = run
    provider = single(monitor, "pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.secret_inputs
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == ENDPOINT
    assert kubeconfig["users"][0]["user"]["exec"]["args"] == [
        "--region",
        "eu-west-1",
        "eks",
        "get-token",
        "--cluster-name",
        "team-prod",
        "--output",
        "json",
    ]
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.custom:
            assert record.provider and "::mlflow-eks::" in record.provider, record.name


def test_irsa_role_trusts_only_the_mlflow_service_account(run):
    monitor, _ = run
    trust = json.loads(single(monitor, "aws:iam/role:Role").inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    issuer = ISSUER.removeprefix("https://")
    assert statement["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:mlflow:mlflow",
        f"{issuer}:aud": "sts.amazonaws.com",
    }
    account = single(monitor, "kubernetes:core/v1:ServiceAccount")
    assert account.inputs["metadata"]["namespace"] == "mlflow"
    assert "eks.amazonaws.com/role-arn" in account.inputs["metadata"]["annotations"]


def test_artifacts_bucket_and_database_in_the_clusters_vpc(run):
    monitor, _ = run
    buckets = {r.name: r.inputs["bucket"] for r in monitor.of_type("aws:s3/bucket:Bucket")}
    assert buckets == {
        "mlflow-artifacts": "acme-ml-artifacts",
        "mlflow-access-logs": "acme-ml-access-logs",
    }
    assert single(monitor, "aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == "vpc-team"
    rule = single(monitor, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["referencedSecurityGroupId"] == "sg-team-cluster"
    assert single(monitor, "aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == [
        "subnet-private-a",
        "subnet-private-b",
    ]
    database = single(monitor, "aws:rds/instance:Instance")
    assert database.inputs["storageEncrypted"] is True
    assert database.inputs["engine"] == "postgres"


def test_exports_the_tracking_uri_and_a_secret_admin_password(run):
    monitor, _ = run
    assert monitor.exports.values["tracking_uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert monitor.exports.values["artifacts_bucket"] == "acme-ml-artifacts"
    assert "admin_password" in monitor.exports.secret_names


def test_a_missing_setting_names_the_key_and_the_stack_file():
    config = {k: v for k, v in CONFIG.items() if not k.endswith(":databaseSubnetIds")}
    with pytest.raises(Exception, match=rf"Pulumi\.example\.yaml: {EXAMPLE}:databaseSubnetIds"):
        run_example(EXAMPLE, config, answers=ANSWERS)


def test_project_file():
    project = project_file(EXAMPLE)
    assert project["name"] == EXAMPLE
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}


def test_readme_lists_every_config_key():
    keys = set(module_of(EXAMPLE).Settings.model_fields) | {"aws:region"}
    assert readme_config_keys(EXAMPLE) == keys
