"""The capability check over planned Pulumi resources (one stack's plan or several layers')."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlops_platform.components.capabilities import catalog
from mlops_platform.components.capabilities.model import (
    Inventory,
    Need,
    Offer,
    Problem,
    check,
    object_needs,
    object_offer,
    storage_class_spec,
)

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
KUSTOMIZE_TYPES = ("kubernetes:kustomize/v2:Directory", "kubernetes:kustomize:Directory")
NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")


def baseline_offer(baseline: catalog.ClusterBaseline, by: str) -> Offer:
    return Offer(
        by=by,
        capabilities=baseline.capabilities,
        storage_classes=baseline.storage_classes,
        existing=True,
    )


def _chart_name(inputs: Mapping[str, Any]) -> str:
    # "oci://quay.io/strimzi-helm/strimzi-kafka-operator" or "repo/chart" -> the chart's name
    return str(inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def resource_inventory(resource: Mapping[str, Any]) -> Inventory:
    """Offers and needs of one planned resource (`type`, `name`, `inputs`)."""
    typ, name = resource["type"], resource["name"]
    inputs: Mapping[str, Any] = resource.get("inputs") or {}
    found = Inventory()
    if typ in HELM_TYPES:
        chart = _chart_name(inputs)
        by = f"Helm release {name} ({chart})"
        declaration = catalog.CHARTS.get(chart)
        if declaration is None:
            found.problems.append(
                Problem(by, f"chart {chart} has no capability declaration in the catalog")
            )
            return found
        values = inputs.get("values") or {}
        found.offers.append(
            Offer(by, capabilities=declaration.provides(values, bool(inputs.get("skipCrds"))))
        )
        found.needs += declaration.needs(values, by)
    elif typ in KUSTOMIZE_TYPES:
        directory = str(inputs.get("directory", ""))
        by = f"kustomize {name}"
        kustomization = catalog.kustomize_declaration(directory)
        if kustomization is None:
            found.problems.append(
                Problem(by, f"{directory} has no capability declaration in the catalog")
            )
            return found
        found.offers.append(Offer(by, capabilities=kustomization.provides))
        found.needs += [Need(cap, by, where) for cap, where in kustomization.needs]
    elif typ == "aws:eks/cluster:Cluster":
        baseline = catalog.eks_baseline(str(inputs.get("version")))
        found.offers.append(baseline_offer(baseline, f"EKS cluster {name}"))
    elif typ == "aws:eks/addon:Addon":
        addon = inputs.get("addonName", "")
        offered = catalog.EKS_ADDON_OFFERS.get(addon, frozenset())
        found.offers.append(Offer(f"EKS add-on {name} ({addon})", capabilities=offered))
    elif typ == "gcp:container/cluster:Cluster":
        addons = inputs.get("addonsConfig") or {}
        pd = (addons.get("gcePersistentDiskCsiDriverConfig") or {}).get("enabled", True)
        found.offers.append(baseline_offer(catalog.gke_baseline(bool(pd)), f"GKE cluster {name}"))
    elif typ.startswith("kubernetes:") and not typ.startswith(NOT_OBJECTS):
        obj = dict(inputs)
        if "kind" not in obj:
            return found
        if typ.endswith("Patch"):
            if obj["kind"] == "StorageClass":
                spec = storage_class_spec(obj, name)
                found.offers.append(
                    Offer(
                        f"StorageClass patch {name}", default_changes=((spec.name, spec.default),)
                    )
                )
            return found
        found.needs += object_needs(obj, name)
        offer = object_offer(obj, name)
        if offer is not None:
            found.offers.append(offer)
    return found


def plan_inventory(
    resources: Iterable[Mapping[str, Any]], existing: catalog.ClusterBaseline | None = None
) -> Inventory:
    """All resources of one or several plans; `existing` is a cluster the plans do not create
    (a local cluster, or one created outside the platform)."""
    inventory = Inventory()
    if existing is not None:
        inventory.offers.append(baseline_offer(existing, "existing cluster"))
    for resource in resources:
        inventory.add(resource_inventory(resource))
    return inventory


def unmet(
    resources: Iterable[Mapping[str, Any]], existing: catalog.ClusterBaseline | None = None
) -> list[Problem]:
    """Every need of the planned resources that nothing in them (or the existing cluster)
    provides; empty when the platform is complete."""
    return check(plan_inventory(resources, existing))
