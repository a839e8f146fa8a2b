"""What the platform relies on in a cluster, what provides it, and the check between the two.

Pure functions over planned resources (`{"type", "name", "inputs"}` as `mlops plan --format json`
writes them) and over plain Kubernetes objects, so the same check runs over one stack's plan, over
the union of several layered stacks' plans, and over the objects rendered from charts.

A need is a capability: a StorageClass (by name, or the cluster default), a volume provisioner
(the driver behind a class), an aggregated API (`metrics.k8s.io/v1beta1` for a CPU
HorizontalPodAutoscaler) or a CRD (group/version and kind of a custom resource). Storage is
resolved in two steps, as Kubernetes does: a claim names a class (or takes the default), and the
class's provisioner must be installed, or the claim stays Pending forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CapabilityKind = Literal["storage-class", "provisioner", "api", "crd"]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
METRICS_API = "metrics.k8s.io/v1beta1"
CUSTOM_METRICS_API = "custom.metrics.k8s.io/v1beta2"
EXTERNAL_METRICS_API = "external.metrics.k8s.io/v1beta1"

# In-tree volume plugins are served by their CSI driver since CSI migration went GA (AWS EBS and
# GCE PD in 1.25; the in-tree code is gone since 1.27): a `kubernetes.io/aws-ebs` class
# provisions nothing without the EBS CSI driver.
MIGRATED_PROVISIONERS = {
    "kubernetes.io/aws-ebs": "ebs.csi.aws.com",
    "kubernetes.io/gce-pd": "pd.csi.storage.gke.io",
}

# API groups the API server serves itself in Kubernetes 1.35; any other group is a CRD's or an
# aggregated API's. Written out because the validator's schema files answer "is this kind
# valid", not "who serves this group".
BUILT_IN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)


@dataclass(frozen=True, order=True)
class Capability:
    kind: CapabilityKind
    name: str  # class name ("" = the default class), driver, group/version, or "Kind group/version"

    def __str__(self) -> str:
        if self.kind == "storage-class" and not self.name:
            return "a default StorageClass"
        return f"{self.kind} {self.name}"


def storage_class(name: str | None) -> Capability:
    """The class a claim asks for; None (no `storageClassName`) asks for the default."""
    return Capability("storage-class", name or "")


def provisioner(name: str) -> Capability:
    return Capability("provisioner", MIGRATED_PROVISIONERS.get(name, name))


def api(group_version: str) -> Capability:
    return Capability("api", group_version)


def crd(api_version: str, kind: str) -> Capability:
    return Capability("crd", f"{kind} {api_version}")


@dataclass(frozen=True)
class StorageClassSpec:
    name: str
    provisioner: str
    default: bool = False


@dataclass(frozen=True)
class Need:
    capability: Capability
    by: str  # "<Kind> <name>" of the object or resource that relies on it
    where: str = ""  # the field that says so


@dataclass(frozen=True)
class Offer:
    """What one resource (or the cluster as it comes) provides."""

    by: str
    capabilities: frozenset[Capability] = frozenset()
    storage_classes: tuple[StorageClassSpec, ...] = ()
    # (class name, default flag) set on a class that exists already (a StorageClassPatch)
    default_changes: tuple[tuple[str, bool], ...] = ()
    # what the cluster has before anything is installed: comes first, so creating one of its
    # classes again is the conflict, not the cluster's own class
    existing: bool = False


@dataclass(frozen=True)
class Problem:
    by: str
    message: str

    def __str__(self) -> str:
        return f"{self.by}: {self.message}"


# --- plain Kubernetes objects ----------------------------------------------------------------


def _label(obj: Mapping[str, Any], fallback: str = "?") -> str:
    return f"{obj.get('kind', '?')} {(obj.get('metadata') or {}).get('name') or fallback}"


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _is_true(value: Any) -> bool:
    return str(value).lower() == "true"


def claim_need(spec: Mapping[str, Any] | None, by: str, where: str) -> Need | None:
    """A PersistentVolumeClaim spec's class; `storageClassName: ""` binds statically (no need)."""
    spec = spec or {}
    name = spec.get("storageClassName")
    if name == "":
        return None
    return Need(storage_class(name), by, where)


def _pod_spec_needs(pod: Mapping[str, Any] | None, by: str, where: str) -> Iterator[Need]:
    for i, volume in enumerate((pod or {}).get("volumes") or []):
        template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate")
        if template is not None:
            need = claim_need(template.get("spec"), by, f"{where}.volumes[{i}].ephemeral")
            if need:
                yield need


def _hpa_needs(obj: Mapping[str, Any], by: str) -> Iterator[Need]:
    spec = obj.get("spec") or {}
    if obj.get("apiVersion") == "autoscaling/v1":
        yield Need(api(METRICS_API), by, "spec (CPU utilisation)")
        return
    metrics = spec.get("metrics")
    if not metrics:  # autoscaling/v2 defaults to 80% average CPU
        yield Need(api(METRICS_API), by, "spec.metrics (default: CPU)")
        return
    by_type = {
        "Resource": METRICS_API,
        "ContainerResource": METRICS_API,
        "Pods": CUSTOM_METRICS_API,
        "Object": CUSTOM_METRICS_API,
        "External": EXTERNAL_METRICS_API,
    }
    for i, metric in enumerate(metrics):
        yield Need(api(by_type[metric["type"]]), by, f"spec.metrics[{i}] ({metric['type']})")


def _strimzi_storage_needs(storage: Mapping[str, Any] | None, by: str, where: str):
    storage = storage or {}
    volumes = storage.get("volumes") if storage.get("type") == "jbod" else [storage]
    for i, volume in enumerate(volumes or []):
        if volume.get("type") == "persistent-claim":
            yield Need(storage_class(volume.get("class")), by, f"{where}.volumes[{i}].class")


def object_needs(obj: Mapping[str, Any], fallback_name: str = "?") -> list[Need]:
    """What one Kubernetes object relies on in the cluster."""
    by = _label(obj, fallback_name)
    kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
    spec = obj.get("spec") or {}
    needs: list[Need] = []
    group = _group(api_version)
    if group not in BUILT_IN_GROUPS:
        needs.append(Need(crd(api_version, kind), by, "apiVersion/kind"))
    if kind == "PersistentVolumeClaim":
        needs += filter(None, [claim_need(spec, by, "spec.storageClassName")])
    elif kind == "HorizontalPodAutoscaler":
        needs += _hpa_needs(obj, by)
    elif group == "kafka.strimzi.io" and kind in ("KafkaNodePool", "Kafka"):
        storage = (
            spec.get("storage") if kind == "KafkaNodePool" else spec.get("kafka", {}).get("storage")
        )
        needs += _strimzi_storage_needs(storage, by, "spec.storage")
    elif group == "monitoring.coreos.com" and kind in ("Prometheus", "Alertmanager"):
        template = (spec.get("storage") or {}).get("volumeClaimTemplate")
        if template is not None:
            needs += filter(None, [claim_need(template.get("spec"), by, "spec.storage")])
    if kind == "StatefulSet":
        for i, template in enumerate(spec.get("volumeClaimTemplates") or []):
            need = claim_need(template.get("spec"), by, f"spec.volumeClaimTemplates[{i}]")
            if need:
                needs.append(need)
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        template_spec = (spec.get("template") or {}).get("spec")
        needs += _pod_spec_needs(template_spec, by, "spec.template.spec")
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        needs += _pod_spec_needs((job.get("template") or {}).get("spec"), by, "spec.jobTemplate")
    elif kind == "Pod":
        needs += _pod_spec_needs(spec, by, "spec")
    return needs


def storage_class_spec(obj: Mapping[str, Any], fallback_name: str = "?") -> StorageClassSpec:
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return StorageClassSpec(
        name=metadata.get("name") or fallback_name,
        provisioner=obj.get("provisioner", ""),
        default=_is_true(annotations.get(DEFAULT_CLASS_ANNOTATION)),
    )


def object_offer(obj: Mapping[str, Any], fallback_name: str = "?") -> Offer | None:
    """What one Kubernetes object provides: a StorageClass, a CRD's kinds, an APIService."""
    by = _label(obj, fallback_name)
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "StorageClass":
        return Offer(by, storage_classes=(storage_class_spec(obj, fallback_name),))
    if kind == "CustomResourceDefinition":
        found = frozenset(
            crd(f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            for version in spec.get("versions") or []
            if version.get("served", True)
        )
        return Offer(by, capabilities=found)
    if kind == "APIService":
        return Offer(by, capabilities=frozenset({api(f"{spec['group']}/{spec['version']}")}))
    return None


# --- the check -------------------------------------------------------------------------------


@dataclass
class Inventory:
    """Everything offered and needed, gathered from any number of resources and objects."""

    offers: list[Offer] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, other: Inventory) -> Inventory:
        self.offers += other.offers
        self.needs += other.needs
        self.problems += other.problems
        return self


def check(inventory: Inventory) -> list[Problem]:
    """Every need that nothing offers, every claim whose class has no provisioner installed,
    and every StorageClass conflict (created twice, patched but absent, several defaults)."""
    problems = list(inventory.problems)
    capabilities: set[Capability] = set()
    classes: dict[str, tuple[StorageClassSpec, str]] = {}
    offers = sorted(inventory.offers, key=lambda offer: not offer.existing)
    for offer in offers:
        capabilities |= offer.capabilities
        for spec in offer.storage_classes:
            if spec.name in classes:
                problems.append(
                    Problem(
                        offer.by,
                        f"creates StorageClass {spec.name}, which {classes[spec.name][1]} "
                        "provides already",
                    )
                )
                continue
            classes[spec.name] = (spec, offer.by)
    for offer in offers:
        for name, default in offer.default_changes:
            if name not in classes:
                problems.append(
                    Problem(offer.by, f"patches StorageClass {name}, which no one provides")
                )
                continue
            spec, owner = classes[name]
            classes[name] = (StorageClassSpec(spec.name, spec.provisioner, default), owner)
    defaults = sorted(name for name, (spec, _) in classes.items() if spec.default)
    if len(defaults) > 1:
        problems.append(
            Problem(
                "cluster",
                f"{len(defaults)} default StorageClasses ({', '.join(defaults)}): a claim without "
                "a class gets whichever was created last",
            )
        )
    for need in inventory.needs:
        cap = need.capability
        where = f" ({need.where})" if need.where else ""
        if cap.kind == "storage-class":
            wanted = cap.name or (defaults[-1] if defaults else None)
            if wanted is None or wanted not in classes:
                problems.append(Problem(need.by, f"relies on {cap}{where}, which nothing provides"))
                continue
            driver = provisioner(classes[wanted][0].provisioner)
            if driver not in capabilities:
                problems.append(
                    Problem(
                        need.by,
                        f"relies on StorageClass {wanted}{where}, whose {driver} nothing installs",
                    )
                )
        elif cap not in capabilities:
            problems.append(Problem(need.by, f"relies on {cap}{where}, which nothing provides"))
    return sorted(set(problems), key=lambda p: (p.by, p.message))


def objects_inventory(objects: Iterable[Mapping[str, Any]]) -> Inventory:
    inventory = Inventory()
    for obj in objects:
        inventory.needs += object_needs(obj)
        offer = object_offer(obj)
        if offer is not None:
            inventory.offers.append(offer)
    return inventory


def provided(inventory: Inventory) -> frozenset[Capability]:
    """Every capability offered (StorageClasses as `storage-class <name>`)."""
    found: set[Capability] = set()
    for offer in inventory.offers:
        found |= offer.capabilities
        found |= {storage_class(spec.name) for spec in offer.storage_classes}
    return frozenset(found)


def needed(inventory: Inventory) -> frozenset[Capability]:
    return frozenset(need.capability for need in inventory.needs)
