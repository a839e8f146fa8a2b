"""Supply chain: where images come from and how they are pinned, the MLflow server's version,
the Kubernetes version window and Binary Authorization on GKE.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from crossguard.exceptions import EXCEPTIONS_SETTING, checked
from crossguard.kubernetes import containers
from crossguard.props import Settings, as_list, get, show, subject

EKS_CLUSTER = "aws:eks/cluster:Cluster"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def registry(image: str) -> str:
    """The registry host of an image reference; Docker Hub when the first part is no host."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def repository(image: str) -> str:
    """The reference without tag or digest, with its registry (`ghcr.io/mlflow/mlflow`)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    name = f"{head}/{last}" if head else last
    return (
        name
        if registry(image) != "docker.io" or name.startswith("docker.io/")
        else f"docker.io/{name}"
    )


def _images(args: ResourceValidationArgs) -> list[tuple[str, str]]:
    return [
        (f"{path}.image", image)
        for path, container in containers(args.resource_type, args.props)
        if isinstance(image := get(container, "image"), str)
    ]


REGISTRY_SETTINGS = Settings(
    {
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "ghcr.io",
                "quay.io",
                "registry.k8s.io",
                "public.ecr.aws",
                "*.dkr.ecr.*.amazonaws.com",
                "*-docker.pkg.dev",
                "gcr.io",
                # The vendors' own release registries of the mesh and the GPU device plugin.
                "registry.istio.io",
                "nvcr.io",
            ],
            "description": "Registry hosts (globs) images may come from (Docker Hub, with its "
            "mutable official tags and pull limits, only where a stack allows it).",
        },
        **EXCEPTIONS_SETTING,
    }
)


def validate_registries(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    allowed = as_list(REGISTRY_SETTINGS.value(config, "allowedRegistries"))
    check = checked(config, args.name, report, tag=False)
    for field, image in _images(args):
        host = registry(image)
        if not any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed):
            check(
                host,
                f"{subject(args.resource_type, args.name)}: {field} {show(image)} comes from "
                f"{host}, which is not in allowedRegistries",
            )


images_allowed_registries = ResourceValidationPolicy(
    name="images-allowed-registries",
    description="Container images come from an allow-listed registry (allowedRegistries).",
    validate=validate_registries,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=REGISTRY_SETTINGS.schema,
)

DIGEST_SETTINGS = Settings(
    {
        "required": {
            "type": "boolean",
            "default": False,
            "description": "Require every image to be pinned by digest (@sha256:...).",
        }
    }
)


def validate_digests(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not DIGEST_SETTINGS.value(args.get_config(), "required"):
        return
    for field, image in _images(args):
        if not DIGEST.search(image):
            report(
                f"{subject(args.resource_type, args.name)}: {field} {show(image)} must be "
                "pinned by digest (@sha256:...)"
            )


images_pinned_by_digest = ResourceValidationPolicy(
    name="images-pinned-by-digest",
    description="Where required, container images are pinned by digest, so a re-pushed tag "
    "cannot change what runs.",
    validate=validate_digests,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=DIGEST_SETTINGS.schema,
)

MLFLOW_SETTINGS = Settings(
    {
        "repositories": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["ghcr.io/mlflow/mlflow", "docker.io/bitnami/mlflow"],
            "description": "Image repositories of the MLflow tracking server.",
        },
        "minimumVersion": {
            "type": "string",
            "default": "3.1.0",
            # 2.x releases up to 2.22.4 carry published advisories (path traversal and RCE in
            # the tracking server, e.g. GHSA-5cvj-7rg6-jggj); raise as new ones are published.
            "description": "Lowest MLflow version allowed (known advisories below it).",
        },
    }
)


def _version(tag: str) -> tuple[int, ...] | None:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", tag)
    return tuple(int(part or 0) for part in match.groups()) if match else None


def validate_mlflow_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    repositories = set(as_list(MLFLOW_SETTINGS.value(config, "repositories")))
    minimum_text = MLFLOW_SETTINGS.value(config, "minimumVersion")
    minimum = _version(minimum_text)
    for field, image in _images(args):
        if repository(image) not in repositories:
            continue
        tag = image.split("@", 1)[0].rpartition("/")[2].partition(":")[2]
        version = _version(tag)
        if version is None or minimum is None or version < minimum:
            report(
                f"{subject(args.resource_type, args.name)}: {field} {show(image)} must be MLflow "
                f"{minimum_text} or later (a version tag), got {show(tag or None)}"
            )


mlflow_minimum_version = ResourceValidationPolicy(
    name="mlflow-minimum-version",
    description="The MLflow tracking server image is a version tag at or above minimumVersion "
    "(known advisories below it).",
    validate=validate_mlflow_version,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=MLFLOW_SETTINGS.schema,
)

K8S_VERSION_SETTINGS = Settings(
    {
        "minimumVersion": {
            "type": "string",
            "default": "1.33",
            "description": "Oldest Kubernetes minor in standard support on EKS and GKE.",
        },
        "maximumVersion": {
            "type": "string",
            "default": "1.35",
            "description": "Newest Kubernetes minor the platform is tested with.",
        },
    }
)


def _minor(version: Any) -> tuple[int, int] | None:
    match = re.match(r"^v?(\d+)\.(\d+)", version) if isinstance(version, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def validate_kubernetes_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    fields = {
        EKS_CLUSTER: ("version",),
        GKE_CLUSTER: ("minMasterVersion", "nodeVersion"),
        GKE_NODE_POOL: ("version",),
    }.get(args.resource_type, ())
    config = args.get_config()
    low_text = K8S_VERSION_SETTINGS.value(config, "minimumVersion")
    high_text = K8S_VERSION_SETTINGS.value(config, "maximumVersion")
    low, high = _minor(low_text), _minor(high_text)
    who = subject(args.resource_type, args.name)
    for field in fields:
        value = get(args.props, field)
        if value is None and args.resource_type != EKS_CLUSTER:
            continue  # GKE follows the release channel, a pool the cluster's version
        minor = _minor(value)
        if minor is None or not (low <= minor <= high):
            report(
                f"{who}: {field} must be a Kubernetes version from {low_text} to {high_text}, "
                f"got {show(value)}"
            )
    if args.resource_type == EKS_CLUSTER:
        # EKS moves a cluster past standard support into paid extended support unless told not to.
        support = get(args.props, "upgradePolicy", "supportType")
        if support != "STANDARD":
            report(f'{who}: upgradePolicy.supportType must be "STANDARD", got {show(support)}')


kubernetes_version_window = ResourceValidationPolicy(
    name="kubernetes-version-window",
    description="EKS and GKE run a Kubernetes minor within the supported window "
    "(minimumVersion..maximumVersion); EKS does not slide into extended support.",
    validate=validate_kubernetes_version,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=K8S_VERSION_SETTINGS.schema,
)

BINAUTHZ_SETTINGS = Settings(
    {
        "required": {
            "type": "boolean",
            "default": True,
            "description": "Require Binary Authorization enforcement on GKE.",
        }
    }
)
ENFORCING_MODES = (
    "PROJECT_SINGLETON_POLICY_ENFORCE",
    "POLICY_BINDINGS_AND_PROJECT_SINGLETON_POLICY_ENFORCE",
)


def validate_binary_authorization(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GKE_CLUSTER:
        return
    if not BINAUTHZ_SETTINGS.value(args.get_config(), "required"):
        return
    mode = get(args.props, "binaryAuthorization", "evaluationMode")
    if mode not in ENFORCING_MODES:
        report(
            f"{subject(args.resource_type, args.name)}: binaryAuthorization.evaluationMode must "
            f"be {' or '.join(ENFORCING_MODES)}, got {show(mode)}"
        )


gke_binary_authorization = ResourceValidationPolicy(
    name="gke-binary-authorization",
    description="Where required, GKE clusters enforce the project's Binary Authorization policy.",
    validate=validate_binary_authorization,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=BINAUTHZ_SETTINGS.schema,
)

POLICIES = [
    images_allowed_registries,
    images_pinned_by_digest,
    mlflow_minimum_version,
    kubernetes_version_window,
    gke_binary_authorization,
]
