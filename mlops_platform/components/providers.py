"""Explicit cloud providers built from the stack's `cloud` config.

An explicit provider (rather than the default one reading `aws:region` / `gcp:project`) keeps
the region and project in one validated place and applies the stack's tags/labels to every
resource. Components receive it through `opts.providers` and hand it down via `parent=self`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud, LocalCloud

MANAGED_BY = {"managed-by": "mlops-platform"}


def _aws(name: str, cloud: AwsCloud) -> pulumi.ProviderResource:
    import pulumi_aws as aws

    return aws.Provider(
        name,
        region=cloud.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags={**MANAGED_BY, **cloud.tags}),
    )


def _gcp(name: str, cloud: GcpCloud) -> pulumi.ProviderResource:
    import pulumi_gcp as gcp

    return gcp.Provider(
        name,
        project=cloud.project,
        region=cloud.region,
        default_labels={**MANAGED_BY, **cloud.labels},
    )


def _local(name: str, cloud: LocalCloud) -> None:
    return None  # nothing outside the cluster; the cluster component builds the k8s provider


# Each factory takes the Cloud of its own key (Any: a Callable type cannot say so).
_FACTORIES: dict[str, Callable[[str, Any], pulumi.ProviderResource | None]] = {
    "aws": _aws,
    "gcp": _gcp,
    "local": _local,
}


def cloud_provider(name: str, cloud: Cloud) -> pulumi.ProviderResource | None:
    """The provider every cloud resource of the stack is created with (None locally)."""
    return _FACTORIES[cloud.type](name, cloud)
