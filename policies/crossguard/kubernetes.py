"""Kubernetes policies: pinned Helm charts from TLS repositories, container images and privileges.

Helm charts are rendered inside the Kubernetes provider, so the pack sees a release's inputs
(chart, version, repository, values) but not the objects the chart creates; the container checks
cover workloads a program declares directly.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from crossguard.props import as_list, get, show, subject

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
# SemVer 2.0.0 (an optional leading v, as some charts tag): no ranges, wildcards or partials.
EXACT_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
TLS_SCHEMES = ("https://", "oci://")
LOCAL_CHART_PREFIXES = ("./", "../", "/")

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def validate_helm_release(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    who = subject(args.resource_type, args.name)
    chart = get(args.props, "chart")
    if isinstance(chart, str) and chart.startswith(LOCAL_CHART_PREFIXES):
        return  # a chart in this repository is reviewed with the code; there is no remote
    version = get(args.props, "version")
    if not isinstance(version, str) or not EXACT_VERSION.match(version):
        report(f"{who}: version must be an exact chart version like 1.2.3, got {show(version)}")
    repo = get(args.props, "repositoryOpts", "repo")
    source = repo if repo else chart
    if not isinstance(source, str) or not source.startswith(TLS_SCHEMES):
        field = "repositoryOpts.repo" if repo else "chart"
        report(f"{who}: {field} must be an https:// or oci:// location, got {show(source)}")


helm_release_pinned = ResourceValidationPolicy(
    name="helm-release-pinned",
    description="Helm releases and charts are pinned to an exact SemVer version (no ranges, "
    "partials or empty) and come from an https:// or oci:// repository; charts from a local "
    "path are skipped.",
    validate=validate_helm_release,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def containers(resource_type: str, props: Any) -> list[tuple[str, Any]]:
    """(field path, container) for every container of a workload the pack can see."""
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return []
    spec = get(props, *path)
    found = []
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(as_list(get(spec, list_name))):
            found.append((".".join([*path, list_name]) + f"[{index}]", container))
    return found


def floating_tag(image: str) -> bool:
    """True when an image reference is neither digest-pinned nor tagged other than latest."""
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[-1] == "latest"


def validate_image_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    for path, container in containers(args.resource_type, args.props):
        image = get(container, "image")
        if isinstance(image, str) and floating_tag(image):
            report(f"{who}: {path}.image {show(image)} must be pinned to a tag other than latest")


no_latest_images = ResourceValidationPolicy(
    name="k8s-no-latest-image",
    description="Containers of Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs "
    "and CronJobs use an image tag other than latest, or a digest.",
    validate=validate_image_tags,
    enforcement_level=EnforcementLevel.ADVISORY,
)


def validate_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    for path, container in containers(args.resource_type, args.props):
        if get(container, "securityContext", "privileged") is True:
            report(f"{who}: {path}.securityContext.privileged must not be true")


no_privileged_containers = ResourceValidationPolicy(
    name="k8s-no-privileged-container",
    description="Containers of every workload kind do not set securityContext.privileged.",
    validate=validate_privileged,
    enforcement_level=EnforcementLevel.ADVISORY,
)

POLICIES = [helm_release_pinned, no_latest_images, no_privileged_containers]
