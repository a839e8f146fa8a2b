"""Validate rendered Kubernetes objects offline.

Built-in kinds are checked by `kubernetes-validate` (strict: unknown fields are errors) against
the pinned Kubernetes version. Custom resources are checked against the upstream CRDs in a
folder given by the `MLOPS_CRDS_DIR` setting (the project ships none; CI points it at
`../shared/crds`, also the default when it exists), or given by the caller (the CRDs that
rendered Helm releases install, see `mlops_platform.render`).

Why a small converter is written here: a CRD's `openAPIV3Schema` is OpenAPI 3.0 plus Kubernetes
extensions (`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`, `nullable`)
that no JSON-Schema library interprets, and the API server prunes unknown fields, which strict
validation must report instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlops_platform.components.versions import KUBERNETES_VERSION

CRDS_DIR_SETTING = "MLOPS_CRDS_DIR"


class ManifestError(ValueError):
    """A rendered object that the API server would reject."""


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """prometheus-operator CRDs use the YAML `=` (value) key, which SafeLoader rejects. libyaml
    when present: the upstream CRDs are megabytes (seconds with the pure-Python parser)."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))


def crds_dir() -> Path | None:
    """`MLOPS_CRDS_DIR`, else `../shared/crds` beside this checkout when it exists."""
    value = os.environ.get(CRDS_DIR_SETTING)
    if value:
        return Path(value)
    sibling = Path(__file__).resolve().parents[2] / "shared" / "crds"
    return sibling if sibling.is_dir() else None


CrdSchemas = dict[tuple[str, str, str], dict[str, Any]]


def crd_schemas(documents: Iterable[Any]) -> CrdSchemas:
    """(group, version, kind) -> openAPIV3Schema of every CustomResourceDefinition given."""
    schemas: CrdSchemas = {}
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
            continue
        spec = document["spec"]
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                schemas[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return schemas


@cache
def _crd_schemas(folder: str) -> CrdSchemas:
    """The CRD schemas of every YAML file under `folder`."""
    schemas: CrdSchemas = {}
    for path in sorted(Path(folder).rglob("*.yaml")):
        schemas.update(crd_schemas(yaml.load_all(path.read_text(), Loader=_CrdLoader)))
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


class _Frozen:
    """Hashable by identity, so a CRD schema dict can key the validator cache."""

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and other.value is self.value


@cache
def _crd_validator(schema: _Frozen):
    """A compiled validator per CRD schema (keyed by the schema object, which the key keeps)."""
    import jsonschema

    root = _to_json_schema(schema.value)
    # Some CRDs (Istio's) list only spec/status at the root; the API server adds the
    # object's own apiVersion, kind and metadata to every custom resource schema.
    root["properties"] = {**_OBJECT_ROOT, **root.get("properties", {})}
    return jsonschema.Draft7Validator(root)


@cache
def _builtin_validator(api_version: str, kind: str, version: str):
    """kubernetes-validate's strict schema for a built-in kind, compiled once.

    `kubernetes_validate.validate` reloads its multi-megabyte definitions file and builds a new
    validator on every call (~9 ms); a platform renders hundreds of objects, so the same schema
    files are resolved here the way it does and the validator is kept per kind.
    """
    import re

    import jsonschema
    from kubernetes_validate import utils
    from referencing import Resource

    # the newest schema set not newer than the wanted version (as kubernetes_validate does)
    found = [v for v in utils.all_versions() if utils.major_minor(v) <= version]
    if not found:
        raise utils.VersionNotSupportedError(version=version)
    schema_dir = f"v{found[-1]}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _definitions(schema_dir, version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(schema_dir: str, version: str):
    """The shared definitions every built-in kind's schema refers to (1.5 MB, read once)."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    contents = utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", version
    )
    return Resource.from_contents(contents) @ Registry()


def validate(
    obj: dict[str, Any],
    *,
    version: str = KUBERNETES_VERSION,
    crds: Mapping[tuple[str, str, str], dict[str, Any]] | None = None,
) -> None:
    """Raise ManifestError naming the object and every problem; return None when valid.

    `crds` adds CRD schemas (e.g. those a chart ships) to the ones under `MLOPS_CRDS_DIR`.
    """
    import jsonschema

    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    name = (obj.get("metadata") or {}).get("name", "?")
    label = f"{kind} {name} ({api_version})"
    group, _, ver = api_version.rpartition("/")
    folder = crds_dir()
    schema = (crds or {}).get((group, ver, kind)) if group else None
    # The CRD folder is read only for kinds Kubernetes itself does not define.
    if (
        schema is None
        and group
        and folder
        and _builtin_validator(api_version, kind, version) is None
    ):
        schema = _crd_schemas(str(folder)).get((group, ver, kind))
    if schema is not None:
        validator = _crd_validator(_Frozen(schema))
        problems = list(_walk_errors(validator, obj))
        if problems:
            raise ManifestError(f"{label} does not match its CRD:\n  " + "\n  ".join(problems))
        # The metadata of a custom resource is an ObjectMeta like any other object's.
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
        api_version, kind = "v1", "ConfigMap"
    builtin = _builtin_validator(api_version, kind, version)
    if builtin is None:
        raise ManifestError(
            f"{label}: no schema for this kind in Kubernetes {version}, and no CRD for it under "
            f"{CRDS_DIR_SETTING}={folder or '(unset)'}"
        )
    error = jsonschema.exceptions.best_match(builtin.iter_errors(obj))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "<root>"
        raise ManifestError(f"{label} is invalid at {where}: {error.message}")
