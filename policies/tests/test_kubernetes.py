"""Helm releases (plans) and workload containers."""

from __future__ import annotations

import pytest
from crossguard import kubernetes
from harness import DELETE, edited, entry, load_plan, resource_args, violations

PROD = load_plan("prod")
LOCAL = load_plan("local")
RELEASE = entry(PROD, "mlops-autoscaler", "kubernetes:helm.sh/v3:Release")


def check(resource, path=None, value=None, plan=PROD) -> list[str]:
    inputs = resource["inputs"] if path is None else edited(resource["inputs"], path, value)
    return violations(kubernetes.helm_release_pinned, resource_args(plan, resource, inputs))


def test_planned_releases_pass():
    for plan in (PROD, LOCAL):
        releases = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"]
        assert releases
        for release in releases:
            assert check(release, plan=plan) == []


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        ("~9.59.0", '"~9.59.0"'),
        (">=9.0.0", '">=9.0.0"'),
        ("9.59", '"9.59"'),
        ("9.x", '"9.x"'),
        ("", '""'),
        (DELETE, "unset"),
    ],
)
def test_release_version_must_be_exact(version, shown):
    assert check(RELEASE, "version", version) == [
        "Release 'mlops-autoscaler': version must be an exact chart version like 1.2.3, "
        f"got {shown}"
    ]


@pytest.mark.parametrize("version", ["9.59.0", "v1.2.3", "1.0.0-rc.1", "2.1.0+build.7"])
def test_exact_versions_pass(version):
    assert check(RELEASE, "version", version) == []


def test_plain_http_repository():
    assert check(RELEASE, "repositoryOpts.repo", "http://kubernetes.github.io/autoscaler") == [
        "Release 'mlops-autoscaler': repositoryOpts.repo must be an https:// or oci:// location, "
        'got "http://kubernetes.github.io/autoscaler"'
    ]


def test_oci_chart_without_repository_passes():
    inputs = edited(RELEASE["inputs"], "repositoryOpts", DELETE)
    inputs = edited(inputs, "chart", "oci://registry.k8s.io/charts/cluster-autoscaler")
    assert violations(kubernetes.helm_release_pinned, resource_args(PROD, RELEASE, inputs)) == []


def test_chart_without_any_repository():
    assert check(RELEASE, "repositoryOpts", DELETE) == [
        "Release 'mlops-autoscaler': chart must be an https:// or oci:// location, "
        'got "cluster-autoscaler"'
    ]


def test_local_chart_is_not_checked():
    inputs = edited(RELEASE["inputs"], "repositoryOpts", DELETE)
    inputs = edited(inputs, "chart", "./charts/autoscaler")
    inputs = edited(inputs, "version", DELETE)
    assert violations(kubernetes.helm_release_pinned, resource_args(PROD, RELEASE, inputs)) == []


# A workload written as the Kubernetes provider would receive it (the platform's own and the
# charts' rendered ones are tested in test_kubernetes_rendered.py).
DEPLOYMENT = {
    "type": "kubernetes:apps/v1:Deployment",
    "name": "model-server",
    "parent": None,
    "protect": False,
    "dependsOn": [],
    "inputs": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "model-server", "namespace": "serving"},
        "spec": {
            "selector": {"matchLabels": {"app": "model-server"}},
            "template": {
                "metadata": {"labels": {"app": "model-server"}},
                "spec": {
                    "initContainers": [{"name": "fetch", "image": "busybox:1.37.0"}],
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/acme/model-server:0.4.1",
                            "securityContext": {"privileged": False},
                        }
                    ],
                },
            },
        },
    },
}
CONTAINER = "spec.template.spec.containers[0]"


def check_workload(policy, path=None, value=None, resource=DEPLOYMENT) -> list[str]:
    inputs = resource["inputs"] if path is None else edited(resource["inputs"], path, value)
    return violations(policy, resource_args(PROD, resource, inputs))


def test_pinned_unprivileged_workload_passes():
    assert check_workload(kubernetes.no_latest_images) == []
    assert check_workload(kubernetes.no_privileged_containers) == []


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/acme/model-server:latest", "ghcr.io/acme/model-server", "localhost:5000/server"],
)
def test_floating_image(image):
    path = "spec.template.spec.containers.0.image"
    assert check_workload(kubernetes.no_latest_images, path, image) == [
        f"Deployment 'model-server': {CONTAINER}.image \"{image}\" must be pinned to a tag other "
        "than latest"
    ]


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/acme/model-server@sha256:" + "a" * 64, "localhost:5000/server:1.0", "busybox:1.37"],
)
def test_pinned_images(image):
    assert kubernetes.floating_tag(image) is False


def test_init_container_image_is_checked():
    path = "spec.template.spec.initContainers.0.image"
    assert check_workload(kubernetes.no_latest_images, path, "busybox") == [
        "Deployment 'model-server': spec.template.spec.initContainers[0].image \"busybox\" must "
        "be pinned to a tag other than latest"
    ]


def test_privileged_container():
    path = "spec.template.spec.containers.0.securityContext.privileged"
    assert check_workload(kubernetes.no_privileged_containers, path, True) == [
        f"Deployment 'model-server': {CONTAINER}.securityContext.privileged must not be true "
        "[privileged]"
    ]


def test_pod_and_cronjob_pod_specs():
    pod = {
        **DEPLOYMENT,
        "type": "kubernetes:core/v1:Pod",
        "name": "debug",
        "inputs": {"spec": {"containers": [{"name": "shell", "image": "ubuntu"}]}},
    }
    assert check_workload(kubernetes.no_latest_images, resource=pod) == [
        "Pod 'debug': spec.containers[0].image \"ubuntu\" must be pinned to a tag other than latest"
    ]
    cron = {
        **DEPLOYMENT,
        "type": "kubernetes:batch/v1:CronJob",
        "name": "retrain",
        "inputs": {
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "train",
                                        "image": "trainer:2.0",
                                        "securityContext": {"privileged": True},
                                    }
                                ]
                            }
                        }
                    }
                }
            }
        },
    }
    assert check_workload(kubernetes.no_privileged_containers, resource=cron) == [
        "CronJob 'retrain': spec.jobTemplate.spec.template.spec.containers[0]"
        ".securityContext.privileged must not be true [privileged]"
    ]
