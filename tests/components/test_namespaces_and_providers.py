"""WorkloadNamespaces and the explicit cloud providers the program hands to components."""

import json

import pulumi_kubernetes as k8s
import pytest

from mlops_platform import mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.namespaces import (
    WorkloadNamespaces,
    WorkloadNamespacesArgs,
    namespace_labels,
)
from mlops_platform.components.providers import cloud_provider


def test_namespace_labels_enforce_the_level_and_always_audit_restricted():
    assert namespace_labels("baseline") == {
        "app.kubernetes.io/managed-by": "mlops-platform",
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }


def test_one_namespace_per_distinct_name_parented_to_the_component():
    def program():
        provider = k8s.Provider("k8s", context="kind-mlops")
        ns = WorkloadNamespaces(
            "core",
            WorkloadNamespacesArgs(names=["serving", "mlflow", "serving"], kubernetes=provider),
        )
        assert sorted(ns.by_name) == ["mlflow", "serving"]

    monitor = mocks.run(program)
    component = monitor.named("core")
    assert component.type == "mlops:platform:WorkloadNamespaces"
    namespaces = monitor.of_type("kubernetes:core/v1:Namespace")
    assert sorted(r.name for r in namespaces) == ["core-mlflow", "core-serving"]
    for r in namespaces:
        assert r.parent == component.urn
        assert r.inputs["metadata"]["labels"] == namespace_labels("restricted")
        assert r.inputs["metadata"]["name"] == r.name.removeprefix("core-")
        assert r.provider and "k8s" in r.provider


@pytest.mark.parametrize(
    ("cloud", "provider_type", "expected"),
    [
        (
            AwsCloud(type="aws", region="eu-west-1", tags={"env": "dev"}),
            "pulumi:providers:aws",
            {
                "region": "eu-west-1",
                "defaultTags": {"tags": {"managed-by": "mlops-platform", "env": "dev"}},
            },
        ),
        (
            GcpCloud(type="gcp", project="p-1", region="europe-west4", labels={"env": "prod"}),
            "pulumi:providers:gcp",
            {
                "project": "p-1",
                "region": "europe-west4",
                "defaultLabels": {"managed-by": "mlops-platform", "env": "prod"},
            },
        ),
    ],
)
def test_cloud_provider_carries_region_and_tags(cloud, provider_type, expected):
    monitor = mocks.run(lambda: cloud_provider("mlops", cloud))
    (provider,) = monitor.of_type(provider_type)
    assert provider.name == "mlops"
    for key, value in expected.items():
        actual = provider.inputs[key]
        # providers receive nested settings JSON-encoded, as the engine passes them
        assert (json.loads(actual) if isinstance(value, dict) else actual) == value, key


def test_local_cloud_has_no_cloud_provider():
    created = []
    monitor = mocks.run(lambda: created.append(cloud_provider("mlops", LocalCloud(type="local"))))
    assert created == [None]
    assert monitor.recorded == []
