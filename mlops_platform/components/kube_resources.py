"""Resource-layer helpers shared by components: wiring rendered Kubernetes objects.

Pure renderings live in each component's model and in `mlops_platform/components/kube.py`; this module only
turns rendered dicts into `pulumi_kubernetes` resources where several components do it alike.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def in_cluster_store(
    name: str,
    *,
    statefulset: dict[str, Any],
    service: dict[str, Any],
    network_policy: dict[str, Any],
    opts: pulumi.ResourceOptions,
    credentials: pulumi.Resource,
    protect: bool,
) -> k8s.apps.v1.StatefulSet:
    """A single-replica database in the cluster (MLflow's Postgres, Feast's Redis): its Service,
    the NetworkPolicy admitting only its clients, and the StatefulSet, which waits for its
    credentials Secret and is protected and retained with the stack's stateful resources."""
    k8s.core.v1.Service(name, metadata=service["metadata"], spec=service["spec"], opts=opts)
    k8s.networking.v1.NetworkPolicy(
        name, metadata=network_policy["metadata"], spec=network_policy["spec"], opts=opts
    )
    return k8s.apps.v1.StatefulSet(
        name,
        metadata=statefulset["metadata"],
        spec=statefulset["spec"],
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                depends_on=[credentials], protect=protect, retain_on_delete=protect
            ),
        ),
    )


def depends_on_of(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """A component's `opts.depends_on` as a list: children do not inherit it, so components
    pass it on to the Kubernetes objects that must wait too (typically the Namespace)."""
    if opts is None or opts.depends_on is None:
        return []
    if isinstance(opts.depends_on, pulumi.Resource):
        return [opts.depends_on]
    return list(opts.depends_on)  # type: ignore[arg-type]
