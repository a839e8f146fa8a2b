"""Table tests of the pure cost model: plan resources in, line items and unpriced lines out.

The prices here are a test table (round numbers), so every expected figure is computed by hand;
the shipped tables are checked in test_pricing_tables.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from mlops_platform import cost

HOURS = 730
SOURCE = "https://example.com/pricing"


def price(usd: float | None, unit: str = "hour", note: str | None = None) -> cost.Price:
    return cost.Price(usd=usd, unit=unit, source=SOURCE, retrieved=date(2026, 12, 4), note=note)


def table(cloud: str = "aws", **prices: cost.Price) -> cost.PricingTable:
    return cost.PricingTable(
        cloud=cloud,
        region="test-region",
        hours_per_month=HOURS,
        assumptions={
            "bucket_gb": cost.Assumption(value=100, unit="GB", why="test"),
            "log_gb_per_month": cost.Assumption(value=5, unit="GB", why="test"),
            "kafka_storage_gb": cost.Assumption(value=50, unit="GB", why="test"),
            "kafka_local_storage_gb_per_vcpu": cost.Assumption(value=100, unit="GB", why="test"),
        },
        prices={key.replace("__", "."): value for key, value in prices.items()},
    )


AWS = table(
    eks__cluster=price(0.10),
    ec2__m6i__xlarge=price(0.20),
    ec2__g5__xlarge=price(1.00),
    ebs__gp3=price(0.08, "GB-month"),
    ebs__gp2=price(0.10, "GB-month"),
    vpc__nat_gateway=price(0.05),
    vpc__public_ipv4=price(0.005),
    rds__postgres__db__t4g__medium=price(0.065),
    rds__storage__gp3=price(0.10, "GB-month"),
    elasticache__valkey__cache__t4g__small=price(0.03),
    msk__kafka__m7g__large=price(0.20),
    msk__storage=price(0.10, "GB-month"),
    s3__standard=price(0.02, "GB-month"),
    kms__key=price(1.0, "month"),
    cloudwatch__logs_ingest=price(0.50, "GB-month"),
    elb__nlb=price(0.02),
    elb__classic=price(0.03),
)
GCP = table(
    "gcp",
    gke__cluster=price(0.10),
    gce__e2_standard_8=price(0.30),
    gce__g2_standard_8=price(1.00),
    gce__n1_standard_4=price(0.20),
    gce__gpu__nvidia_tesla_t4=price(0.35),
    pd__balanced=price(0.10, "GB-month"),
    cloud_nat__vm=price(0.0014),
    cloud_nat__ip=price(0.005),
    cloudsql__enterprise__vcpu=price(0.04),
    cloudsql__enterprise__memory=price(0.007, "GB-hour"),
    cloudsql__storage__pd_ssd=price(0.17, "GB-month"),
    memorystore__redis__standard__m2=price(0.05, "GB-hour"),
    managedkafka__vcpu=price(0.09),
    managedkafka__memory=price(0.01, "GB-hour"),
    managedkafka__storage=price(0.10, "GB-month"),
    managedkafka__local_storage=price(0.04, "GB-month"),
    gcs__standard=price(0.02, "GB-month"),
    compute__forwarding_rule=price(0.025),
)
# table keys use dots and dashes: the helper's kwargs spell them with `__` and `_`
AWS = AWS.model_copy(update={"prices": {k.replace("_", "-"): v for k, v in AWS.prices.items()}})
GCP = GCP.model_copy(update={"prices": {k.replace("_", "-"): v for k, v in GCP.prices.items()}})


def resource(type_: str, name: str, inputs: dict, layer: str = "infra") -> dict:
    return {"type": type_, "name": name, "inputs": inputs, "layer": layer}


AWS_PROVIDER = resource("pulumi:providers:aws", "aws", {"region": "test-region"})
GCP_NETWORK = resource("gcp:compute/subnetwork:Subnetwork", "net", {"region": "test-region"})


def estimate(*resources: dict, pricing: cost.PricingTable = AWS) -> cost.Estimate:
    provider = AWS_PROVIDER if pricing.cloud == "aws" else GCP_NETWORK
    return cost.estimate({"stack": "t", "resources": [provider, *resources]}, pricing)


def lines(result: cost.Estimate) -> list[tuple[str, str, float, float]]:
    return [(i.price_key, i.what, round(i.monthly_min, 2), round(i.monthly_max, 2))
            for i in result.items]  # fmt: skip


NODE_GROUP = {
    "instanceTypes": ["m6i.xlarge"],
    "capacityType": "ON_DEMAND",
    "scalingConfig": {"minSize": 2, "maxSize": 5, "desiredSize": 2},
    "launchTemplate": {"id": "system-lt-id", "version": "1"},
}
LAUNCH_TEMPLATE = resource(
    "aws:ec2/launchTemplate:LaunchTemplate",
    "system-lt",
    {"blockDeviceMappings": [{"ebs": {"volumeSize": 50, "volumeType": "gp3"}}]},
)


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(
            [resource("aws:eks/cluster:Cluster", "eks",
                      {"upgradePolicy": {"supportType": "STANDARD"}})],
            [("eks.cluster", "control plane", 73.0, 73.0)],
            id="eks-control-plane",
        ),
        pytest.param(
            [LAUNCH_TEMPLATE, resource("aws:eks/nodeGroup:NodeGroup", "system", NODE_GROUP)],
            [
                ("ec2.m6i.xlarge", "2-5 x m6i.xlarge", 292.0, 730.0),
                ("ebs.gp3", "root volume 50 GB gp3 x 2-5", 8.0, 20.0),
            ],
            id="node-group-min-max-with-launch-template-volume",
        ),
        pytest.param(
            [resource("aws:eks/nodeGroup:NodeGroup", "gpu", {
                "instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "diskSize": 100,
                "scalingConfig": {"minSize": 0, "maxSize": 2}})],
            [
                ("ec2.g5.xlarge", "0-2 x g5.xlarge", 0.0, 1460.0),
                ("ebs.gp2", "root volume 100 GB gp2 x 0-2", 0.0, 20.0),
            ],
            id="gpu-pool-scales-from-zero-spot-priced-on-demand",
        ),
        pytest.param(
            [resource("aws:ec2/natGateway:NatGateway", "nat", {}),
             resource("aws:ec2/eip:Eip", "nat", {"domain": "vpc"})],
            [("vpc.nat-gateway", "NAT gateway", 36.5, 36.5),
             ("vpc.public-ipv4", "public IPv4 address", 3.65, 3.65)],
            id="nat-gateway-and-its-address",
        ),
        pytest.param(
            [resource("aws:rds/instance:Instance", "db", {
                "engine": "postgres", "instanceClass": "db.t4g.medium", "multiAz": True,
                "storageType": "gp3", "allocatedStorage": 20, "maxAllocatedStorage": 100})],
            [("rds.postgres.db.t4g.medium", "db.t4g.medium postgres Multi-AZ", 94.9, 94.9),
             ("rds.storage.gp3", "gp3 storage 20-100 GB Multi-AZ", 4.0, 20.0)],
            id="rds-multi-az-doubles-instance-and-storage-grows-to-max",
        ),
        pytest.param(
            [resource("aws:elasticache/replicationGroup:ReplicationGroup", "redis", {
                "engine": "valkey", "nodeType": "cache.t4g.small", "numCacheClusters": 2})],
            [("elasticache.valkey.cache.t4g.small", "2 x cache.t4g.small valkey", 43.8, 43.8)],
            id="elasticache-nodes",
        ),
        pytest.param(
            [resource("aws:msk/cluster:Cluster", "kafka", {
                "numberOfBrokerNodes": 3,
                "brokerNodeGroupInfo": {"instanceType": "kafka.m7g.large",
                                        "storageInfo": {"ebsStorageInfo": {"volumeSize": 100}}}})],
            [("msk.kafka.m7g.large", "3 x kafka.m7g.large brokers", 438.0, 438.0),
             ("msk.storage", "broker storage 100 GB x 3", 30.0, 30.0)],
            id="msk-brokers-and-storage",
        ),
        pytest.param(
            [resource("aws:s3/bucket:Bucket", "artifacts", {"bucket": "a"}),
             resource("aws:kms/key:Key", "key", {}),
             resource("aws:cloudwatch/logGroup:LogGroup", "logs", {})],
            [("s3.standard", "100 GB Standard (assumed)", 2.0, 2.0),
             ("kms.key", "customer managed key", 1.0, 1.0),
             ("cloudwatch.logs-ingest", "5 GB ingested (assumed)", 2.5, 2.5)],
            id="usage-based-from-stated-assumptions",
        ),
    ],
)  # fmt: skip
def test_aws_resources_priced(resources, expected):
    result = estimate(*resources)
    assert lines(result) == expected
    assert result.unpriced == []
    assert round(result.monthly_min, 2) == round(sum(e[2] for e in expected), 2)
    assert round(result.monthly_max, 2) == round(sum(e[3] for e in expected), 2)


PROMETHEUS_VALUES = {
    "prometheus": {"prometheusSpec": {"storageSpec": {"volumeClaimTemplate": {
        "spec": {"resources": {"requests": {"storage": "200Gi"}}}}}}},
    "grafana": {"replicas": 2, "persistence": {"enabled": True, "size": "10Gi"}},
    "alertmanager": {"persistence": {"enabled": False, "size": "50Gi"}},
}  # fmt: skip
GP3_CLASS = resource(
    "kubernetes:storage.k8s.io/v1:StorageClass",
    "gp3",
    {
        "metadata": {"name": "gp3",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "parameters": {"type": "gp3"},
    },
)  # fmt: skip


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(
            [GP3_CLASS, resource("kubernetes:helm.sh/v3:Release", "monitoring",
                                 {"values": PROMETHEUS_VALUES}, "platform")],
            [("ebs.gp3", "grafana.persistence: 10 GB x 2 (default class gp3)", 1.6, 1.6),
             ("ebs.gp3", "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate: 200 GB x 1 "
              "(default class gp3)", 16.0, 16.0)],
            id="chart-values-volumes-default-class-from-plan",
        ),
        pytest.param(
            [resource("kubernetes:apps/v1:StatefulSet", "pg", {"spec": {"replicas": 3,
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                    "storageClassName": "gp2",
                    "resources": {"requests": {"storage": "20Gi"}}}}]}})],
            [("ebs.gp2", "volume data: 20 GB x 3 (gp2)", 6.0, 6.0)],
            id="statefulset-claims-times-replicas-builtin-class",
        ),
        pytest.param(
            [resource("kubernetes:core/v1:PersistentVolumeClaim", "claim",
                      {"spec": {"resources": {"requests": {"storage": "512Mi"}}}})],
            [("ebs.gp2", "volume: 0.5 GB x 1 (default class gp2)", 0.05, 0.05)],
            id="pvc-on-the-clouds-default-class",
        ),
        pytest.param(
            [resource("kubernetes:kafka.strimzi.io/v1:KafkaNodePool", "pool", {"spec": {
                "replicas": 3, "storage": {"type": "jbod", "volumes": [
                    {"type": "persistent-claim", "size": "100Gi", "class": "gp2"},
                    {"type": "ephemeral"}]}}})],
            [("ebs.gp2", "broker volume: 100 GB x 3 (gp2)", 30.0, 30.0)],
            id="strimzi-persistent-volumes-only",
        ),
        pytest.param(
            [resource("kubernetes:core/v1:Service", "lb", {"spec": {"type": "LoadBalancer"}})],
            [("elb.classic", "Classic Load Balancer of a LoadBalancer Service", 21.9, 21.9)],
            id="loadbalancer-service-is-a-classic-lb-without-the-nlb-annotation",
        ),
        pytest.param(
            [resource("kubernetes:core/v1:Service", "lb", {
                "metadata": {"annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
                "spec": {"type": "LoadBalancer"}})],
            [("elb.nlb", "Network Load Balancer of a LoadBalancer Service", 14.6, 14.6)],
            id="loadbalancer-service-annotated-nlb",
        ),
        pytest.param(
            [resource("kubernetes:core/v1:Service", "lb", {"spec": {
                "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb"}})],
            [("elb.nlb", "Network Load Balancer of a LoadBalancer Service", 14.6, 14.6)],
            id="loadbalancer-service-of-the-nlb-class",
        ),
        pytest.param(
            [resource("kubernetes:helm.sh/v3:Release", "gateway", {"values": {
                "service": {"type": "LoadBalancer", "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external"}},
                "grafana": {"service": {"type": "ClusterIP"}}}}, "platform")],
            [("elb.nlb", "Network Load Balancer of service (type LoadBalancer)", 14.6, 14.6)],
            id="chart-values-loadbalancer-service",
        ),
    ],
)  # fmt: skip
def test_kubernetes_objects_that_provision_cloud_resources(resources, expected):
    result = estimate(*resources)
    assert lines(result) == expected
    assert result.unpriced == []


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(
            [resource("gcp:container/cluster:Cluster", "gke", {})],
            [("gke.cluster", "cluster management fee", 73.0, 73.0)],
            id="gke-fee",
        ),
        pytest.param(
            [resource("gcp:container/nodePool:NodePool", "system", {
                "autoscaling": {"totalMinNodeCount": 3, "totalMaxNodeCount": 6},
                "nodeConfig": {"machineType": "e2-standard-8", "diskSizeGb": 50,
                               "diskType": "pd-balanced"}}),
             resource("gcp:compute/routerNat:RouterNat", "nat", {})],
            [("gce.e2-standard-8", "3-6 x e2-standard-8", 657.0, 1314.0),
             ("pd.balanced", "boot disk 50 GB pd-balanced x 3-6", 15.0, 30.0),
             ("cloud-nat.vm", "NAT gateway for 3-6 VMs", 3.07, 6.13),
             ("cloud-nat.ip", "1 NAT IP address(es)", 3.65, 3.65)],
            id="node-pool-total-counts-and-nat-per-vm",
        ),
        pytest.param(
            [resource("gcp:container/nodePool:NodePool", "l4", {
                "location": "europe-west4",
                "autoscaling": {"minNodeCount": 0, "maxNodeCount": 1},
                "nodeConfig": {"machineType": "g2-standard-8", "diskSizeGb": 100,
                               "guestAccelerators": [{"type": "nvidia-l4", "count": 1}]}})],
            [("gce.g2-standard-8", "0-3 x g2-standard-8", 0.0, 2190.0),
             ("pd.balanced", "boot disk 100 GB pd-balanced x 0-3", 0.0, 30.0)],
            id="per-zone-counts-regional-g2-includes-its-gpu",
        ),
        pytest.param(
            [resource("gcp:container/nodePool:NodePool", "t4", {
                "nodeCount": 1, "nodeLocations": ["a", "b"],
                "nodeConfig": {"machineType": "n1-standard-4", "diskSizeGb": 100,
                               "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 2}]}})],
            [("gce.n1-standard-4", "2 x n1-standard-4", 292.0, 292.0),
             ("gce.gpu.nvidia-tesla-t4", "2 x nvidia-tesla-t4 per node x 2", 1022.0, 1022.0),
             ("pd.balanced", "boot disk 100 GB pd-balanced x 2", 20.0, 20.0)],
            id="n1-pays-its-gpus-separately",
        ),
        pytest.param(
            [resource("gcp:sql/databaseInstance:DatabaseInstance", "db", {"settings": {
                "tier": "db-custom-2-7680", "availabilityType": "REGIONAL", "edition": "ENTERPRISE",
                "diskType": "PD_SSD", "diskSize": 100, "diskAutoresizeLimit": 500}})],
            [("cloudsql.enterprise.vcpu", "2 vCPU HA (regional)", 116.8, 116.8),
             ("cloudsql.enterprise.memory", "7.5 GB memory HA (regional)", 76.65, 76.65),
             ("cloudsql.storage.pd-ssd", "pd-ssd storage 100-500 GB HA (regional)", 34.0, 170.0)],
            id="cloud-sql-ha-doubles-and-disk-grows-to-limit",
        ),
        pytest.param(
            [resource("gcp:redis/instance:Instance", "redis",
                      {"memorySizeGb": 5, "tier": "STANDARD_HA"})],
            [("memorystore.redis.standard.m2", "5 GB standard tier (M2)", 182.5, 182.5)],
            id="memorystore-capacity-tier",
        ),
        pytest.param(
            [resource("gcp:managedkafka/cluster:Cluster", "kafka", {"capacityConfig": {
                "vcpuCount": "3", "memoryBytes": str(6 * 2**30)}})],
            [("managedkafka.vcpu", "3 vCPU", 197.1, 197.1),
             ("managedkafka.memory", "6 GB memory", 43.8, 43.8),
             ("managedkafka.storage", "50 GB stored (assumed)", 5.0, 5.0),
             ("managedkafka.local-storage", "300 GB brokers' local storage (assumed per vCPU)",
              12.0, 12.0)],
            id="managed-kafka-capacity-and-local-storage-per-vcpu",
        ),
        pytest.param(
            [resource("gcp:storage/bucket:Bucket", "b", {}),
             resource("gcp:compute/globalAddress:GlobalAddress", "psa",
                      {"addressType": "INTERNAL"}),
             resource("kubernetes:core/v1:PersistentVolumeClaim", "claim",
                      {"spec": {"resources": {"requests": {"storage": "10Gi"}}}})],
            [("gcs.standard", "100 GB standard (assumed)", 2.0, 2.0),
             ("pd.balanced", "volume: 10 GB x 1 (default class standard-rwo)", 1.0, 1.0)],
            id="gcs-internal-address-free-pvc-on-standard-rwo",
        ),
        pytest.param(
            [resource("kubernetes:core/v1:Service", "lb", {"spec": {"type": "LoadBalancer"}})],
            [("compute.forwarding-rule", "load balancer of a LoadBalancer Service", 18.25,
              18.25)],
            id="loadbalancer-service-forwarding-rule",
        ),
    ],
)  # fmt: skip
def test_gcp_resources_priced(resources, expected):
    result = estimate(*resources, pricing=GCP)
    assert lines(result) == expected
    assert result.unpriced == []


def test_unknown_type_is_unpriced_never_zero():
    result = estimate(resource("aws:opensearch/domain:Domain", "search", {}))
    assert result.items == []
    assert [(u.type, u.name, u.reason) for u in result.unpriced] == [
        ("aws:opensearch/domain:Domain", "search", "resource type not in the cost model")
    ]


@pytest.mark.parametrize(
    ("types", "count"),
    [(["aws:opensearch/domain:Domain"], "+ 1 unpriced line,"),
     (["aws:opensearch/domain:Domain", "aws:sqs/queue:Queue"], "+ 2 unpriced lines,")],
)  # fmt: skip
def test_headline_counts_the_unpriced_lines(types, count):
    result = estimate(*(resource(t, f"r{i}", {}) for i, t in enumerate(types)))
    assert f"$0.00 per month {count} aws test-region" in cost.render_text(result)


def test_unknown_kubernetes_api_group_is_unpriced():
    # A controller's custom resource may provision billable things (an ACK bucket, say).
    result = estimate(resource("kubernetes:s3.services.k8s.aws/v1alpha1:Bucket", "b", {}))
    assert [u.reason for u in result.unpriced] == ["resource type not in the cost model"]


def test_known_no_charge_resources_are_counted_not_priced():
    result = estimate(
        resource("aws:ec2/vpc:Vpc", "vpc", {}),
        resource("aws:iam/role:Role", "role", {}),
        resource("kubernetes:apps/v1:Deployment", "app", {}),
        resource("kubernetes:core/v1:Service", "svc", {"spec": {"type": "ClusterIP"}}),
    )
    assert (result.items, result.unpriced, result.no_charge) == ([], [], 5)  # with the provider


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (None, "no price `ec2.m6i.xlarge` in the pricing table"),
        (price(None, note="not found"), "price `ec2.m6i.xlarge` not known: not found"),
        (price(0.2, "GB-month"),
         "price `ec2.m6i.xlarge` is per GB-month; the model needs a per-hour price"),
    ],
)  # fmt: skip
def test_a_line_without_a_usable_price_is_unpriced_and_the_others_stay(entry, reason):
    prices = {k: v for k, v in AWS.prices.items() if k != "ec2.m6i.xlarge"}
    if entry is not None:
        prices["ec2.m6i.xlarge"] = entry
    pricing = AWS.model_copy(update={"prices": prices})
    node_group = resource("aws:eks/nodeGroup:NodeGroup", "system", NODE_GROUP)
    result = estimate(LAUNCH_TEMPLATE, node_group, pricing=pricing)
    assert [i.price_key for i in result.items] == ["ebs.gp3"]
    assert [u.reason for u in result.unpriced] == [f"2-5 x m6i.xlarge: {reason}"]


def test_unknown_storage_class_is_unpriced():
    result = estimate(
        resource("kubernetes:core/v1:PersistentVolumeClaim", "claim", {"spec": {
            "storageClassName": "fancy", "resources": {"requests": {"storage": "1Gi"}}}})
    )  # fmt: skip
    assert [u.reason for u in result.unpriced] == [
        "storage class `fancy` is not in the plan nor a built-in one"
    ]


def test_cloud_plan_without_a_table_lists_billable_resources_unpriced():
    plan = {"resources": [
        resource("pulumi:providers:aws", "aws", {"region": "mars-north-1"}),
        resource("aws:eks/cluster:Cluster", "eks", {}),
        resource("aws:ec2/vpc:Vpc", "vpc", {}),
    ]}  # fmt: skip
    result = cost.estimate(plan)
    assert (result.cloud, result.region, result.items) == ("aws", "mars-north-1", [])
    assert [(u.name, u.reason) for u in result.unpriced] == [
        ("eks", "no pricing table for aws mars-north-1 (aws-mars-north-1.yaml)")
    ]


def test_local_cluster_costs_nothing_and_says_so():
    plan = {"resources": [
        resource("kubernetes:apps/v1:StatefulSet", "pg", {"spec": {"volumeClaimTemplates": [
            {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}]}}),
        resource("kubernetes:core/v1:Service", "lb", {"spec": {"type": "LoadBalancer"}}),
        resource("kubernetes:example.com/v1:Widget", "w", {}),
    ]}  # fmt: skip
    result = cost.estimate(plan)
    assert (result.cloud, result.items, result.unpriced, result.no_charge) == ("local", [], [], 3)
    assert "local cluster: no cloud spend" in cost.render_text(result)
    assert "local cluster: no cloud spend" in cost.render_markdown(result)


def test_by_layer_and_totals():
    result = estimate(
        resource("aws:eks/cluster:Cluster", "eks", {}),
        resource("aws:kms/key:Key", "key", {}, "ml"),
    )
    assert result.by_layer() == {"infra": (73.0, 73.0), "ml": (1.0, 1.0)}
    assert result.as_json()["monthlyUsd"] == {"min": 74.0, "max": 74.0}
    assert result.as_json()["limits"] == list(cost.LIMITS)


def test_change_against_base_keys_lines_by_resource_and_price():
    base = estimate(LAUNCH_TEMPLATE, resource("aws:eks/nodeGroup:NodeGroup", "system", NODE_GROUP))
    bigger = {**NODE_GROUP, "scalingConfig": {"minSize": 3, "maxSize": 6}}
    new = estimate(LAUNCH_TEMPLATE, resource("aws:eks/nodeGroup:NodeGroup", "system", bigger),
                   resource("aws:kms/key:Key", "key", {}))  # fmt: skip
    delta = cost.change(base, new, "main.json")
    assert (round(delta.delta_min, 2), round(delta.delta_max, 2)) == (151.0, 151.0)
    assert [(label, round(old, 2), round(now, 2)) for label, old, now in delta.lines] == [
        ("infra: key customer managed key", 0.0, 1.0),
        ("infra: system root volume 50 GB gp3 x 3-6", 20.0, 24.0),
        ("infra: system 3-6 x m6i.xlarge", 730.0, 876.0),
    ]
    text = cost.render_markdown(new, delta)
    assert "Change against `main.json`: **+$151/month** at min scale, **+$151/month**" in text
    assert cost.change(new, new, "same").lines == []
    assert cost.signed(cost.change(new, base, "x").delta_min) == "-$151"


def test_storage_quantities():
    assert cost.storage_gb("20Gi") == 20
    assert cost.storage_gb("1Ti") == 1024
    assert cost.storage_gb("512Mi") == 0.5
    assert cost.storage_gb("174080MB".removesuffix("B")) == pytest.approx(162.12, abs=0.01)
    with pytest.raises(Exception, match="not a Kubernetes quantity"):
        cost.storage_gb("lots")
