"""Images, resource layer: one stack transformation applies the stack's `ImagePolicy` to
everything the program registers, so no component carries image plumbing of its own.

- Helm releases of a pinned chart get `model.chart_values` merged over their own values.
- The KFP overlay (`kustomize/v2:Directory` on the project's `mlops_platform/components/pipelines/kustomize`)
  is replaced by a generated copy with the `images:` transformer and patches
  (`model.kfp_kustomization`), written under the checkout's `.mlops/kustomize/` (git-ignored)
  and named by its content's digest, so the same policy always yields the same folder.
- Every other Kubernetes object has each known image reference (the catalogue's, and the
  images a stack set) replaced wherever it appears in its `spec` or `data` (containers, init
  containers, CR fields, the compiled pipelines the KFP sync Job publishes).

With a policy that changes nothing (no mirror, no digest in the lock) nothing is registered.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pulumi
import yaml

from mlops_platform.components.images import model

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
KUSTOMIZE_DIRECTORY = "kubernetes:kustomize/v2:Directory"
# In the checkout (git-ignored), wherever the program runs from: the same folder for the plan,
# the renderer and `pulumi up` in deploy/<layer>.
GENERATED_DIR = Path(__file__).resolve().parents[3] / ".mlops" / "kustomize"
# Rendered by their own rules above, or holding no images (a Secret's data stays untouched).
SKIPPED = (
    "kubernetes:helm.sh/",
    "kubernetes:kustomize",
    "kubernetes:yaml",
    "kubernetes:core/v1:Secret",
)


def _replacer(policy: model.ImagePolicy, refs: Iterable[str]):
    """A function rewriting every occurrence of the given references in a string."""
    table = {ref: policy.resolve(ref) for ref in refs}
    table = {ref: new for ref, new in table.items() if new != ref}
    if not table:
        return lambda text: text
    # whole references only: not a prefix of a longer tag, path or an already-pinned reference
    pattern = re.compile(
        r"(?<![\w./@-])("
        + "|".join(re.escape(r) for r in sorted(table, key=len, reverse=True))
        + r")(?![\w.@:/-])"
    )
    return lambda text: pattern.sub(lambda m: table[m.group(1)], text)


def _rewrite(value: Any, replace) -> Any:
    if isinstance(value, pulumi.Output):
        return value.apply(lambda v: _rewrite(v, replace))
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {k: _rewrite(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, replace) for v in value]
    return value


def _merge_values(values: Any, overlay: dict[str, Any]) -> Any:
    """The overlay merged into values that may be (or contain) Outputs."""
    if isinstance(values, pulumi.Output):
        return values.apply(lambda v: _merge_values(v, overlay))
    if not isinstance(values, dict):
        return overlay if values is None else values
    merged = dict(values)
    for key, value in overlay.items():
        current = values.get(key)
        if isinstance(value, dict) and (isinstance(current, dict | pulumi.Output)):
            merged[key] = _merge_values(current, value)
        else:
            merged[key] = value
    return merged


def kfp_overlay(directory: str, policy: model.ImagePolicy) -> str:
    """The generated KFP overlay for `directory` (the project's overlay), as a path relative
    to the working directory like the original."""
    source = Path(directory).resolve()
    base = yaml.safe_load((source / "kustomization.yaml").read_text())
    document = model.kfp_kustomization(base, policy, KFP_ARGUMENTS)
    text = (
        f"# Generated from {os.path.relpath(source)} by mlops_platform/components/images for this stack's "
        "image policy (mirror, digests); do not edit.\n" + yaml.safe_dump(document, sort_keys=False)
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = GENERATED_DIR / f"kubeflow-pipelines-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(text)
    return os.path.relpath(folder)  # relative like the overlay it replaces


# The argument lists of the containers a reference patches by argument, exactly as the pinned
# build renders them (a strategic merge patch replaces the list whole; a render test keeps this
# equal): workflow-controller from KFP 2.16.1's third-party/argo/base/
# workflow-controller-deployment-patch.yaml plus `--namespaced` from its namespaced install.
KFP_ARGUMENTS = {
    "workflow-controller": [
        "--configmap",
        "workflow-controller-configmap",
        "--executor-image",
        "quay.io/argoproj/argoexec:v3.7.3",
        "--namespaced",
    ],
}


def register(policy: model.ImagePolicy, extra_refs: Iterable[str] = ()) -> None:
    """Apply `policy` to every resource registered from now on in this program.

    Idempotent: a transformation this function registered before on the same root (an earlier
    layer or plan in one process, as `mlops plan` runs them) is replaced, never stacked."""
    _unregister()
    if not policy.active:
        return
    refs = {entry.ref for entry in model.catalogue()} | set(extra_refs)
    replace = _replacer(policy, refs)

    def transformation(args: pulumi.ResourceTransformationArgs):
        props = args.props
        if args.type_ == HELM_RELEASE:
            chart = model.chart_of(str(props.get("chart") or ""), str(props.get("version") or ""))
            if chart is None:
                if policy.mirror:
                    raise model.ImageError(
                        f"Helm release {args.name}: chart {props.get('chart')} "
                        f"{props.get('version')} has no entry in mlops_platform/components/images/model.py "
                        "CHART_IMAGES, so its images cannot be moved to the mirror"
                    )
                return None
            overlay = model.chart_values(chart, policy)
            if not overlay:
                return None
            props = dict(props)
            props["values"] = _merge_values(props.get("values"), overlay)
            return pulumi.ResourceTransformationResult(props, args.opts)
        if args.type_ == KUSTOMIZE_DIRECTORY:
            directory = str(props.get("directory") or "")
            if "://" in directory or not (Path(directory) / "kustomization.yaml").is_file():
                return None  # upstream's cluster-scoped resources: CRDs and RBAC, no images
            if Path(directory).resolve().is_relative_to(GENERATED_DIR):
                return None  # generated already
            props = dict(props)
            props["directory"] = kfp_overlay(directory, policy)
            return pulumi.ResourceTransformationResult(props, args.opts)
        if args.type_.startswith("kubernetes:") and not args.type_.startswith(SKIPPED):
            changed = {
                key: _rewrite(props[key], replace) for key in ("spec", "data") if props.get(key)
            }
            if not changed:
                return None
            return pulumi.ResourceTransformationResult({**props, **changed}, args.opts)
        return None

    transformation._mlops_images = True  # type: ignore[attr-defined]
    pulumi.runtime.register_stack_transformation(transformation)


def _unregister() -> None:
    root = pulumi.runtime.get_root_resource()
    if root is not None and root._transformations:
        root._transformations = [
            t for t in root._transformations if not getattr(t, "_mlops_images", False)
        ]


def policy_for(mirror: str | None) -> model.ImagePolicy:
    return model.ImagePolicy(digests=model.read_lock(), mirror=mirror)
