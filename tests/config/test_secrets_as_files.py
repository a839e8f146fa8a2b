"""Every shipped stack: no workload the platform creates gets a secret through its environment
(checkov CKV_K8S_35 is enforced with no exception, policies/checkov/checks.yaml). Every pod's
secrets are Secret volumes, read-only, readable by the pod's own user through its fsGroup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_platform.components import kube
from mlops_platform.plan import build_plan, kubernetes_objects, stack_file_path

STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml")
    for p in Path(__file__).resolve().parents[2].joinpath("stacks").glob("Pulumi.*.yaml")
)


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    pod = (spec.get("template") or {}).get("spec")
    return [pod] if pod else []


@pytest.mark.parametrize("stack", STACKS)
def test_no_workload_of_the_stack_reads_a_secret_from_its_environment(stack: str) -> None:
    plan = build_plan(stack, stack_file_path(stack))
    pods = 0
    for obj in kubernetes_objects(plan):
        for pod in _pod_specs(obj):
            pods += 1
            where = f"{stack}: {obj['kind']} {obj['metadata'].get('namespace')}/"
            where += str(obj["metadata"].get("name"))
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                assert kube.secret_env_vars(container) == [], f"{where} {container['name']}"
            secret_volumes = [v for v in pod.get("volumes", []) if "secret" in v]
            if secret_volumes:
                # Root-owned files: the container's user reads them through the fsGroup.
                assert pod["securityContext"].get("fsGroup") is not None, where
                for volume in secret_volumes:
                    mode = volume["secret"].get("defaultMode")
                    assert mode in (0o400, 0o440), (where, volume["name"], mode)
                mounted = {
                    m["name"]: m
                    for c in pod["containers"]
                    for m in c.get("volumeMounts", [])
                    if m["name"] in {v["name"] for v in secret_volumes}
                }
                assert all(m.get("readOnly") for m in mounted.values()), where
    assert pods > 0
