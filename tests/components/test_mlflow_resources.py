"""MLflow tracking server, resource layer under recording mocks: exact types, names, inputs,
parents, outputs and secrets, on AWS, GCP and a local cluster."""

from types import SimpleNamespace

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity import WorkloadIdentity, WorkloadIdentityArgs
from mlops_platform.components.identity.model import WorkloadIdentityConfig
from mlops_platform.components.mlflow import (
    MlflowConfig,
    TrackingServer,
    TrackingServerArgs,
    model,
)
from mlops_platform.components.network import Network
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs, StorageConfig
from tests.components.component_support import (
    named,
    output_value,
    run_with_mocks,
    untranslated_keys,
)

AWS = AwsCloud(type="aws", region="eu-west-1", tags={"team": "ml"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4", labels={"team": "ml"})
LOCAL = LocalCloud(type="local")
CONFIG = MlflowConfig()
RDS_HOST = "mlops-test-mlflow.abc123.eu-west-1.rds.amazonaws.com"
CLOUD_SQL_IP = "10.100.0.3"

SECRET = "kubernetes:core/v1:Secret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PASSWORD = "random:index/randomPassword:RandomPassword"
RDS = "aws:rds/instance:Instance"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"


class _Mocks(mocks.RecordingMocks):
    """The shared mocks plus the database addresses the providers compute."""

    def new_resource(self, args):
        resource_id, outputs = super().new_resource(args)
        if args.typ == RDS:
            outputs.update(address=RDS_HOST, endpoint=f"{RDS_HOST}:5432", port=5432)
        if args.typ == CLOUD_SQL:
            outputs["privateIpAddress"] = CLOUD_SQL_IP
        return resource_id, outputs


def _run_program(program):
    return run_with_mocks(program, _Mocks())


def _store(uri):
    return SimpleNamespace(bucket_uris={"artifacts": pulumi.Output.from_input(uri)})


def _aws_network(subnets, groups):
    return Network(
        cloud="aws",
        network_id="vpc-0abc",
        cidr="10.0.0.0/16",
        private_subnet_ids=subnets,
        client_security_group_ids=groups,
    )


def _gcp_network(network_id="projects/acme-ml/global/networks/core"):
    return Network(
        cloud="gcp",
        network_id=network_id,
        cidr="10.40.0.0/20",
        private_subnet_ids=["projects/acme-ml/regions/europe-west4/subnetworks/nodes"],
        project="acme-ml",
        region="europe-west4",
    )


NETWORKS = {
    "aws": dict(network=_aws_network(["subnet-a", "subnet-b", "subnet-c"], ["sg-cluster"])),
    "gcp": dict(network=_gcp_network()),
    "local": {},
}
URIS = {"aws": "s3://mlops-test-artifacts", "gcp": "gs://mlops-test-artifacts", "local": "s3://x"}


def _run(cloud, config=CONFIG, protect=False, **network):
    """Build one TrackingServer after its Namespace; return the monitor and the component."""
    built = {}
    network = network or NETWORKS[cloud.type]

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        namespace = k8s.core.v1.Namespace(
            "mlflow-namespace",
            metadata={"name": config.namespace},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        built["server"] = TrackingServer(
            "tracking",
            TrackingServerArgs(
                cloud=cloud,
                config=config,
                storage=_store(URIS[cloud.type]),
                kubernetes=provider,
                protect=protect,
                **network,
            ),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )

    monitor = _run_program(program)
    return monitor, built["server"]


def _children(monitor):
    parent = monitor.named("tracking").urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)


KUBERNETES_CHILDREN = [
    (SECRET, "tracking-credentials"),
    (DEPLOYMENT, "tracking-server"),
    (SERVICE, "tracking-service"),
    (PDB, "tracking-pdb"),
    (NETWORK_POLICY, "tracking-ingress"),
]
PASSWORDS = [
    (PASSWORD, "tracking-database-password"),
    (PASSWORD, "tracking-admin-password"),
    (PASSWORD, "tracking-flask-secret-key"),
]


# --- shared -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_component_type_parents_and_providers(cloud):
    monitor, _ = _run(cloud)
    component = monitor.named("tracking")
    assert component.type == "mlops:mlflow:TrackingServer"
    assert component.custom is False
    assert component.parent_type == "pulumi:pulumi:Stack"
    provider_urn = monitor.named("k8s").urn
    namespace_urn = monitor.named("mlflow-namespace").urn
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.name not in ("mlflow-namespace",):
            if record.type == "pulumi:providers:kubernetes":
                continue
            assert record.parent == component.urn, record.name
            assert record.provider.startswith(provider_urn), record.name
            assert namespace_urn in record.depends_on, record.name
        assert not untranslated_keys(record.inputs), (record.name, untranslated_keys(record.inputs))


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_outputs(cloud):
    monitor, server = _run(cloud)
    host = {"aws": RDS_HOST, "gcp": CLOUD_SQL_IP}.get(
        cloud.type, "mlflow-postgres.mlflow.svc.cluster.local"
    )
    assert output_value(server.tracking_uri) == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert output_value(server.namespace) == "mlflow"
    assert output_value(server.service_name) == "mlflow"
    assert output_value(server.database_endpoint) == f"{host}:5432"
    assert output_value(server.admin_username) == "admin"
    assert output_value(server.credentials_secret_name) == "mlflow-credentials"
    generated = named(monitor, PASSWORD, "tracking-admin-password")
    assert output_value(server.admin_password) == f"mock-{_digest(generated)}"
    assert _sync_await(server.admin_password.is_secret()) is True
    for plain in ("tracking_uri", "database_endpoint", "admin_username"):
        assert _sync_await(getattr(server, plain).is_secret()) is False, plain


def _digest(record):
    import hashlib

    return hashlib.sha1(f"{record.type}/{record.name}".encode()).hexdigest()[:12]


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_passwords_are_generated_and_only_ever_secret(cloud):
    monitor, _ = _run(cloud)
    for _, name in PASSWORDS:
        password = named(monitor, PASSWORD, name)
        length = 64 if name == "tracking-flask-secret-key" else 32
        assert password.inputs == {"length": length, "special": False}
        assert password.parent_name == "tracking"
    for _, name in PASSWORDS:
        generated = f"mock-{_digest(named(monitor, PASSWORD, name))}"
        for record in monitor.recorded:
            # Wherever a password is an input, that input is secret: masked, it shows nowhere.
            assert generated not in str(record.masked_inputs), (name, record.name)
    secret = named(monitor, SECRET, "tracking-credentials")
    assert secret.secret_inputs == {"stringData"}
    keys = model.credentials_secret_keys(cloud.type, True)
    assert secret.masked_inputs["stringData"] == dict.fromkeys(keys, mocks.SECRET_MASK)


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_credentials_secret_holds_the_uri_and_the_auth_config(cloud):
    monitor, _ = _run(cloud)
    db_password = f"mock-{_digest(named(monitor, PASSWORD, 'tracking-database-password'))}"
    admin_password = f"mock-{_digest(named(monitor, PASSWORD, 'tracking-admin-password'))}"
    flask_key = f"mock-{_digest(named(monitor, PASSWORD, 'tracking-flask-secret-key'))}"
    host, ssl = {
        "aws": (RDS_HOST, "require"),
        "gcp": (CLOUD_SQL_IP, "require"),
        "local": ("mlflow-postgres.mlflow.svc.cluster.local", "disable"),
    }[cloud.type]
    uri = f"postgresql+psycopg2://mlflow:{db_password}@{host}:5432/mlflow?sslmode={ssl}"
    secret = named(monitor, SECRET, "tracking-credentials")
    assert secret.inputs["metadata"] == model.credentials_secret_metadata(CONFIG)
    assert secret.inputs["type"] == "Opaque"
    expected = {
        "backend-store-uri": uri,
        "basic-auth.ini": model.auth_config_ini(CONFIG.auth, uri, admin_password),
        "admin-username": "admin",
        "admin-password": admin_password,
        "admin-credentials": model.mlflow_credentials_file("admin", admin_password),
        "flask-secret-key": flask_key,
    }
    if cloud.type == "local":
        expected["database-password"] = db_password
    assert secret.inputs["stringData"] == expected


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_kubernetes_objects_are_the_rendered_ones_with_the_bucket(cloud):
    monitor, _ = _run(cloud)
    region = "eu-west-1" if cloud.type == "aws" else None
    rendered = model.render(CONFIG, cloud.type, f"{URIS[cloud.type]}/mlflow", region)
    deployment = named(monitor, DEPLOYMENT, "tracking-server")
    obj = deployment.inputs
    assert obj == rendered.deployment
    manifests.validate(obj)
    args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--artifacts-destination") + 1] == f"{URIS[cloud.type]}/mlflow"
    for typ, name, key in (
        (SERVICE, "tracking-service", "service"),
        (PDB, "tracking-pdb", "pod_disruption_budget"),
        (NETWORK_POLICY, "tracking-ingress", "network_policy"),
    ):
        record = named(monitor, typ, name)
        assert record.inputs == getattr(rendered, key)
        manifests.validate(record.inputs)
    # The server starts once its credentials (and the database) exist.
    secret = named(monitor, SECRET, "tracking-credentials")
    assert secret.urn in deployment.depends_on


def test_auth_off_creates_no_admin_password():
    monitor, server = _run(LOCAL, config=MlflowConfig(auth={"enabled": False}))
    assert [r.name for r in monitor.of_type(PASSWORD)] == ["tracking-database-password"]
    assert server.admin_password is None and server.admin_username is None
    secret = named(monitor, SECRET, "tracking-credentials")
    assert sorted(secret.inputs["stringData"]) == ["backend-store-uri", "database-password"]


def test_an_unknown_artifact_bucket_fails_before_anything_is_registered():
    def program():
        TrackingServer(
            "tracking",
            TrackingServerArgs(
                cloud=LOCAL,
                config=MlflowConfig(artifact_bucket="models"),
                storage=_store("s3://x"),
                kubernetes=k8s.Provider("k8s", kubeconfig="{}"),
            ),
        )

    with pytest.raises(ValueError, match=r"mlflow\.artifact_bucket: unknown bucket 'models'"):
        _run_program(program)


@pytest.mark.parametrize(
    ("cloud", "message"),
    [
        (AWS, "TrackingServerArgs.network: the cluster's network is required on aws"),
        (GCP, "TrackingServerArgs.network: the cluster's network is required on gcp"),
    ],
    ids=["aws", "gcp"],
)
def test_cloud_network_is_required(cloud, message):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        TrackingServer(
            "tracking",
            TrackingServerArgs(
                cloud=cloud, config=CONFIG, storage=_store("s3://x"), kubernetes=provider
            ),
        )

    with pytest.raises(ValueError, match=message):
        _run_program(program)


# --- AWS --------------------------------------------------------------------------------------


def test_aws_creates_exactly_these_resources():
    monitor, _ = _run(AWS)
    assert _children(monitor) == sorted(
        [
            *KUBERNETES_CHILDREN,
            *PASSWORDS,
            ("aws:ec2/securityGroup:SecurityGroup", "tracking-database"),
            (
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "tracking-database-from-cluster-0",
            ),
            ("aws:rds/subnetGroup:SubnetGroup", "tracking-database"),
            (RDS, "tracking-database"),
        ]
    )


@pytest.mark.parametrize("protect", [False, True])
def test_aws_rds_instance(protect):
    monitor, _ = _run(AWS, protect=protect)
    instance = named(monitor, RDS, "tracking-database")
    inputs = dict(instance.inputs)
    password = inputs.pop("password")
    assert password.startswith("mock-") and instance.secret_inputs == {"password"}
    expected = {
        "identifier": "mlops-test-mlflow",
        "engine": "postgres",
        "engineVersion": "17",
        "autoMinorVersionUpgrade": True,
        "instanceClass": "db.t4g.medium",
        "allocatedStorage": 20,
        "maxAllocatedStorage": 100,
        "storageType": "gp3",
        "storageEncrypted": True,
        "dbName": "mlflow",
        "username": "mlflow",
        "iamDatabaseAuthenticationEnabled": False,
        "dbSubnetGroupName": "mlops-test-mlflow",
        "vpcSecurityGroupIds": ["tracking-database-id"],
        "publiclyAccessible": False,
        "multiAz": False,
        "backupRetentionPeriod": 7,
        "copyTagsToSnapshot": True,
        "deleteAutomatedBackups": not protect,
        "deletionProtection": protect,
        "skipFinalSnapshot": not protect,
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
        "tags": {"team": "ml"},
    }
    if protect:
        expected["finalSnapshotIdentifier"] = "mlops-test-mlflow-final"
    assert inputs == expected
    subnet_group = named(monitor, "aws:rds/subnetGroup:SubnetGroup", "tracking-database")
    assert subnet_group.urn in instance.depends_on
    assert (instance.protect, instance.retain_on_delete) == (protect, protect)


def test_aws_explicit_settings_reach_the_instance():
    config = MlflowConfig(
        database={
            "type": "rds",
            "instance_class": "db.r7g.large",
            "storage_gb": 50,
            "max_storage_gb": 500,
            "high_availability": True,
            "backup_retention_days": 30,
            "iam_authentication": True,
            "deletion_protection": True,
            "identifier": "ml-prod-registry",
            "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234",
        }
    )
    monitor, _ = _run(AWS, config=config, protect=False)
    inputs = named(monitor, RDS, "tracking-database").inputs
    assert inputs["instanceClass"] == "db.r7g.large"
    assert (inputs["allocatedStorage"], inputs["maxAllocatedStorage"]) == (50, 500)
    assert inputs["multiAz"] is True
    assert inputs["backupRetentionPeriod"] == 30
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    # deletion_protection set explicitly wins over protect_stateful=false
    assert (inputs["deletionProtection"], inputs["skipFinalSnapshot"]) == (True, False)
    assert inputs["finalSnapshotIdentifier"] == "ml-prod-registry-final"
    assert inputs["identifier"] == "ml-prod-registry"
    assert inputs["kmsKeyId"] == "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234"


def test_aws_network_private_subnets_and_cluster_only_ingress():
    network = _aws_network(["subnet-a", "subnet-b"], ["sg-cluster", "sg-nodes"])
    monitor, _ = _run(AWS, network=network)
    group = named(monitor, "aws:ec2/securityGroup:SecurityGroup", "tracking-database")
    assert group.inputs == {
        "vpcId": "vpc-0abc",
        "description": "MLflow backend store mlops-test-mlflow: PostgreSQL from the cluster only",
        "tags": {"team": "ml"},
    }  # no inline ingress/egress: the rules below are all there is
    rules = sorted(
        monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
        key=lambda r: r.name,
    )
    assert [(r.name, r.inputs) for r in rules] == [
        (
            f"tracking-database-from-cluster-{index}",
            {
                "securityGroupId": "tracking-database-id",
                "referencedSecurityGroupId": source,
                "ipProtocol": "tcp",
                "fromPort": 5432,
                "toPort": 5432,
                "description": "PostgreSQL from the EKS cluster",
                "tags": {"team": "ml"},
            },
        )
        for index, source in enumerate(["sg-cluster", "sg-nodes"])
    ]
    subnet_group = named(monitor, "aws:rds/subnetGroup:SubnetGroup", "tracking-database")
    assert subnet_group.inputs == {
        "name": "mlops-test-mlflow",
        "subnetIds": ["subnet-a", "subnet-b"],
        "description": "MLflow backend store mlops-test-mlflow: the cluster's private subnets",
        "tags": {"team": "ml"},
    }


def test_aws_pod_signs_for_the_cloud_region():
    monitor, _ = _run(AWS)
    env = named(monitor, DEPLOYMENT, "tracking-server").inputs["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in env


# --- GCP --------------------------------------------------------------------------------------


def test_gcp_creates_exactly_these_resources():
    monitor, _ = _run(GCP)
    assert _children(monitor) == sorted(
        [
            *KUBERNETES_CHILDREN,
            *PASSWORDS,
            ("gcp:compute/globalAddress:GlobalAddress", "tracking-private-services"),
            ("gcp:servicenetworking/connection:Connection", "tracking-private-services"),
            (CLOUD_SQL, "tracking-database"),
            ("gcp:sql/database:Database", "tracking-database-mlflow"),
            ("gcp:sql/user:User", "tracking-database-user"),
        ]
    )


def test_gcp_private_services_access():
    monitor, _ = _run(GCP)
    address = named(monitor, "gcp:compute/globalAddress:GlobalAddress", "tracking-private-services")
    assert address.inputs == {
        "project": "acme-ml",
        "network": "projects/acme-ml/global/networks/core",
        "purpose": "VPC_PEERING",
        "addressType": "INTERNAL",
        "prefixLength": 20,
        "description": "Private services access (Cloud SQL) for the cluster network",
        "name": "mlops-test-mlflow-private-services",
    }
    connection = named(
        monitor, "gcp:servicenetworking/connection:Connection", "tracking-private-services"
    )
    assert connection.inputs == {
        "network": "projects/acme-ml/global/networks/core",
        "service": "servicenetworking.googleapis.com",
        "reservedPeeringRanges": ["mlops-test-mlflow-private-services"],
    }
    instance = named(monitor, CLOUD_SQL, "tracking-database")
    assert connection.urn in instance.depends_on


def test_gcp_an_existing_peering_is_waited_for_not_created():
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        peering = pulumi.CustomResource("test:index:Peering", "existing-peering")
        built["peering"] = peering
        TrackingServer(
            "tracking",
            TrackingServerArgs(
                cloud=GCP,
                config=CONFIG,
                storage=_store("gs://b"),
                kubernetes=provider,
                network=_gcp_network("net"),
                private_services_access=peering,
            ),
        )

    monitor = _run_program(program)
    assert monitor.of_type("gcp:servicenetworking/connection:Connection") == []
    assert monitor.of_type("gcp:compute/globalAddress:GlobalAddress") == []
    peering_urn = monitor.named("existing-peering").urn
    assert peering_urn in named(monitor, CLOUD_SQL, "tracking-database").depends_on


@pytest.mark.parametrize("protect", [False, True])
def test_gcp_cloud_sql_instance(protect):
    monitor, _ = _run(GCP, protect=protect)
    instance = named(monitor, CLOUD_SQL, "tracking-database")
    assert instance.inputs == {
        "name": "mlops-test-mlflow",
        "project": "acme-ml",
        "region": "europe-west4",
        "databaseVersion": "POSTGRES_17",
        "deletionProtection": protect,
        "settings": {
            "edition": "ENTERPRISE",
            "tier": "db-custom-1-3840",
            "availabilityType": "ZONAL",
            "diskType": "PD_SSD",
            "diskSize": 20,
            "diskAutoresize": True,
            "diskAutoresizeLimit": 100,
            "deletionProtectionEnabled": protect,
            "backupConfiguration": {
                "enabled": True,
                "pointInTimeRecoveryEnabled": True,
                "transactionLogRetentionDays": 7,
                "backupRetentionSettings": {"retainedBackups": 7, "retentionUnit": "COUNT"},
            },
            "ipConfiguration": {
                "ipv4Enabled": False,
                "privateNetwork": "projects/acme-ml/global/networks/core",
                "sslMode": "ENCRYPTED_ONLY",
            },
            "userLabels": {"team": "ml"},
        },
    }
    assert (instance.protect, instance.retain_on_delete) == (protect, protect)


def test_gcp_high_availability_iam_auth_and_short_retention():
    config = MlflowConfig(
        database={
            "type": "cloud_sql",
            "high_availability": True,
            "iam_authentication": True,
            "backup_retention_days": 3,
        }
    )
    monitor, _ = _run(GCP, config=config)
    settings = named(monitor, CLOUD_SQL, "tracking-database").inputs["settings"]
    assert settings["availabilityType"] == "REGIONAL"
    assert settings["databaseFlags"] == [{"name": "cloudsql.iam_authentication", "value": "on"}]
    assert settings["backupConfiguration"]["transactionLogRetentionDays"] == 3
    assert settings["backupConfiguration"]["backupRetentionSettings"]["retainedBackups"] == 3


def test_gcp_database_and_user():
    monitor, _ = _run(GCP)
    database = named(monitor, "gcp:sql/database:Database", "tracking-database-mlflow")
    assert database.inputs == {
        "name": "mlflow",
        "instance": database.inputs["instance"],
        "project": "acme-ml",
        "deletionPolicy": "ABANDON",
    }
    assert database.inputs["instance"] == "mlops-test-mlflow"
    user = named(monitor, "gcp:sql/user:User", "tracking-database-user")
    inputs = dict(user.inputs)
    assert inputs.pop("password").startswith("mock-")
    assert user.secret_inputs == {"password"}
    assert inputs == {
        "name": "mlflow",
        "instance": "mlops-test-mlflow",
        "project": "acme-ml",
        "deletionPolicy": "ABANDON",
    }
    deployment = named(monitor, DEPLOYMENT, "tracking-server")
    assert database.urn in deployment.depends_on and user.urn in deployment.depends_on


# --- local ------------------------------------------------------------------------------------


def test_local_creates_exactly_these_resources():
    monitor, _ = _run(LOCAL)
    assert _children(monitor) == sorted(
        [
            *KUBERNETES_CHILDREN,
            *PASSWORDS,
            (STATEFULSET, "tracking-postgres"),
            (SERVICE, "tracking-postgres"),
            (NETWORK_POLICY, "tracking-postgres"),
        ]
    )
    assert [r for r in monitor.recorded if r.type.startswith(("aws:", "gcp:"))] == []


@pytest.mark.parametrize("protect", [False, True])
def test_local_postgres_objects_and_protection(protect):
    monitor, _ = _run(LOCAL, protect=protect)
    rendered = model.render(CONFIG, "local", "s3://x/mlflow")
    for typ, key in (
        (STATEFULSET, "postgres_statefulset"),
        (SERVICE, "postgres_service"),
        (NETWORK_POLICY, "postgres_network_policy"),
    ):
        record = named(monitor, typ, "tracking-postgres")
        assert record.inputs == getattr(rendered, key)
        manifests.validate(record.inputs)
    statefulset = named(monitor, STATEFULSET, "tracking-postgres")
    assert (statefulset.protect, statefulset.retain_on_delete) == (protect, protect)
    secret = named(monitor, SECRET, "tracking-credentials")
    assert secret.urn in statefulset.depends_on
    assert statefulset.urn in named(monitor, DEPLOYMENT, "tracking-server").depends_on
    # Nothing else is stateful.
    for record in monitor.recorded:
        if record.name != "tracking-postgres":
            assert not record.protect, record.name


def test_local_with_the_real_store_and_identity():
    """The pieces fit: the store's bucket URI and the identity's credentials Secret."""
    built = {}
    identity_config = WorkloadIdentityConfig(
        namespace="mlflow", service_account="mlflow", buckets={"artifacts": "read_write"}
    )

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        store = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=LOCAL,
                config=StorageConfig(bucket_prefix="acme-dev"),
                kubernetes=provider,
                identities={"mlflow": identity_config},
            ),
        )
        identity = WorkloadIdentity(
            "mlflow",
            WorkloadIdentityArgs(
                cloud=LOCAL, config=identity_config, storage=store, kubernetes=provider
            ),
        )
        built["identity"] = identity
        built["server"] = TrackingServer(
            "tracking",
            TrackingServerArgs(cloud=LOCAL, config=CONFIG, storage=store, kubernetes=provider),
            pulumi.ResourceOptions(depends_on=[identity]),
        )

    monitor = _run_program(program)
    container = named(monitor, DEPLOYMENT, "tracking-server").inputs["spec"]["template"]["spec"][
        "containers"
    ][0]
    args = container["args"]
    assert args[args.index("--artifacts-destination") + 1] == "s3://acme-dev-artifacts/mlflow"
    # The identity's Secret, mounted: the boto3 files, not its keys in the environment.
    assert "envFrom" not in container
    pod = named(monitor, DEPLOYMENT, "tracking-server").inputs["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "object-store-credentials"]
    assert volume["secret"]["secretName"] == built["identity"].credentials_secret_name
    # depends_on a component means on its children: the identity's ServiceAccount first.
    service_account = named(monitor, "kubernetes:core/v1:ServiceAccount", "mlflow-service-account")
    assert service_account.urn in named(monitor, DEPLOYMENT, "tracking-server").depends_on


# --- client users -----------------------------------------------------------------------------

CLIENTS_CONFIG = MlflowConfig(
    clients={
        "serving": {"namespace": "serving"},
        "pipelines": {"namespace": "kubeflow", "permission": "EDIT", "password_version": 3},
    }
)
JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CLIENT_CHILDREN = [
    (PASSWORD, "tracking-client-pipelines-password"),
    (PASSWORD, "tracking-client-serving-password"),
    (SECRET, "tracking-client-pipelines"),
    (SECRET, "tracking-client-serving"),
    (SECRET, "tracking-client-passwords"),
    (CONFIG_MAP, "tracking-provisioner"),
    (NETWORK_POLICY, "tracking-provisioner"),
    (JOB, "tracking-provision-users"),
]


def _client_password(monitor, key):
    return f"mock-{_digest(named(monitor, PASSWORD, f'tracking-client-{key}-password'))}"


@pytest.mark.parametrize("cloud", [AWS, LOCAL], ids=lambda c: c.type)
def test_clients_add_exactly_these_children(cloud):
    monitor, _ = _run(cloud, config=CLIENTS_CONFIG)
    without_clients = _children(_run(cloud)[0])
    assert _children(monitor) == sorted([*without_clients, *CLIENT_CHILDREN])
    provider_urn = monitor.named("k8s").urn
    namespace_urn = monitor.named("mlflow-namespace").urn
    for typ, name in CLIENT_CHILDREN:
        record = named(monitor, typ, name)
        assert record.parent_name == "tracking", name
        if typ.startswith("kubernetes:"):
            assert record.provider.startswith(provider_urn), name
            # The namespaces (the lead passes the clients' too) come before every object.
            assert namespace_urn in record.depends_on, name
        # Secret and ConfigMap data keys are ours (environment variables, file names).
        inputs = {k: v for k, v in record.inputs.items() if k not in ("stringData", "data")}
        assert not untranslated_keys(inputs), (name, untranslated_keys(inputs))


def test_client_passwords_are_generated_per_user_and_version():
    monitor, _ = _run(LOCAL, config=CLIENTS_CONFIG)
    assert named(monitor, PASSWORD, "tracking-client-serving-password").inputs == {
        "length": 32,
        "special": False,
        "keepers": {"username": "svc-serving", "version": "1"},
    }
    assert named(monitor, PASSWORD, "tracking-client-pipelines-password").inputs["keepers"] == {
        "username": "svc-pipelines",
        "version": "3",
    }


def test_client_secrets_land_in_the_clients_namespaces_masked():
    monitor, _ = _run(LOCAL, config=CLIENTS_CONFIG)
    for key, namespace in (("serving", "serving"), ("pipelines", "kubeflow")):
        secret = named(monitor, SECRET, f"tracking-client-{key}")
        assert secret.inputs["metadata"] == model.client_secret_metadata(CLIENTS_CONFIG, key)
        assert secret.inputs["metadata"]["namespace"] == namespace
        assert secret.inputs["type"] == "Opaque"
        assert secret.inputs["stringData"] == {
            "MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000",
            "MLFLOW_TRACKING_USERNAME": f"svc-{key}",
            "MLFLOW_TRACKING_PASSWORD": _client_password(monitor, key),
            "credentials": model.mlflow_credentials_file(
                f"svc-{key}", _client_password(monitor, key)
            ),
        }
        assert secret.secret_inputs == {"stringData"}
        assert secret.masked_inputs["stringData"] == dict.fromkeys(
            model.CLIENT_SECRET_KEYS, mocks.SECRET_MASK
        )
        manifests.validate({"apiVersion": "v1", "kind": "Secret", **secret.inputs})
    job_secret = named(monitor, SECRET, "tracking-client-passwords")
    assert job_secret.inputs["metadata"] == model.client_passwords_secret_metadata(CLIENTS_CONFIG)
    assert job_secret.inputs["stringData"] == {
        "serving": _client_password(monitor, "serving"),
        "pipelines": _client_password(monitor, "pipelines"),
    }
    assert job_secret.secret_inputs == {"stringData"}
    manifests.validate({"apiVersion": "v1", "kind": "Secret", **job_secret.inputs})
    for key in ("serving", "pipelines"):
        password = _client_password(monitor, key)
        for record in monitor.recorded:
            assert password not in str(record.masked_inputs), (key, record.name)


def test_provisioner_job_and_program_are_the_rendered_ones_after_the_server():
    monitor, _ = _run(LOCAL, config=CLIENTS_CONFIG)
    rendered = model.render(CLIENTS_CONFIG, "local", "s3://x/mlflow")
    name = model.provisioner_name(CLIENTS_CONFIG)
    config_map = named(monitor, CONFIG_MAP, "tracking-provisioner")
    assert config_map.inputs == rendered.provisioner_config_map
    assert config_map.inputs["metadata"]["name"] == name
    manifests.validate(config_map.inputs)
    job = named(monitor, JOB, "tracking-provision-users")
    assert job.inputs == rendered.provisioner_job
    assert job.inputs["metadata"] == {**rendered.provisioner_job["metadata"], "name": name}
    manifests.validate(job.inputs)
    assert job.secret_inputs == set()
    fence = named(monitor, NETWORK_POLICY, "tracking-provisioner")
    assert fence.inputs == rendered.provisioner_network_policy
    assert fence.parent_name == "tracking"
    manifests.validate(fence.inputs)
    for waited in (
        named(monitor, DEPLOYMENT, "tracking-server"),
        named(monitor, SERVICE, "tracking-service"),
        named(monitor, SECRET, "tracking-credentials"),
        named(monitor, SECRET, "tracking-client-passwords"),
        config_map,
        fence,
    ):
        assert waited.urn in job.depends_on, waited.name


def test_clients_output():
    _, server = _run(LOCAL, config=CLIENTS_CONFIG)
    assert output_value(server.clients) == {
        "serving": {
            "namespace": "serving",
            "secret_name": "mlflow-client-credentials",
            "username": "svc-serving",
        },
        "pipelines": {
            "namespace": "kubeflow",
            "secret_name": "mlflow-client-credentials",
            "username": "svc-pipelines",
        },
    }
    assert _sync_await(server.clients.is_secret()) is False
    _, plain = _run(LOCAL)
    assert output_value(plain.clients) == {}
