"""Kubernetes policies: pinned Helm charts from TLS repositories, container images, privileges,
host isolation, security contexts and resources of every workload.

The workload checks see the objects a program declares and those inside its Helm charts and
kustomize trees (a `kubernetes:helm.sh/v4:Chart` registers each as its own resource, named
`<release>:<namespace>/<name>`; `mlops plan --policies` renders them offline). What a third-party
chart needs by design is declared per object in the stack's policy config with its reason
(`crossguard.exceptions`).
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

from crossguard.exceptions import EXCEPTIONS_SETTING, checked
from crossguard.props import Settings, as_list, get, show, subject

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


EXCEPTIONS = Settings(dict(EXCEPTIONS_SETTING))


def pod_spec(resource_type: str, props: Any) -> Any:
    path = POD_SPEC_PATHS.get(resource_type)
    return get(props, *path) if path else None


def validate_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report)
    for path, container in containers(args.resource_type, args.props):
        if get(container, "securityContext", "privileged") is True:
            check("privileged", f"{who}: {path}.securityContext.privileged must not be true")


no_privileged_containers = ResourceValidationPolicy(
    name="k8s-no-privileged-container",
    description="Containers of every workload kind do not set securityContext.privileged "
    "(check `privileged`).",
    validate=validate_privileged,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=EXCEPTIONS.schema,
)


def validate_host_isolation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report)
    where = ".".join(POD_SPEC_PATHS[args.resource_type])
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if get(spec, field) is True:
            check(field, f"{who}: {where}.{field} must not be true")
    for index, volume in enumerate(as_list(get(spec, "volumes"))):
        if get(volume, "hostPath") is not None:
            check(
                "hostPath",
                f"{who}: {where}.volumes[{index}] ({show(get(volume, 'name'))}) must not mount "
                f"a hostPath ({show(get(volume, 'hostPath', 'path'))})",
            )
    for path, container in containers(args.resource_type, args.props):
        for index, port in enumerate(as_list(get(container, "ports"))):
            if get(port, "hostPort") not in (None, 0):
                check(
                    "hostPort",
                    f"{who}: {path}.ports[{index}].hostPort {show(get(port, 'hostPort'))} "
                    "binds a node port",
                )


host_isolation = ResourceValidationPolicy(
    name="k8s-host-isolation",
    description="Pods share no host namespace and reach no host resource: no hostNetwork, "
    "hostPID, hostIPC, hostPath volume or hostPort (checks by those names).",
    validate=validate_host_isolation,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=EXCEPTIONS.schema,
)

# What Pod Security `restricted` lets a container add back after dropping ALL.
ALLOWED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _effective(container: Any, pod: Any, field: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    value = get(container, "securityContext", field)
    return value if value is not None else get(pod, "securityContext", field)


def validate_security_context(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = pod_spec(args.resource_type, args.props)
    if pod is None:
        return
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report)
    for path, container in containers(args.resource_type, args.props):
        context = f"{who}: {path}.securityContext"
        if get(container, "securityContext", "allowPrivilegeEscalation") is not False:
            check("allowPrivilegeEscalation", f"{context}.allowPrivilegeEscalation must be false")
        user = _effective(container, pod, "runAsUser")
        if _effective(container, pod, "runAsNonRoot") is not True and not (
            isinstance(user, int) and user > 0
        ):
            check(
                "runAsNonRoot",
                f"{context}.runAsNonRoot must be true (or runAsUser above 0, here or on the pod)",
            )
        if user == 0:
            check("runAsNonRoot", f"{context}.runAsUser must not be 0 (root)")
        drop = as_list(get(container, "securityContext", "capabilities", "drop"))
        if "ALL" not in drop:
            check("capabilities", f"{context}.capabilities.drop must contain ALL")
        added = [
            c
            for c in as_list(get(container, "securityContext", "capabilities", "add"))
            if c not in ALLOWED_ADDED_CAPABILITIES
        ]
        if added:
            check("capabilities", f"{context}.capabilities.add must not add {show(added)}")
        seccomp = _effective(container, pod, "seccompProfile")
        if get(seccomp, "type") not in SECCOMP_TYPES:
            check(
                "seccompProfile",
                f"{context}.seccompProfile.type (or the pod's) must be RuntimeDefault or "
                f"Localhost, got {show(get(seccomp, 'type'))}",
            )


container_security_context = ResourceValidationPolicy(
    name="k8s-container-security-context",
    description="Containers run as Pod Security `restricted` requires: allowPrivilegeEscalation "
    "false, not as root, capabilities drop ALL (only NET_BIND_SERVICE added back), a "
    "RuntimeDefault or Localhost seccomp profile (checks allowPrivilegeEscalation, "
    "runAsNonRoot, capabilities, seccompProfile).",
    validate=validate_security_context,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=EXCEPTIONS.schema,
)

# (check name, field path under `resources`)
RESOURCE_FIELDS = (
    ("cpuRequest", ("requests", "cpu")),
    ("memoryRequest", ("requests", "memory")),
    ("memoryLimit", ("limits", "memory")),
)


def validate_resources(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report)
    for path, container in containers(args.resource_type, args.props):
        if ".ephemeralContainers" in path:
            continue  # debugging containers take no resources field
        for name, field in RESOURCE_FIELDS:
            if get(container, "resources", *field) in (None, ""):
                check(name, f"{who}: {path}.resources.{'.'.join(field)} must be set")


container_resources = ResourceValidationPolicy(
    name="k8s-container-resources",
    description="Containers request CPU and memory (the scheduler places them, the autoscaler "
    "sizes nodes) and limit memory (a leak kills the container, not the node) (checks "
    "cpuRequest, memoryRequest, memoryLimit).",
    validate=validate_resources,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=EXCEPTIONS.schema,
)

POLICIES = [
    helm_release_pinned,
    no_latest_images,
    no_privileged_containers,
    host_isolation,
    container_security_context,
    container_resources,
]
