"""Monthly cost estimate of a stack, from its offline plan and a pricing table the project keeps.

A pure model: `estimate(plan_document, table)` maps every planned resource (the `--format json`
document of `mlops plan`) to priced line items, each a unit price from the table times a
quantity at the stack's minimum and maximum scale (node groups at min and max size, databases
from allocated to max storage, ...). Nothing is priced silently at zero: a resource is either a
line item, a known no-charge resource (a subnet, an IAM role, a Kubernetes object running on
the nodes priced above) or listed as unpriced with the reason (an unknown type, a price the
table does not have).

The tables (`mlops_platform/pricing/<cloud>-<region>.yaml`) hold on-demand list prices, each with its
source and the date it was read. Their limits are printed with every estimate (`LIMITS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRICING_DIR = Path(__file__).with_name("pricing")

LIMITS = (
    "On-demand list prices of one region, in USD: no discounts, savings plans, reserved "
    "capacity, committed-use or sustained-use discounts, credits or free tiers.",
    "Spot node groups are priced at the on-demand price (an upper bound).",
    "No data transfer, NAT data processing, requests, IOPS above the baseline, backups beyond "
    "the free allowance, or support plans.",
    "Usage-based services (object storage, log ingestion, Managed Kafka storage) are estimated "
    "from the assumptions stated in the pricing table and listed here.",
    "Volumes are counted where the plan states them (PVCs, StatefulSets, Strimzi node pools, "
    "chart values); volumes a chart or a kustomize tree creates by default are not.",
)


class CostError(Exception):
    """A pricing table or a base plan that cannot be read; the message names the file."""


# --- the pricing table --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    """One list price: `usd` per `unit`, where it was read and when. A price that could not be
    found is `usd: null` with a `note` saying so; resources needing it are then unpriced."""

    usd: float | None = Field(ge=0)
    unit: Literal["hour", "GB-month", "GB-hour", "month", "vCPU-hour"]
    source: str = Field(pattern=r"^https://")
    retrieved: date
    note: str | None = None

    @model_validator(mode="after")
    def _missing_price_says_why(self) -> Price:
        if self.usd is None and not self.note:
            raise ValueError("a price that is not known (usd: null) needs a note saying why")
        return self


class Assumption(_Strict):
    """A usage figure the estimate cannot know from the plan (e.g. GB stored per bucket)."""

    value: float = Field(ge=0)
    unit: str
    why: str


class PricingTable(_Strict):
    cloud: Literal["aws", "gcp"]
    region: str
    currency: Literal["USD"] = "USD"
    hours_per_month: float = Field(gt=0)
    assumptions: dict[str, Assumption] = {}
    prices: dict[str, Price]

    @property
    def retrieved(self) -> date:
        """The oldest date of any price: the table is as current as its stalest entry."""
        return min(price.retrieved for price in self.prices.values())


def table_path(cloud: str, region: str) -> Path:
    return PRICING_DIR / f"{cloud}-{region}.yaml"


def load_table(path: Path) -> PricingTable:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CostError(f"pricing table {path}: cannot read it: {exc.strerror}") from None
    try:
        return PricingTable.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise CostError(f"invalid pricing table {path}: {problems}") from None


# --- the estimate -------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """`unit_usd` per `unit` times a monthly quantity at the stack's minimum and maximum."""

    layer: str
    type: str
    name: str
    what: str
    price_key: str
    unit_usd: float
    unit: str
    quantity_min: float
    quantity_max: float
    note: str = ""

    @property
    def monthly_min(self) -> float:
        return self.unit_usd * self.quantity_min

    @property
    def monthly_max(self) -> float:
        return self.unit_usd * self.quantity_max

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "type": self.type,
            "name": self.name,
            "what": self.what,
            "priceKey": self.price_key,
            "unitUsd": self.unit_usd,
            "unit": self.unit,
            "quantity": {"min": self.quantity_min, "max": self.quantity_max},
            "monthlyUsd": {"min": _cents(self.monthly_min), "max": _cents(self.monthly_max)},
            "note": self.note,
        }


@dataclass(frozen=True)
class Unpriced:
    layer: str
    type: str
    name: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "type": self.type, "name": self.name, "reason": self.reason}


@dataclass
class Estimate:
    stack: str
    cloud: str
    region: str | None
    layers: list[str]
    table: str | None = None
    retrieved: date | None = None
    items: list[LineItem] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    no_charge: int = 0
    assumptions: list[str] = field(default_factory=list)

    @property
    def monthly_min(self) -> float:
        return sum(item.monthly_min for item in self.items)

    @property
    def monthly_max(self) -> float:
        return sum(item.monthly_max for item in self.items)

    def by_layer(self) -> dict[str, tuple[float, float]]:
        totals = {layer: (0.0, 0.0) for layer in self.layers}
        for item in self.items:
            low, high = totals.get(item.layer, (0.0, 0.0))
            totals[item.layer] = (low + item.monthly_min, high + item.monthly_max)
        return totals

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": "USD",
            "cloud": self.cloud,
            "region": self.region,
            "pricingTable": self.table,
            "pricesRetrieved": self.retrieved.isoformat() if self.retrieved else None,
            "monthlyUsd": {"min": _cents(self.monthly_min), "max": _cents(self.monthly_max)},
            "byLayer": {
                layer: {"min": _cents(low), "max": _cents(high)}
                for layer, (low, high) in self.by_layer().items()
            },
            "items": [item.as_json() for item in self.items],
            "unpriced": [u.as_json() for u in self.unpriced],
            "noChargeResources": self.no_charge,
            "assumptions": self.assumptions,
            "limits": list(LIMITS),
        }


def _cents(value: float) -> float:
    return round(value, 2)


# Resources that cost nothing by themselves (their cost, if any, is in another line item).
NO_CHARGE: dict[str, str] = {
    "pulumi:providers:": "provider",
    "random:": "generated value",
    "mlops:": "component (its children are priced)",
    "aws:autoscaling/tag:Tag": "tag",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "network config",
    "aws:ec2/internetGateway:InternetGateway": "no hourly charge",
    "aws:ec2/launchTemplate:LaunchTemplate": "priced with its node group's volumes",
    "aws:ec2/routeTable:RouteTable": "network config",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "network config",
    "aws:ec2/securityGroup:SecurityGroup": "network config",
    "aws:ec2/subnet:Subnet": "network config",
    "aws:ec2/vpc:Vpc": "network config",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "network config",
    "aws:eks/addon:Addon": "runs on the nodes priced",
    "aws:eks/accessEntry:AccessEntry": "access config",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "access config",
    "aws:elasticache/subnetGroup:SubnetGroup": "network config",
    "aws:iam/": "IAM",
    "aws:kms/alias:Alias": "alias of a priced key",
    "aws:msk/configuration:Configuration": "config",
    "aws:msk/topic:Topic": "stored on the brokers priced",
    "aws:rds/subnetGroup:SubnetGroup": "network config",
    "aws:s3/bucketLifecycleConfiguration:": "bucket config",
    "aws:s3/bucketLogging:": "bucket config (log objects are in the logs bucket)",
    "aws:s3/bucketOwnershipControls:": "bucket config",
    "aws:s3/bucketPolicy:": "bucket config",
    "aws:s3/bucketPublicAccessBlock:": "bucket config",
    "aws:s3/bucketServerSideEncryptionConfiguration:": "bucket config",
    "aws:s3/bucketVersioning:": "bucket config",
    "gcp:compute/firewall:Firewall": "network config",
    "gcp:compute/network:Network": "network config",
    "gcp:compute/router:Router": "no charge (its NAT is priced)",
    "gcp:compute/subnetwork:Subnetwork": "network config",
    "gcp:managedkafka/topic:Topic": "stored on the cluster priced",
    "gcp:projects/iAMMember:": "IAM",
    "gcp:serviceaccount/": "IAM",
    "gcp:servicenetworking/connection:Connection": "private services access peering",
    "gcp:sql/database:Database": "inside the instance priced",
    "gcp:sql/user:User": "inside the instance priced",
    "gcp:storage/bucketIAMMember:": "IAM",
}

# Kubernetes API groups whose objects run on the cluster's nodes and provision nothing billable
# by themselves (volumes and load balancers are priced by the handlers below). A group not listed
# (a controller that provisions cloud resources, say) is unpriced until someone looks at it.
IN_CLUSTER_GROUPS = (
    "core/v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/",
    "rbac.authorization.k8s.io/",
    "storage.k8s.io/",
    "admissionregistration.k8s.io/",
    "apiextensions.k8s.io/",
    "scheduling.k8s.io/",
    "helm.sh/",
    "kustomize/",
    "yaml/",
    "security.istio.io/",
    "networking.istio.io/",
    "telemetry.istio.io/",
    "monitoring.coreos.com/",
    "flagger.app/",
    "kafka.strimzi.io/",
)

# Storage classes Kubernetes clusters ship with, when the plan does not define them:
# name -> price key of the disk they provision.
BUILTIN_STORAGE_CLASSES = {
    "aws": {"gp2": "ebs.gp2"},
    # GKE's classes (https://cloud.google.com/kubernetes-engine/docs/concepts/persistent-volumes)
    "gcp": {"standard-rwo": "pd.balanced", "premium-rwo": "pd.ssd", "standard": "pd.standard"},
}
DEFAULT_STORAGE_CLASS = {"aws": "gp2", "gcp": "standard-rwo"}
EBS_VOLUME_TYPES = {"gp3": "ebs.gp3", "gp2": "ebs.gp2", "io1": "ebs.io1", "io2": "ebs.io2"}
PD_TYPES = {"pd-balanced": "pd.balanced", "pd-ssd": "pd.ssd", "pd-standard": "pd.standard"}

# GKE regional clusters and node pools span three zones unless nodeLocations says otherwise.
GKE_REGIONAL_ZONES = 3
# GCP bills accelerator-optimized machine types with their GPUs attached; other machine types
# (N1) pay for `guestAccelerators` separately.
GPU_INCLUDED_MACHINE_FAMILIES = ("a2-", "a3-", "a4-", "g2-", "g4-")
# Cloud NAT bills per VM using the gateway, up to 32 VMs (then the gateway price is flat).
CLOUD_NAT_MAX_BILLED_VMS = 32


class _Pricer:
    """The handlers' context: the table, and the plan's resources by the ids other resources use
    to reference them (the plan runs under mocks, whose resource ids are `<name>-id`)."""

    def __init__(self, table: PricingTable, resources: list[dict[str, Any]], cloud: str):
        self.table = table
        self.cloud = cloud
        self.by_id = {f"{r['name']}-id": r for r in resources}
        self.storage_classes = self._storage_classes(resources)
        self.assumptions_used: dict[str, Assumption] = {}
        self.node_range = self._node_range(resources)

    @property
    def hours(self) -> float:
        return self.table.hours_per_month

    def price(self, key: str, basis: str) -> Price:
        """The table's price `key`, which must be per hour when `basis` is "hour" (else per
        month): an entry of the other basis would be off by a factor of 730."""
        if key not in self.table.prices:
            raise _NoPrice(f"no price `{key}` in the pricing table")
        price = self.table.prices[key]
        if price.usd is None:
            raise _NoPrice(f"price `{key}` not known: {price.note}")
        if (price.unit in HOURLY_UNITS) != (basis == "hour"):
            wanted = "per-hour" if basis == "hour" else "monthly"
            raise _NoPrice(f"price `{key}` is per {price.unit}; the model needs a {wanted} price")
        return price

    def assume(self, key: str) -> float:
        if key not in self.table.assumptions:
            raise _NoPrice(f"no assumption `{key}` in the pricing table")
        self.assumptions_used[key] = self.table.assumptions[key]
        return self.table.assumptions[key].value

    def _storage_classes(self, resources: list[dict[str, Any]]) -> dict[str, str | None]:
        """Storage class name -> price key (None: a class of a kind the model cannot price),
        and "" -> the default class's name."""
        classes: dict[str, str | None] = dict(BUILTIN_STORAGE_CLASSES.get(self.cloud, {}))
        default = DEFAULT_STORAGE_CLASS.get(self.cloud)
        for r in resources:
            if r["type"] != "kubernetes:storage.k8s.io/v1:StorageClass":
                continue
            spec = r["inputs"]
            name = (spec.get("metadata") or {}).get("name") or r["name"]
            parameters = spec.get("parameters") or {}
            disk = str(parameters.get("type"))
            classes[name] = EBS_VOLUME_TYPES.get(disk) or PD_TYPES.get(disk)
            annotations = (spec.get("metadata") or {}).get("annotations") or {}
            if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
                default = name
        if default is not None:
            classes[""] = default
        return classes

    def storage_key(self, storage_class: str | None) -> str:
        name = storage_class or self.storage_classes.get("")
        if name is None:
            raise _NoPrice("no default storage class known for this cloud")
        if name not in self.storage_classes:
            raise _NoPrice(f"storage class `{name}` is not in the plan nor a built-in one")
        key = self.storage_classes[name]
        if key is None:
            raise _NoPrice(f"storage class `{name}` provisions a disk type the model cannot price")
        return key

    def _node_range(self, resources: list[dict[str, Any]]) -> tuple[int, int]:
        low = high = 0
        for r in resources:
            counts = _node_counts(r, self)
            if counts:
                low, high = low + counts[0], high + counts[1]
        return low, high


class _NoPrice(Exception):
    """A resource the model knows but cannot price from this table."""


Handler = Callable[[dict[str, Any], _Pricer], list[tuple[str, str, str, float, float, str]]]
# A handler returns rows (what, price key, basis, quantity min, quantity max, note): basis
# "hour" for prices per hour (quantities in unit-hours per month, from `_hourly`), "month" for
# prices per month (quantities in GB or units). A table entry of the other basis is refused.
HOURLY_UNITS = ("hour", "GB-hour", "vCPU-hour")


def _hourly(count_min: float, count_max: float, pricer: _Pricer) -> tuple[float, float]:
    return count_min * pricer.hours, count_max * pricer.hours


def _range(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


# --- AWS ------------------------------------------------------------------------------------


def _eks_cluster(r: dict[str, Any], p: _Pricer) -> list:
    support = (r["inputs"].get("upgradePolicy") or {}).get("supportType", "EXTENDED")
    note = (
        "standard support; a version past it bills the extended-support rate"
        if support == "STANDARD"
        else "enters extended support (a higher hourly rate) when its version leaves standard"
    )
    return [("control plane", "eks.cluster", "hour", *_hourly(1, 1, p), note)]


def _eks_node_group(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    scaling = inputs.get("scalingConfig") or {}
    low, high = scaling.get("minSize", 0), scaling.get("maxSize", 0)
    types = inputs.get("instanceTypes") or ["t3.medium"]  # EKS's default instance type
    note = "spot: priced on demand (upper bound)" if inputs.get("capacityType") == "SPOT" else ""
    if len(types) > 1:
        note = "; ".join(filter(None, [note, f"priced as {types[0]}, the first of {types}"]))
    rows = [
        (
            f"{_range(low, high)} x {types[0]}",
            f"ec2.{types[0]}",
            "hour",
            *_hourly(low, high, p),
            note,
        )
    ]
    for volume_type, size in _node_group_volumes(inputs, p):
        key = EBS_VOLUME_TYPES.get(volume_type)
        if key is None:
            raise _NoPrice(f"root volume type `{volume_type}` has no price key")
        rows.append(
            (
                f"root volume {size:g} GB {volume_type} x {_range(low, high)}",
                key,
                "month",
                size * low,
                size * high,
                "",
            )
        )
    return rows


def _node_group_volumes(inputs: dict[str, Any], p: _Pricer) -> list[tuple[str, float]]:
    template_ref = inputs.get("launchTemplate") or {}
    template = p.by_id.get(template_ref.get("id", ""))
    if template is None:
        # No launch template: the node group's own disk, 20 GB gp2 unless set (EKS's default).
        return [("gp2", float(inputs.get("diskSize") or 20))]
    volumes = []
    for mapping in template["inputs"].get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs") or {}
        volumes.append((ebs.get("volumeType", "gp2"), float(ebs.get("volumeSize", 0))))
    return volumes


def _nat_gateway(r: dict[str, Any], p: _Pricer) -> list:
    if r["inputs"].get("connectivityType") == "private":
        return [("private NAT gateway", "vpc.nat-gateway", "hour", *_hourly(1, 1, p), "")]
    return [
        (
            "NAT gateway",
            "vpc.nat-gateway",
            "hour",
            *_hourly(1, 1, p),
            "data processed per GB not included",
        )
    ]


def _eip(r: dict[str, Any], p: _Pricer) -> list:
    return [("public IPv4 address", "vpc.public-ipv4", "hour", *_hourly(1, 1, p), "")]


def _rds_instance(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    engine, klass = inputs.get("engine", ""), inputs.get("instanceClass", "")
    multi_az = bool(inputs.get("multiAz"))
    # AWS lists Multi-AZ (one standby) deployments at twice the single-AZ instance and storage
    # prices; the table keeps the single-AZ ones.
    copies = 2 if multi_az else 1
    deployment = "Multi-AZ" if multi_az else "single-AZ"
    storage_type = inputs.get("storageType", "gp2")
    low = float(inputs.get("allocatedStorage") or 0)
    high = float(inputs.get("maxAllocatedStorage") or low)
    return [
        (
            f"{klass} {engine} {deployment}",
            f"rds.{engine}.{klass}",
            "hour",
            *_hourly(copies, copies, p),
            "",
        ),
        (
            f"{storage_type} storage {_range(low, high)} GB {deployment}",
            f"rds.storage.{storage_type}",
            "month",
            low * copies,
            high * copies,
            "grows to maxAllocatedStorage" if high > low else "",
        ),
    ]


def _elasticache(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    engine, node = inputs.get("engine", "redis"), inputs.get("nodeType", "")
    shards = inputs.get("numNodeGroups")
    if shards:
        nodes = shards * (1 + (inputs.get("replicasPerNodeGroup") or 0))
    else:
        nodes = inputs.get("numCacheClusters") or 1
    return [
        (
            f"{nodes} x {node} {engine}",
            f"elasticache.{engine}.{node}",
            "hour",
            *_hourly(nodes, nodes, p),
            "",
        )
    ]


def _msk(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    info = inputs.get("brokerNodeGroupInfo") or {}
    brokers = inputs.get("numberOfBrokerNodes") or 0
    klass = info.get("instanceType", "")
    size = float(
        ((info.get("storageInfo") or {}).get("ebsStorageInfo") or {}).get("volumeSize") or 0
    )
    return [
        (f"{brokers} x {klass} brokers", f"msk.{klass}", "hour", *_hourly(brokers, brokers, p), ""),
        (
            f"broker storage {size:g} GB x {brokers}",
            "msk.storage",
            "month",
            size * brokers,
            size * brokers,
            "",
        ),
    ]


def _s3_bucket(r: dict[str, Any], p: _Pricer) -> list:
    gb = p.assume("bucket_gb")
    return [
        (
            f"{gb:g} GB Standard (assumed)",
            "s3.standard",
            "month",
            gb,
            gb,
            "usage-based: stored GB assumed",
        )
    ]


def _kms_key(r: dict[str, Any], p: _Pricer) -> list:
    return [("customer managed key", "kms.key", "month", 1, 1, "requests not included")]


def _log_group(r: dict[str, Any], p: _Pricer) -> list:
    gb = p.assume("log_gb_per_month")
    return [
        (
            f"{gb:g} GB ingested (assumed)",
            "cloudwatch.logs-ingest",
            "month",
            gb,
            gb,
            "usage-based: ingested GB assumed; storage not included",
        )
    ]


# --- GCP ------------------------------------------------------------------------------------


def _gke_cluster(r: dict[str, Any], p: _Pricer) -> list:
    return [
        (
            "cluster management fee",
            "gke.cluster",
            "hour",
            *_hourly(1, 1, p),
            "the free-tier credit of one cluster is not applied",
        )
    ]


def _gke_zones(inputs: dict[str, Any]) -> tuple[int, str]:
    locations = inputs.get("nodeLocations") or []
    if locations:
        return len(locations), ""
    if re.fullmatch(r"[a-z]+-[a-z]+\d+", inputs.get("location", "")):
        return GKE_REGIONAL_ZONES, f"regional: {GKE_REGIONAL_ZONES} zones assumed"
    return 1, ""


def _node_counts(r: dict[str, Any], p: _Pricer | None = None) -> tuple[int, int] | None:
    """(min, max) nodes of a node pool or node group, else None."""
    inputs = r["inputs"]
    if r["type"] == "aws:eks/nodeGroup:NodeGroup":
        scaling = inputs.get("scalingConfig") or {}
        return scaling.get("minSize", 0), scaling.get("maxSize", 0)
    if r["type"] == "gcp:container/nodePool:NodePool":
        autoscaling = inputs.get("autoscaling")
        if not autoscaling:
            zones = _gke_zones(inputs)[0]
            count = (inputs.get("nodeCount") or inputs.get("initialNodeCount") or 0) * zones
            return count, count
        if "totalMinNodeCount" in autoscaling or "totalMaxNodeCount" in autoscaling:
            return autoscaling.get("totalMinNodeCount", 0), autoscaling.get("totalMaxNodeCount", 0)
        zones = _gke_zones(inputs)[0]
        return autoscaling.get("minNodeCount", 0) * zones, autoscaling.get(
            "maxNodeCount", 0
        ) * zones
    return None


def _gke_node_pool(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    config = inputs.get("nodeConfig") or {}
    low, high = _node_counts(r) or (0, 0)
    zones_note = (
        "" if "totalMinNodeCount" in (inputs.get("autoscaling") or {}) else _gke_zones(inputs)[1]
    )
    machine = config.get("machineType", "e2-medium")  # GKE's default machine type
    spot = config.get("spot") or config.get("preemptible")
    note = "; ".join(
        filter(None, ["spot: priced on demand (upper bound)" if spot else "", zones_note])
    )
    rows = [
        (f"{_range(low, high)} x {machine}", f"gce.{machine}", "hour", *_hourly(low, high, p), note)
    ]
    if not machine.startswith(GPU_INCLUDED_MACHINE_FAMILIES):
        for accelerator in config.get("guestAccelerators") or []:
            count = accelerator.get("count", 1)
            kind = accelerator.get("type", "")
            rows.append(
                (
                    f"{count} x {kind} per node x {_range(low, high)}",
                    f"gce.gpu.{kind}",
                    "hour",
                    *_hourly(low * count, high * count, p),
                    "",
                )
            )
    disk_type = config.get("diskType", "pd-balanced")
    size = float(config.get("diskSize", config.get("diskSizeGb", 100)))
    key = PD_TYPES.get(disk_type)
    if key is None:
        raise _NoPrice(f"boot disk type `{disk_type}` has no price key")
    rows.append(
        (
            f"boot disk {size:g} GB {disk_type} x {_range(low, high)}",
            key,
            "month",
            size * low,
            size * high,
            "",
        )
    )
    return rows


def _cloud_nat(r: dict[str, Any], p: _Pricer) -> list:
    low, high = (min(n, CLOUD_NAT_MAX_BILLED_VMS) for n in p.node_range)
    rows = [
        (
            f"NAT gateway for {_range(low, high)} VMs",
            "cloud-nat.vm",
            "hour",
            *_hourly(low, high, p),
            "billed per VM up to 32; data processed not included",
        )
    ]
    addresses = len(r["inputs"].get("natIps") or []) or 1
    note = (
        "auto-allocated: at least one, more as VMs need ports"
        if r["inputs"].get("natIpAllocateOption", "AUTO_ONLY") == "AUTO_ONLY"
        else ""
    )
    rows.append(
        (f"{addresses} NAT IP address(es)", "cloud-nat.ip", "hour",
         *_hourly(addresses, addresses, p), note)
    )  # fmt: skip
    return rows


def _global_address(r: dict[str, Any], p: _Pricer) -> list:
    if r["inputs"].get("addressType") == "INTERNAL":
        return []  # an internal range (private services access) has no charge
    return [("static external IP", "compute.static-ip", "hour", *_hourly(1, 1, p), "")]


def _cloud_sql(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    settings = inputs.get("settings") or {}
    tier = settings.get("tier", "")
    match = re.fullmatch(r"db-custom-(\d+)-(\d+)", tier)
    if not match:
        raise _NoPrice(f"tier `{tier}` is not a custom tier (db-custom-<vCPUs>-<MB>)")
    vcpus, memory_gb = int(match[1]), int(match[2]) / 1024
    edition = (settings.get("edition") or "ENTERPRISE").lower().replace("_", "-")
    regional = settings.get("availabilityType") == "REGIONAL"
    # Cloud SQL lists high availability (regional) at twice the zonal vCPU, memory and storage
    # prices; the table keeps the zonal ones.
    copies = 2 if regional else 1
    deployment = "HA (regional)" if regional else "zonal"
    disk = (settings.get("diskType") or "PD_SSD").lower().replace("_", "-")
    low = float(settings.get("diskSize") or 10)
    high = (
        float(settings.get("diskAutoresizeLimit") or low)
        if settings.get("diskAutoresize", True)
        else low
    )
    return [
        (
            f"{vcpus} vCPU {deployment}",
            f"cloudsql.{edition}.vcpu",
            "hour",
            *_hourly(vcpus * copies, vcpus * copies, p),
            "",
        ),
        (
            f"{memory_gb:g} GB memory {deployment}",
            f"cloudsql.{edition}.memory",
            "hour",
            *_hourly(memory_gb * copies, memory_gb * copies, p),
            "",
        ),
        (
            f"{disk} storage {_range(low, high)} GB {deployment}",
            f"cloudsql.storage.{disk}",
            "month",
            low * copies,
            high * copies,
            "grows to diskAutoresizeLimit" if high > low else "",
        ),
    ]


# Memorystore for Redis bills per GB-hour by service tier and capacity tier (M1..M5).
_MEMORYSTORE_CAPACITY_TIERS = ((4, "m1"), (10, "m2"), (35, "m3"), (100, "m4"), (float("inf"), "m5"))


def _memorystore(r: dict[str, Any], p: _Pricer) -> list:
    inputs = r["inputs"]
    size = float(inputs.get("memorySizeGb") or 0)
    tier = "standard" if inputs.get("tier") == "STANDARD_HA" else "basic"
    capacity = next(name for limit, name in _MEMORYSTORE_CAPACITY_TIERS if size <= limit)
    return [
        (
            f"{size:g} GB {tier} tier ({capacity.upper()})",
            f"memorystore.redis.{tier}.{capacity}",
            "hour",
            *_hourly(size, size, p),
            "",
        )
    ]


def _managed_kafka(r: dict[str, Any], p: _Pricer) -> list:
    capacity = r["inputs"].get("capacityConfig") or {}
    vcpus = float(capacity.get("vcpuCount") or 0)
    memory_gb = float(capacity.get("memoryBytes") or 0) / 2**30
    gb = p.assume("kafka_storage_gb")
    # The brokers' local disks are provisioned by the service with the vCPUs, and billed.
    local_gb = vcpus * p.assume("kafka_local_storage_gb_per_vcpu")
    return [
        (f"{vcpus:g} vCPU", "managedkafka.vcpu", "hour", *_hourly(vcpus, vcpus, p), ""),
        (
            f"{memory_gb:g} GB memory",
            "managedkafka.memory",
            "hour",
            *_hourly(memory_gb, memory_gb, p),
            "",
        ),
        (
            f"{gb:g} GB stored (assumed)",
            "managedkafka.storage",
            "month",
            gb,
            gb,
            "usage-based: stored GB assumed",
        ),
        (
            f"{local_gb:g} GB brokers' local storage (assumed per vCPU)",
            "managedkafka.local-storage",
            "month",
            local_gb,
            local_gb,
            "provisioned with the vCPUs; size per vCPU assumed",
        ),
    ]


def _gcs_bucket(r: dict[str, Any], p: _Pricer) -> list:
    gb = p.assume("bucket_gb")
    storage_class = (r["inputs"].get("storageClass") or "STANDARD").lower()
    return [
        (
            f"{gb:g} GB {storage_class} (assumed)",
            f"gcs.{storage_class}",
            "month",
            gb,
            gb,
            "usage-based: stored GB assumed",
        )
    ]


# --- Kubernetes objects that provision cloud resources ---------------------------------------


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_GB_PER_UNIT = {
    "Ki": 2**10 / 2**30,
    "Mi": 2**20 / 2**30,
    "Gi": 1.0,
    "Ti": 2**10,
    "Pi": 2**20,
    "k": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
    "T": 1e12 / 2**30,
    "P": 1e15 / 2**30,
    None: 1 / 2**30,
}


def storage_gb(quantity: str | int | float) -> float:
    """A Kubernetes storage quantity in GiB (what the clouds bill as "GB" for disks)."""
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        raise _NoPrice(f"storage quantity {quantity!r} is not a Kubernetes quantity")
    return float(match[1]) * _GB_PER_UNIT[match[2]]


def _claims(spec: dict[str, Any]) -> tuple[float, str | None]:
    """(GB, storage class) of a PersistentVolumeClaim spec."""
    requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if requested is None:
        raise _NoPrice("a volume claim without resources.requests.storage")
    return storage_gb(requested), spec.get("storageClassName")


def _volume_rows(what: str, gb: float, copies: int, storage_class: str | None, p: _Pricer) -> tuple:
    if p.cloud == "local":
        return ()
    key = p.storage_key(storage_class)
    label = storage_class or f"default class {p.storage_classes.get('')}"
    return (f"{what}: {gb:g} GB x {copies} ({label})", key, "month", gb * copies, gb * copies, "")


def _pvc(r: dict[str, Any], p: _Pricer) -> list:
    gb, klass = _claims(r["inputs"].get("spec") or {})
    row = _volume_rows("volume", gb, 1, klass, p)
    return [row] if row else []


def _stateful_set(r: dict[str, Any], p: _Pricer) -> list:
    spec = r["inputs"].get("spec") or {}
    replicas = spec.get("replicas", 1)
    rows = []
    for template in spec.get("volumeClaimTemplates") or []:
        gb, klass = _claims(template.get("spec") or {})
        name = (template.get("metadata") or {}).get("name", "volume")
        row = _volume_rows(f"volume {name}", gb, replicas, klass, p)
        if row:
            rows.append(row)
    return rows


def _strimzi_node_pool(r: dict[str, Any], p: _Pricer) -> list:
    spec = r["inputs"].get("spec") or {}
    replicas = spec.get("replicas", 1)
    storage = spec.get("storage") or {}
    volumes = storage.get("volumes") if storage.get("type") == "jbod" else [storage]
    rows = []
    for volume in volumes or []:
        if volume.get("type") != "persistent-claim":
            continue  # ephemeral: the node's own disk
        row = _volume_rows(
            "broker volume", storage_gb(volume["size"]), replicas, volume.get("class"), p
        )
        if row:
            rows.append(row)
    return rows


def _helm_volumes(
    values: Any, replicas: int = 1, path: str = ""
) -> Iterator[tuple[str, dict, int]]:
    """(path, claim spec, replicas) of every volume a chart's values ask for: operator-style
    `volumeClaimTemplate`s (kube-prometheus-stack) and `persistence: {enabled, size}` blocks
    (Grafana, Bitnami-style charts). Replicas come from the nearest enclosing `replicas`."""
    if isinstance(values, Mapping):
        if isinstance(values.get("replicas"), int):
            replicas = values["replicas"]
        for key, value in values.items():
            where = f"{path}.{key}" if path else key
            if key == "volumeClaimTemplate" and isinstance(value, Mapping):
                yield where, value.get("spec") or {}, replicas
            elif key == "persistence" and isinstance(value, Mapping) and value.get("enabled"):
                if "size" in value:
                    spec = {
                        "resources": {"requests": {"storage": value["size"]}},
                        "storageClassName": value.get("storageClass") or None,
                    }
                    yield where, spec, replicas
            else:
                yield from _helm_volumes(value, replicas, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _helm_volumes(item, replicas, f"{path}[{index}]")


def _helm_release(r: dict[str, Any], p: _Pricer) -> list:
    rows = []
    # by path: the values' key order is the order the engine resolved their outputs in, which
    # differs between runs, and the plan must not
    volumes = sorted(_helm_volumes(r["inputs"].get("values") or {}), key=lambda v: v[0])
    for where, spec, replicas in volumes:
        gb, klass = _claims(spec)
        row = _volume_rows(where, gb, replicas, klass, p)
        if row:
            rows.append(row)
    if p.cloud != "local":
        services = sorted(_helm_load_balancers(r["inputs"].get("values") or {}), key=lambda s: s[0])
        for where, service in services:
            annotations = service.get("annotations") or {}
            lb_class = service.get("loadBalancerClass")
            rows.append(
                _load_balancer_row(f"{where} (type LoadBalancer)", annotations, p, lb_class)
            )
    return rows


# The annotation (or load balancer class) that makes AWS's service controllers create a Network
# Load Balancer; without either, the cloud provider's controller EKS runs creates a Classic Load
# Balancer. (The AWS Load Balancer Controller, which the platform does not install, would set the
# class itself: https://aws-ia.github.io/terraform-aws-eks-blueprints-addons/v1.9.2/addons/aws-load-balancer-controller)
AWS_LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
AWS_NLB_TYPES = ("nlb", "external", "nlb-ip")
AWS_NLB_CLASS = "service.k8s.aws/nlb"


def _load_balancer_row(
    what: str, annotations: Mapping[str, Any], p: _Pricer, lb_class: str | None = None
) -> tuple:
    if p.cloud == "aws":
        nlb = (
            str(annotations.get(AWS_LB_TYPE_ANNOTATION, "")) in AWS_NLB_TYPES
            or lb_class == AWS_NLB_CLASS
        )
        key, kind = ("elb.nlb", "Network") if nlb else ("elb.classic", "Classic")
        what = f"{kind} Load Balancer of {what}"
    else:
        key, what = "compute.forwarding-rule", f"load balancer of {what}"
    return (what, key, "hour", *_hourly(1, 1, p), "capacity units / data processed not included")


def _service(r: dict[str, Any], p: _Pricer) -> list:
    if (r["inputs"].get("spec") or {}).get("type") != "LoadBalancer" or p.cloud == "local":
        return []
    annotations = (r["inputs"].get("metadata") or {}).get("annotations") or {}
    lb_class = r["inputs"]["spec"].get("loadBalancerClass")
    return [_load_balancer_row("a LoadBalancer Service", annotations, p, lb_class)]


def _helm_load_balancers(values: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, service values) of every `service: {type: LoadBalancer}` block in a chart's values
    (the Istio gateway chart's `service`, a chart's `grafana.service`, ...)."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            where = f"{path}.{key}" if path else key
            if (
                key == "service"
                and isinstance(value, Mapping)
                and value.get("type") == "LoadBalancer"
            ):
                yield where, value
            else:
                yield from _helm_load_balancers(value, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _helm_load_balancers(item, f"{path}[{index}]")


HANDLERS: dict[str, Handler] = {
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _eip,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache,
    "aws:msk/cluster:Cluster": _msk,
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:s3/bucketV2:BucketV2": _s3_bucket,
    "aws:kms/key:Key": _kms_key,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "gcp:container/cluster:Cluster": _gke_cluster,
    "gcp:container/nodePool:NodePool": _gke_node_pool,
    "gcp:compute/routerNat:RouterNat": _cloud_nat,
    "gcp:compute/globalAddress:GlobalAddress": _global_address,
    "gcp:sql/databaseInstance:DatabaseInstance": _cloud_sql,
    "gcp:redis/instance:Instance": _memorystore,
    "gcp:managedkafka/cluster:Cluster": _managed_kafka,
    "gcp:storage/bucket:Bucket": _gcs_bucket,
    "kubernetes:core/v1:PersistentVolumeClaim": _pvc,
    "kubernetes:apps/v1:StatefulSet": _stateful_set,
    "kubernetes:kafka.strimzi.io/v1:KafkaNodePool": _strimzi_node_pool,
    "kubernetes:kafka.strimzi.io/v1beta2:KafkaNodePool": _strimzi_node_pool,
    "kubernetes:helm.sh/v3:Release": _helm_release,
    "kubernetes:helm.sh/v4:Chart": _helm_release,
    "kubernetes:core/v1:Service": _service,
}


def _no_charge(resource_type: str) -> bool:
    if any(resource_type.startswith(prefix) for prefix in NO_CHARGE):
        return True
    if resource_type.startswith("kubernetes:"):
        group = resource_type.split(":", 2)[1]
        return group.startswith(IN_CLUSTER_GROUPS)
    return False


def cloud_of(resources: list[dict[str, Any]]) -> tuple[str, str | None]:
    """("aws" | "gcp" | "local", region) from the plan's resources."""
    for r in resources:
        if r["type"] == "pulumi:providers:aws" and r["inputs"].get("region"):
            return "aws", r["inputs"]["region"]
    for r in resources:
        if r["type"].startswith("gcp:") and isinstance(r["inputs"].get("region"), str):
            return "gcp", r["inputs"]["region"]
    if any(r["type"].startswith("aws:") for r in resources):
        return "aws", None
    if any(r["type"].startswith("gcp:") for r in resources):
        return "gcp", None
    return "local", None


def estimate(plan: Mapping[str, Any], table: PricingTable | None = None) -> Estimate:
    """The monthly cost of the plan's resources (`mlops plan --format json` document).

    `table` defaults to the project's table for the plan's cloud and region; a cloud plan with
    no table lists every billable resource as unpriced. A local plan needs no table.
    """
    resources = list(plan.get("resources") or [])
    cloud, region = cloud_of(resources)
    layers = list(plan.get("layers") or dict.fromkeys(r.get("layer", "") for r in resources))
    result = Estimate(stack=plan.get("stack", ""), cloud=cloud, region=region, layers=layers)
    missing_table = None
    if table is None and cloud != "local":
        path = table_path(cloud, region or "unknown-region")
        if path.is_file():
            table = load_table(path)
            result.table = str(path.relative_to(PRICING_DIR.parents[1]))
        else:
            missing_table = f"no pricing table for {cloud} {region} ({path.name})"
    if table is not None:
        result.retrieved = table.retrieved
    pricer = _Pricer(
        table or PricingTable(cloud="aws", region="-", hours_per_month=730, prices={}),
        resources,
        cloud,
    )
    for r in resources:
        handler = HANDLERS.get(r["type"])
        layer = r.get("layer", "")
        if handler is None:
            if _no_charge(r["type"]) or (cloud == "local" and r["type"].startswith("kubernetes:")):
                result.no_charge += 1
            else:
                result.unpriced.append(
                    Unpriced(layer, r["type"], r["name"], "resource type not in the cost model")
                )
            continue
        if missing_table and not r["type"].startswith("kubernetes:"):
            result.unpriced.append(Unpriced(layer, r["type"], r["name"], missing_table))
            continue
        try:
            rows = handler(r, pricer)
        except _NoPrice as exc:
            result.unpriced.append(Unpriced(layer, r["type"], r["name"], str(exc)))
            continue
        if not rows:
            result.no_charge += 1
        # A line the table cannot price is listed as unpriced; the resource's other lines stay.
        for what, key, basis, low, high, note in rows:
            try:
                price = pricer.price(key, basis)
            except _NoPrice as exc:
                result.unpriced.append(Unpriced(layer, r["type"], r["name"], f"{what}: {exc}"))
                continue
            result.items.append(
                LineItem(layer, r["type"], r["name"], what, key, price.usd or 0.0, price.unit,
                         low, high, note)
            )  # fmt: skip
    result.assumptions = [
        f"{key}: {a.value:g} {a.unit} ({a.why})"
        for key, a in sorted(pricer.assumptions_used.items())
    ]
    return result


# --- change against a base plan -----------------------------------------------------------


@dataclass
class CostChange:
    base: str
    base_min: float
    base_max: float
    new_min: float
    new_max: float
    # ("layer: resource what", base monthly max, new monthly max), only the lines that differ
    lines: list[tuple[str, float, float]] = field(default_factory=list)
    # unpriced lines in either plan: the change covers priced lines only
    unpriced: int = 0

    @property
    def delta_min(self) -> float:
        return self.new_min - self.base_min

    @property
    def delta_max(self) -> float:
        return self.new_max - self.base_max

    def as_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "baseMonthlyUsd": {"min": _cents(self.base_min), "max": _cents(self.base_max)},
            "deltaMonthlyUsd": {"min": _cents(self.delta_min), "max": _cents(self.delta_max)},
            "unpricedInEither": self.unpriced,
            "lines": [
                {"line": label, "baseMaxUsd": _cents(old), "newMaxUsd": _cents(new)}
                for label, old, new in self.lines
            ],
        }


def _line_totals(result: Estimate) -> dict[tuple[str, str, str], tuple[str, float, float]]:
    """(layer, resource, price key) -> (what, monthly min, monthly max): a line keeps its key
    when its quantity changes (a node group resized), so the change reads as one line."""
    totals: dict[tuple[str, str, str], tuple[str, float, float]] = {}
    for item in result.items:
        key = (item.layer, item.name, item.price_key)
        _, low, high = totals.get(key, ("", 0.0, 0.0))
        totals[key] = (item.what, low + item.monthly_min, high + item.monthly_max)
    return totals


def change(base: Estimate, new: Estimate, base_name: str) -> CostChange:
    """What the new plan's estimate adds or removes against the base's, line by line."""
    old_lines, new_lines = _line_totals(base), _line_totals(new)
    lines = []
    for key in sorted(set(old_lines) | set(new_lines)):
        old = old_lines.get(key, ("", 0.0, 0.0))
        now = new_lines.get(key, ("", 0.0, 0.0))
        if _cents(old[1]) != _cents(now[1]) or _cents(old[2]) != _cents(now[2]):
            layer, name, _ = key
            lines.append((f"{layer}: {name} {now[0] or old[0]}", old[2], now[2]))
    unpriced = len(base.unpriced) + len(new.unpriced)
    return CostChange(base_name, base.monthly_min, base.monthly_max, new.monthly_min,
                      new.monthly_max, lines, unpriced)  # fmt: skip


def read_base(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise CostError(f"--diff {path}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise CostError(f"--diff {path}: not JSON ({exc})") from None


# --- rendering ------------------------------------------------------------------------------


def usd(value: float) -> str:
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def usd_range(low: float, high: float) -> str:
    return usd(low) if _cents(low) == _cents(high) else f"{usd(low)} to {usd(high)}"


def signed(value: float) -> str:
    if _cents(value) == 0:
        return "±$0"
    return ("+" if value > 0 else "-") + usd(abs(value))


def _headline(result: Estimate) -> str:
    if result.cloud == "local":
        return "$0 per month, local cluster: no cloud spend (runs on a cluster you already have)"
    where = f"{result.cloud} {result.region}"
    table = (
        f", prices of {result.retrieved.isoformat()} ({result.table})"
        if result.table and result.retrieved
        else ""
    )
    # An estimate with unpriced lines is a lower bound: the headline says so up front.
    count = len(result.unpriced)
    unpriced = f" + {count} unpriced line{'s' if count > 1 else ''}" if count else ""
    total = usd_range(result.monthly_min, result.monthly_max)
    return f"{total} per month{unpriced}, {where}{table}"


def render_text(result: Estimate, delta: CostChange | None = None) -> str:
    lines = [f"Estimated monthly cost (USD, minimum to maximum scale): {_headline(result)}"]
    if delta is not None:
        lines.append(
            f"  change against {delta.base}: {signed(delta.delta_min)}/month at min scale, "
            f"{signed(delta.delta_max)}/month at max scale"
            + (
                f" (priced lines only; {delta.unpriced} unpriced in either plan)"
                if delta.unpriced
                else ""
            )
        )
        lines += [f"    {label}: {usd(old)} -> {usd(new)} (max)" for label, old, new in delta.lines]
    for layer, (low, high) in result.by_layer().items():
        lines.append(f"  {layer:<9} {usd_range(low, high)}")
    for item in result.items:
        note = f"  [{item.note}]" if item.note else ""
        lines.append(
            f"    {item.layer:<9} {item.name:<32} {item.what:<48} "
            f"{usd_range(item.monthly_min, item.monthly_max):>17}{note}"
        )
    if result.unpriced:
        lines.append(f"  Unpriced ({len(result.unpriced)}, not in the total):")
        lines += [f"    {u.layer:<9} {u.type} {u.name}: {u.reason}" for u in result.unpriced]
    if result.assumptions:
        lines.append("  Assumptions: " + "; ".join(result.assumptions))
    lines.append("  Limits: " + " ".join(LIMITS))
    return "\n".join(lines)


def render_markdown(result: Estimate, delta: CostChange | None = None) -> str:
    lines = [f"### Cost estimate: {_headline(result)}"]
    if delta is not None:
        lines += [
            "",
            f"Change against `{delta.base}`: **{signed(delta.delta_min)}/month** at min scale, "
            f"**{signed(delta.delta_max)}/month** at max scale "
            f"(was {usd_range(delta.base_min, delta.base_max)})"
            + (
                f"; priced lines only, {delta.unpriced} unpriced in either plan."
                if delta.unpriced
                else "."
            ),
        ]
        if delta.lines:
            lines += ["", "| changed line | base (max) | this change (max) |", "|---|---:|---:|"]
            lines += [f"| {label} | {usd(old)} | {usd(new)} |" for label, old, new in delta.lines]
    lines += ["", "| layer | monthly (min to max) |", "|---|---:|"]
    lines += [
        f"| {layer} | {usd_range(low, high)} |" for layer, (low, high) in result.by_layer().items()
    ]
    lines.append(f"| **total** | **{usd_range(result.monthly_min, result.monthly_max)}** |")
    if result.items:
        lines += ["", "<details><summary>Line items</summary>", ""]
        lines += [
            "| layer | resource | what | unit price | monthly | note |",
            "|---|---|---|---:|---:|---|",
        ]
        for item in result.items:
            lines.append(
                f"| {item.layer} | `{item.name}` | {item.what} | "
                f"${item.unit_usd:g}/{item.unit} | {usd_range(item.monthly_min, item.monthly_max)} "
                f"| {item.note} |"
            )
        lines += ["", "</details>"]
    if result.unpriced:
        lines += ["", f"**Unpriced ({len(result.unpriced)}, not in the total):**"]
        lines += [f"- `{u.type}` `{u.name}`: {u.reason}" for u in result.unpriced]
    if result.assumptions:
        lines += ["", "Assumptions: " + "; ".join(result.assumptions)]
    lines += ["", "Limits: " + " ".join(LIMITS)]
    return "\n".join(lines) + "\n"


def report(plan: Mapping[str, Any], base: Path | None = None) -> tuple[Estimate, CostChange | None]:
    """The plan's estimate and, with `base` (a saved `--format json` plan), its change against
    the base plan's estimate (priced with today's tables, so only the plans differ)."""
    result = estimate(plan)
    if base is None:
        return result, None
    return result, change(estimate(read_base(base)), result, str(base))


def as_json(result: Estimate, delta: CostChange | None = None) -> dict[str, Any]:
    document = result.as_json()
    if delta is not None:
        document["changeAgainstBase"] = delta.as_json()
    return document
