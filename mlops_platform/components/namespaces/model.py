"""Pure model: which namespaces the platform's workloads need, and their labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

PodSecurityLevel = Literal["privileged", "baseline", "restricted"]


def namespace_labels(level: PodSecurityLevel = "restricted") -> dict[str, str]:
    """Pod Security Admission enforces `level`; audit and warn stay at `restricted` so that any
    relaxation is still reported."""
    return {
        "app.kubernetes.io/managed-by": "mlops-platform",
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }


def distinct(names: Iterable[str]) -> list[str]:
    """Each namespace once, in a stable order (resource names must not depend on dict order)."""
    return sorted(set(names))
