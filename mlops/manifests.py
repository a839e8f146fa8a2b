"""Validate rendered Kubernetes objects offline.

Built-in kinds are checked by `kubernetes-validate` (strict: unknown fields are errors) against
the pinned Kubernetes version. Custom resources are checked against the upstream CRDs in a
folder given by the `MLOPS_CRDS_DIR` setting (the project ships none; CI points it at
`../shared/crds`).

Why a small converter is written here: a CRD's `openAPIV3Schema` is OpenAPI 3.0 plus Kubernetes
extensions (`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`, `nullable`)
that no JSON-Schema library interprets, and the API server prunes unknown fields, which strict
validation must report instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components.versions import KUBERNETES_VERSION

CRDS_DIR_SETTING = "MLOPS_CRDS_DIR"


class ManifestError(ValueError):
    """A rendered object that the API server would reject."""


class _CrdLoader(yaml.SafeLoader):
    """prometheus-operator CRDs use the YAML `=` (value) key, which SafeLoader rejects."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))


def crds_dir() -> Path | None:
    value = os.environ.get(CRDS_DIR_SETTING)
    return Path(value) if value else None


@cache
def _crd_schemas(folder: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> openAPIV3Schema for every CRD under `folder`."""
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(Path(folder).rglob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schemas[key] = schema
    return schemas


def _to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 + Kubernetes extensions -> strict JSON Schema (draft 7)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(sub) for sub in value]
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "format"):
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


_OBJECT_ROOT: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},  # checked as ObjectMeta by kubernetes-validate below
}


def _walk_errors(validator, obj: dict[str, Any]) -> Iterator[str]:
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "<root>"
        yield f"{where}: {error.message}"


def validate(obj: dict[str, Any], *, version: str = KUBERNETES_VERSION) -> None:
    """Raise ManifestError naming the object and every problem; return None when valid."""
    import jsonschema
    import kubernetes_validate

    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    name = (obj.get("metadata") or {}).get("name", "?")
    label = f"{kind} {name} ({api_version})"
    group, _, ver = api_version.rpartition("/")
    folder = crds_dir()
    schema = _crd_schemas(str(folder)).get((group, ver, kind)) if folder and group else None
    if schema is not None:
        root = _to_json_schema(schema)
        # Some CRDs (Istio's) list only spec/status at the root; the API server adds the
        # object's own apiVersion, kind and metadata to every custom resource schema.
        root["properties"] = {**_OBJECT_ROOT, **root.get("properties", {})}
        validator = jsonschema.Draft7Validator(root)
        problems = list(_walk_errors(validator, obj))
        if problems:
            raise ManifestError(f"{label} does not match its CRD:\n  " + "\n  ".join(problems))
        # The metadata of a custom resource is an ObjectMeta like any other object's.
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    try:
        kubernetes_validate.validate(obj, f"{version}.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "<root>"
        raise ManifestError(f"{label} is invalid at {where}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise ManifestError(
            f"{label}: no schema for this kind in Kubernetes {version}, and no CRD for it under "
            f"{CRDS_DIR_SETTING}={folder or '(unset)'}"
        ) from None
