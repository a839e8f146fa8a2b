"""`mlops plan --diff` (pure) and `mlops plan --policies` (the real pack, in its own env)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_platform import governance
from mlops_platform.plan import build_plan, project_root, stack_file_path

ROOT = project_root()


def _plan(resources: list[dict]) -> dict:
    return {"stack": "t", "resources": resources}


def _r(type_: str, name: str, protect: bool = False, **inputs) -> dict:
    return {"type": type_, "name": name, "protect": protect, "inputs": inputs}


BUCKET = "aws:s3/bucket:Bucket"
DB = "aws:rds/instance:Instance"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # nothing changed
        (
            [_r(BUCKET, "b", True, bucket="x")],
            [_r(BUCKET, "b", True, bucket="x")],
            ([], [], [], []),
        ),
        # an in-place update of a protected resource is not risky
        (
            [_r(DB, "db", True, identifier="mlflow", backupRetentionPeriod=7)],
            [_r(DB, "db", True, identifier="mlflow", backupRetentionPeriod=14)],
            ([], ["backupRetentionPeriod"], [], []),
        ),
        # a replacement-forcing input of a protected resource is
        (
            [_r(DB, "db", True, identifier="mlflow", storageEncrypted=True)],
            [_r(DB, "db", True, identifier="mlflow-2", storageEncrypted=True)],
            ([], ["identifier"], [], ["db"]),
        ),
        # the same input of an unprotected resource is an ordinary change
        (
            [_r(BUCKET, "b", False, bucket="x")],
            [_r(BUCKET, "b", False, bucket="y")],
            ([], ["bucket"], [], []),
        ),
        # a renamed protected bucket: deleted and added
        (
            [_r(BUCKET, "old", True, bucket="x")],
            [_r(BUCKET, "new", True, bucket="x")],
            (["new"], [], ["old"], ["old"]),
        ),
        # nested keys are named two levels deep; the protect option counts
        (
            [_r("kubernetes:apps/v1:Deployment", "d", spec={"replicas": 1, "template": {"a": 1}})],
            [
                _r(
                    "kubernetes:apps/v1:Deployment",
                    "d",
                    True,
                    spec={"replicas": 2, "template": {"a": 2}},
                )
            ],
            ([], ["spec.replicas", "spec.template", "(option) protect"], [], []),
        ),
    ],
)
def test_diff_names_what_changes_and_calls_out_protected_replacements(before, after, expected):
    diff = governance.diff_plans(_plan(before), _plan(after), "main.json")
    added, keys, removed, risky = expected
    assert [c.name for c in diff.added] == added
    assert [k for c in diff.changed for k in c.keys] == keys
    assert [c.name for c in diff.removed] == removed
    assert [c.name for c in diff.risky] == risky
    text = governance.render_diff(diff)
    assert text.startswith(f"Diff against main.json: +{len(added)} ~{len(diff.changed)} -")
    assert ("PROTECTED RESOURCES DELETED OR REPLACED" in text) == bool(risky)


def test_diff_input_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(governance.GovernanceError) as error:
        governance.read_base(tmp_path / "absent.json")
    assert (
        str(error.value)
        == f"--diff {tmp_path / 'absent.json'}: cannot read it: No such file or directory"
    )
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(governance.GovernanceError) as error:
        governance.read_base(tmp_path / "bad.json")
    assert str(error.value).startswith(f"--diff {tmp_path / 'bad.json'}: not JSON")
    with pytest.raises(governance.GovernanceError) as error:
        governance.diff_plans({"stack": "x"}, _plan([]), "x.json")
    assert str(error.value) == "x.json: not an `mlops plan --format json` output ('resources')"


def test_every_protected_type_of_the_shipped_stacks_knows_its_replacing_inputs() -> None:
    for stack in ("dev", "staging", "prod", "prod-gcp"):
        plan = json.loads((ROOT / f"policies/tests/fixtures/{stack}.json").read_text())
        protected = {r["type"] for r in plan["resources"] if r["protect"]}
        assert protected <= set(governance.REPLACED_BY), (
            stack,
            protected - set(governance.REPLACED_BY),
        )


def test_policies_run_the_real_pack_and_block_a_mandatory_violation(tmp_path: Path) -> None:
    """The dev plan passes; the same plan with one public-access block opened fails with the
    policy, the resource and the field named, and exit status 1."""
    plan = build_plan("dev", stack_file_path("dev")).as_json()
    status, report = governance.run_policy_pack(plan, "dev", ROOT, "text")
    assert status == 0, report
    assert "dev: " in report and " 0 mandatory violation(s)" in report

    bad = copy.deepcopy(plan)
    block = next(
        r
        for r in bad["resources"]
        if r["type"] == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    )
    block["inputs"]["blockPublicPolicy"] = False
    status, report = governance.run_policy_pack(bad, "dev", ROOT, "markdown")
    assert status == 1
    assert "### Policy pack on `dev`: ❌ blocked" in report
    assert (
        f"| `s3-public-access-block-all-true` | `{block['type']}::{block['name']}` | "
        f"BucketPublicAccessBlock '{block['name']}': blockPublicPolicy must be true, got false |"
    ) in report


def test_the_cli_exit_status_and_a_stack_without_policy_config(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.mine.yaml"
    stack_file.write_text(stack_file_path("local").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "mlops_platform.cli", "plan", "--stack", "mine", "--stack-file",
         str(stack_file), "--policies", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: --policies: no policy config for stack 'mine' "
        f"({ROOT / 'policies/config/mine.json'}); copy the nearest environment's file"
    )
    json.loads(done.stdout)  # the plan itself still came out


# --- the objects of Helm releases and kustomize trees --------------------------------------------


def _rendered(source: str, *objects: dict):
    from mlops_platform.render import Rendered

    return Rendered(source, "test", list(objects))


RELEASE = {
    "layer": "platform",
    "type": "kubernetes:helm.sh/v3:Release",
    "name": "mlops-mesh-cni",
    "component": "mlops:mesh:IstioMesh mlops-mesh",
    "inputs": {"namespace": "istio-cni"},
}
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster"},
}


def test_rendered_objects_become_the_resources_a_v4_chart_registers() -> None:
    plan = {"stack": "t", "resources": [RELEASE]}
    rendered = _rendered(
        "mlops-mesh-cni",
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "node"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "reader"}},
        WIDGET_CRD,
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )  # fmt: skip
    found = governance.rendered_resources(plan, [rendered])
    assert [(r["type"], r["name"]) for r in found] == [
        ("kubernetes:apps/v1:DaemonSet", "mlops-mesh-cni:istio-cni/node"),
        ("kubernetes:core/v1:ConfigMap", "mlops-mesh-cni:x/c"),
        ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "mlops-mesh-cni:reader"),
        # (the CRD itself is read for its scope, not handed to the pack)
        ("kubernetes:example.com/v1:Widget", "mlops-mesh-cni:w"),  # cluster-scoped by its CRD
    ]
    daemon_set = found[0]
    assert daemon_set["inputs"]["metadata"] == {"name": "node", "namespace": "istio-cni"}
    assert (daemon_set["layer"], daemon_set["parent"], daemon_set["renderedBy"]) == (
        "platform",
        "mlops-mesh-cni",
        "mlops-mesh-cni",
    )
    assert rendered.objects[0]["metadata"] == {"name": "node"}  # the rendering is not changed
    with pytest.raises(governance.GovernanceError, match="'elsewhere' is not in the plan"):
        governance.rendered_resources(plan, [_rendered("elsewhere")])


def test_a_chart_object_that_breaks_a_policy_blocks_and_names_its_release() -> None:
    """The local plan with its rendered objects passes; one DaemonSet of the Istio CNI chart
    given the host's PID namespace blocks, and the finding names the object and its release."""
    from mlops_platform import render
    from mlops_platform.plan import kubernetes_objects

    built = build_plan("local", stack_file_path("local"))
    report = render.check(built.resources, kubernetes_objects(built))
    sources = report.sources[1:]
    plan = built.as_json()
    status, text = governance.run_policy_pack(plan, "local", ROOT, "json", sources)
    assert status == 0, text
    cni = next(s for s in sources if s.source == "mlops-mesh-cni")
    daemon_set = next(o for o in cni.objects if o["kind"] == "DaemonSet")
    daemon_set["spec"]["template"]["spec"]["hostPID"] = True
    status, text = governance.run_policy_pack(plan, "local", ROOT, "json", sources)
    assert status == 1
    name = f"mlops-mesh-cni:istio-cni/{daemon_set['metadata']['name']}"
    assert [d for d in json.loads(text) if d["level"] == "mandatory"] == [
        {
            "policy": "k8s-host-isolation",
            "level": "mandatory",
            "resource": f"kubernetes:apps/v1:DaemonSet::{name}",
            "message": f"DaemonSet '{name}': spec.template.spec.hostPID must not be true [hostPID]",
            "source": "mlops-mesh-cni",
        }
    ]
