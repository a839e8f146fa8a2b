"""`mlops plan --policies` and `--diff`: governance of a change without credentials or the CLI.

`--policies` runs the project's CrossGuard pack (`policies/`) against the offline plan in the
pack's own environment (pulumi-policy pins protobuf 5.x; this project needs 6.x), through
`crossguard.offline`, which drives the pack's real analyzer server as `pulumi preview
--policy-pack` does, with the stack's policy config (`policies/config/<stack>.json`).

The pack also sees every object the plan's Helm releases and kustomize trees create (rendered
by `mlops_platform.render`), each as the Kubernetes resource a `kubernetes:helm.sh/v4:Chart` or a
`kubernetes:kustomize/v2:Directory` registers for it (`kubernetes:apps/v1:Deployment` named
`<release>:<namespace>/<name>`, a child of the release), so the Kubernetes policies run over the
charts' workloads too, and a finding names the release.

`--diff BASE.json` compares the plan with a saved one (e.g. main's): what a change adds,
changes and removes, with changes that would replace or delete a protected resource called out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Kinds without a namespace (Kubernetes' built-in cluster-scoped kinds, and the CRDs' own
# `spec.scope` for custom resources): the renderer leaves a namespaced object's namespace to the
# release, as the provider does.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
RENDERED_TYPES = (
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:kustomize/v2:Directory",
)

# Inputs whose change makes the provider replace the resource (`forceNew` in each provider's
# schema), for the types the platform protects. A change elsewhere is an in-place update.
# Kept to the identifying and placement fields: what a rename or a move of a stateful
# resource touches. Source: the pulumi-aws / pulumi-gcp / pulumi-kubernetes registry docs
# ("Changes to this property will trigger replacement").
REPLACED_BY: dict[str, frozenset[str]] = {
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:rds/instance:Instance": frozenset(
        {
            "identifier",
            "identifierPrefix",
            "engine",
            "storageEncrypted",
            "kmsKeyId",
            "dbName",
            "username",
            "availabilityZone",
        }
    ),
    "aws:eks/cluster:Cluster": frozenset({"name", "roleArn", "kubernetesNetworkConfig"}),
    "aws:msk/cluster:Cluster": frozenset({"clusterName"}),
    "aws:msk/topic:Topic": frozenset({"name", "clusterArn"}),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {"replicationGroupId", "atRestEncryptionEnabled", "subnetGroupName", "kmsKeyId"}
    ),
    "aws:kms/key:Key": frozenset({"keyUsage", "customerMasterKeySpec", "keySpec"}),
    "gcp:storage/bucket:Bucket": frozenset({"name", "location", "project"}),
    "gcp:sql/databaseInstance:DatabaseInstance": frozenset({"name", "region", "project"}),
    "gcp:container/cluster:Cluster": frozenset({"name", "location", "project", "network"}),
    "gcp:redis/instance:Instance": frozenset(
        {"name", "region", "project", "tier", "authorizedNetwork", "transitEncryptionMode"}
    ),
    "gcp:managedkafka/cluster:Cluster": frozenset({"clusterId", "location", "project"}),
    "gcp:managedkafka/topic:Topic": frozenset({"topicId", "cluster", "location", "project"}),
    "kubernetes:helm.sh/v3:Release": frozenset({"name", "namespace"}),
}


class GovernanceError(RuntimeError):
    """Bad input to --policies or --diff: one line naming the file or the setting."""


# --- --diff ------------------------------------------------------------------------------------


@dataclass
class Change:
    type: str
    name: str
    keys: list[str] = field(default_factory=list)  # changed inputs (dotted, two levels)
    layer: str = ""
    protected: bool = False
    replaced: bool = False  # a replacement-forcing input changed

    @property
    def label(self) -> str:
        where = f"{self.layer}: " if self.layer else ""
        return f"{where}{self.type}::{self.name}"


@dataclass
class PlanDiff:
    base: str
    added: list[Change]
    changed: list[Change]
    removed: list[Change]

    @property
    def risky(self) -> list[Change]:
        """Protected resources the change would delete or replace (pulumi refuses, or worse,
        state is lost when protection is lifted to let it through)."""
        return [c for c in self.removed if c.protected] + [
            c for c in self.changed if c.protected and c.replaced
        ]

    def as_json(self) -> dict[str, Any]:
        def rows(changes: list[Change]) -> list[dict[str, Any]]:
            return [
                {"type": c.type, "name": c.name, "keys": c.keys, "protected": c.protected,
                 "replaced": c.replaced}
                for c in changes
            ]  # fmt: skip

        return {
            "base": self.base,
            "added": rows(self.added),
            "changed": rows(self.changed),
            "removed": rows(self.removed),
            "risky": rows(self.risky),
        }


def _changed_keys(old: Any, new: Any, prefix: str = "", depth: int = 2) -> list[str]:
    if old == new:
        return []
    if depth == 0 or not isinstance(old, dict) or not isinstance(new, dict):
        return [prefix.rstrip(".") or "(value)"]
    keys = []
    for key in sorted(set(old) | set(new)):
        keys += _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.", depth - 1)
    return keys


def diff_plans(base: dict[str, Any], new: dict[str, Any], base_name: str = "base") -> PlanDiff:
    """What `new` adds, changes and removes against `base` (both `mlops plan --format json`)."""

    def index(plan: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        try:
            # A layer is its own project: the same provider name may appear in each.
            return {(r.get("layer") or "", r["type"], r["name"]): r for r in plan["resources"]}
        except (KeyError, TypeError) as exc:
            raise GovernanceError(
                f"{base_name}: not an `mlops plan --format json` output ({exc})"
            ) from None

    old, now = index(base), index(new)

    def change(key: tuple[str, str, str], plan: dict, **fields: Any) -> Change:
        layer, type_, name = key
        protected = bool(plan[key].get("protect", False))
        return Change(type_, name, layer=layer, protected=protected, **fields)

    added = [change(key, now) for key in now if key not in old]
    removed = [change(key, old) for key in old if key not in now]
    changed = []
    for key in sorted(set(old) & set(now)):
        before, after = old[key], now[key]
        keys = _changed_keys(before.get("inputs", {}), after.get("inputs", {}))
        if before.get("protect") != after.get("protect"):
            keys.append("(option) protect")
        if not keys:
            continue
        top = {k.split(".")[0] for k in keys}
        changed.append(
            change(key, old, keys=keys, replaced=bool(top & REPLACED_BY.get(key[1], frozenset())))
        )
    order = lambda c: (c.layer, c.type, c.name)  # noqa: E731
    return PlanDiff(base_name, sorted(added, key=order), changed, sorted(removed, key=order))


def render_diff(diff: PlanDiff, markdown: bool = False) -> str:
    counts = f"+{len(diff.added)} ~{len(diff.changed)} -{len(diff.removed)}"
    lines = [
        f"### Plan diff against `{diff.base}`: {counts}" if markdown
        else f"Diff against {diff.base}: {counts}"
    ]  # fmt: skip
    if diff.risky:
        lines += ["", "**Protected resources deleted or replaced:**" if markdown
                  else "PROTECTED RESOURCES DELETED OR REPLACED:"]  # fmt: skip
        for c in diff.risky:
            what = "replaced" if c in diff.changed else "deleted (or renamed without an alias)"
            lines.append(f"- `{c.label}`: {what}" if markdown else f"  ! {c.label}: {what}")
    for title, sign, changes in (
        ("Added", "+", diff.added),
        ("Changed", "~", diff.changed),
        ("Removed", "-", diff.removed),
    ):
        if not changes:
            continue
        lines += ["", f"#### {title}" if markdown else f"{title}:"]
        for c in changes:
            detail = (
                f" ({', '.join(c.keys[:6])}{', …' if len(c.keys) > 6 else ''})" if c.keys else ""
            )
            flag = " [protected]" if c.protected else ""
            lines.append(
                f"- `{c.label}`{flag}{detail}" if markdown else f"  {sign} {c.label}{flag}{detail}"
            )
    return "\n".join(lines) + "\n"


def read_base(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise GovernanceError(f"--diff {path}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise GovernanceError(f"--diff {path}: not JSON ({exc})") from None


# --- --policies ------------------------------------------------------------------------------


def _uv(root: Path) -> str:
    local = root / ".tools" / "bin" / "uv"
    found = str(local) if local.is_file() else shutil.which("uv")
    if found is None:
        raise GovernanceError("--policies needs uv (make venv installs it into .tools/bin)")
    return found


def resource_type(obj: dict[str, Any]) -> str:
    """The provider's type token of an object: `kubernetes:<group|core>/<version>:<Kind>`."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj.get('kind', '')}"


def _cluster_scoped(obj: dict[str, Any], crd_scopes: dict[tuple[str, str], str]) -> bool:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    scope = crd_scopes.get((group, str(obj.get("kind"))))
    return scope == "Cluster" if scope else obj.get("kind") in CLUSTER_SCOPED_KINDS


def rendered_resources(plan_json: dict[str, Any], rendered: Any) -> list[dict[str, Any]]:
    """Plan entries for every object of the rendered releases and kustomize trees (each an
    `mlops_platform.render.Rendered` whose `source` is the release's resource name), as a v4 Chart or
    kustomize Directory registers them: the object as inputs, its namespace defaulted to the
    release's, named `<release>:<namespace>/<name>` (`<release>:<name>` when cluster-scoped).

    CustomResourceDefinitions are left out: no policy of the pack reads one, and the charts'
    CRDs are most of the rendered bytes (megabytes of OpenAPI schema each for the Prometheus
    operator's), which the analyzer would otherwise decode for every policy."""
    owners = {r["name"]: r for r in plan_json["resources"] if r["type"] in RENDERED_TYPES}
    objects = [obj for source in rendered for obj in source.objects]
    crd_scopes = {
        (obj["spec"]["group"], obj["spec"]["names"]["kind"]): obj["spec"].get("scope", "")
        for obj in objects
        if obj.get("kind") == "CustomResourceDefinition" and isinstance(obj.get("spec"), dict)
    }
    found = []
    for source in rendered:
        owner = owners.get(source.source)
        if owner is None:
            raise GovernanceError(
                f"--policies: rendered source {source.source!r} is not in the plan"
            )
        default_namespace = owner["inputs"].get("namespace") or "default"
        for obj in source.objects:
            if obj.get("kind") == "CustomResourceDefinition":
                continue
            obj = json.loads(json.dumps(obj))
            metadata = obj.setdefault("metadata", {})
            if _cluster_scoped(obj, crd_scopes):
                name = f"{source.source}:{metadata.get('name')}"
            else:
                metadata.setdefault("namespace", default_namespace)
                name = f"{source.source}:{metadata['namespace']}/{metadata.get('name')}"
            found.append(
                {
                    "layer": owner.get("layer", ""),
                    "type": resource_type(obj),
                    "name": name,
                    "parent": source.source,
                    "component": owner.get("component", ""),
                    "protect": False,
                    "retainOnDelete": False,
                    "dependsOn": [],
                    "inputs": obj,
                    "renderedBy": source.source,
                }
            )
    return found


def run_policy_pack(
    plan_json: dict[str, Any],
    stack: str,
    root: Path,
    output_format: str,
    rendered: Any = (),
) -> tuple[int, str]:
    """(exit status, report) of the pack over the plan and the objects of its rendered releases
    (`mlops_platform.render.Rendered`, the program's own excluded): 0 clean, 1 mandatory violations."""
    pack = root / "policies"
    config = pack / "config" / f"{stack}.json"
    if not (pack / "PulumiPolicy.yaml").is_file():
        raise GovernanceError(f"--policies: no policy pack at {pack}")
    if not config.is_file():
        raise GovernanceError(
            f"--policies: no policy config for stack {stack!r} ({config}); copy the nearest "
            "environment's file"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-policies-") as folder:
        plan_file = Path(folder) / "plan.json"
        if rendered:
            plan_json = {
                **plan_json,
                "resources": plan_json["resources"] + rendered_resources(plan_json, rendered),
            }
        plan_file.write_text(json.dumps(plan_json))
        done = subprocess.run(
            [_uv(root), "--directory", str(pack), "run", "--locked", "--quiet", "python", "-m",
             "crossguard.offline", str(plan_file), "--config", str(config), "--format",
             output_format],
            capture_output=True, text=True, check=False,
            env={**os.environ, "VIRTUAL_ENV": ""},
        )  # fmt: skip
    if done.returncode not in (0, 1):
        raise GovernanceError(
            f"--policies: the policy pack failed ({done.returncode}): "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}"
        )
    return done.returncode, done.stdout


# --- the policy pack's fixtures of rendered objects ----------------------------------------------


FIXTURE_TEXT_LIMIT = 256


def _shortened(value: Any) -> Any:
    """Long strings (dashboards, alert rules, scripts in ConfigMaps) as their digest: no policy
    reads them, and they are most of the fixture's bytes."""
    if isinstance(value, str) and len(value) > FIXTURE_TEXT_LIMIT:
        digest = hashlib.sha256(value.encode()).hexdigest()
        return f"(text of {len(value)} characters, sha256 {digest})"
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shortened(v) for v in value]
    return value


def rendered_fixture(stack: str) -> list[dict[str, Any]]:
    """The plan entries of every object the stack's releases and kustomize trees create, as
    `--policies` hands them to the pack, with long texts shortened. The pack's tests run its
    policies over these."""
    from mlops_platform import plan as planning
    from mlops_platform import render

    plan = planning.build_plan(stack, planning.stack_file_path(stack))
    sources = render.render(plan.resources)
    return [
        {**r, "inputs": _shortened(r["inputs"])}
        for r in rendered_resources(plan.as_json(), sources)
    ]


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops_platform.governance rendered-fixture STACK`: the fixture on stdout."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_platform.governance")
    parser.add_argument("command", choices=["rendered-fixture"])
    parser.add_argument("stack")
    args = parser.parse_args(argv)
    # One resource a line: reviewable diffs when a chart is upgraded.
    lines = [
        json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rendered_fixture(args.stack)
    ]
    print("[\n" + ",\n".join(lines) + "\n]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
