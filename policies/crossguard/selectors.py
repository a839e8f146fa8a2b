"""Kubernetes objects as policies see them: namespaces, pod labels and label selectors."""

from __future__ import annotations

from typing import Any

from crossguard.props import as_list, get

WORKLOAD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
}


def namespace(props: Any) -> str:
    """The object's namespace; the provider applies `default` when none is given."""
    value = get(props, "metadata", "namespace")
    return value if isinstance(value, str) and value else "default"


def name(props: Any) -> str | None:
    value = get(props, "metadata", "name")
    return value if isinstance(value, str) else None


def pod_labels(resource_type: str, props: Any) -> dict[str, Any]:
    """The labels of a workload's pods (its template's labels)."""
    path = WORKLOAD_TEMPLATES.get(resource_type)
    labels = get(props, *path, "metadata", "labels") if path else None
    return {key: labels[key] for key in labels} if labels is not None else {}


def selects(selector: Any, labels: dict[str, Any]) -> bool:
    """Whether a LabelSelector matches `labels` (an empty selector matches every pod)."""
    match_labels = get(selector, "matchLabels")
    if match_labels is not None and any(labels.get(k) != match_labels[k] for k in match_labels):
        return False
    for expression in as_list(get(selector, "matchExpressions")):
        key = get(expression, "key")
        operator = get(expression, "operator")
        values = as_list(get(expression, "values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
