"""Reading resource properties as the policy SDK hands them over.

The SDK wraps properties in read-only `Mapping`/`Sequence` proxies that raise `UnknownValueError`
on values only known after apply, so nothing here checks for `dict`/`list`. A resource policy that
meets an unknown value is reported by the SDK as "can't run during preview" and runs for real
during `pulumi up`; `known` catches the error only where a policy can decide without the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema
from pulumi_policy.proxy import UnknownValueError


def get(props: Any, *path: str | int) -> Any:
    """The value at `path` (keys or list indexes), or None where any step is missing."""
    value = props
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or step >= len(value):
                return None
        elif not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def known(read: Callable[[], Any], default: Any = None) -> Any:
    """`read()`, or `default` when what it reads is only known after apply."""
    try:
        return read()
    except UnknownValueError:
        return default


# A value the engine will only know after apply, where the policy only needs to know it is set
# (a KMS key ARN or a workload pool computed from another resource).
COMPUTED = object()


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_list(value: Any) -> list[Any]:
    """A list of the items of `value`; a single item becomes a one-item list, None an empty one."""
    if value is None:
        return []
    if is_list(value):
        return [value[i] for i in range(len(value))]
    return [value]


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A mapping from a mapping or a JSON object string (provider inputs arrive JSON-encoded)."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def plain(value: Any) -> Any:
    """The SDK's read-only proxies turned into plain dicts and lists, recursively."""
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if is_list(value):
        return [plain(v) for v in as_list(value)]
    return value


def show(value: Any) -> str:
    """A value as it would be written in a stack file, for violation messages."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping) or is_list(value):
        return json.dumps(plain(value), sort_keys=True, default=str)
    return json.dumps(value) if isinstance(value, str) else str(value)


def subject(resource_type: str, name: str) -> str:
    """How a message names a resource: `BucketPolicy 'mlops-artifacts-policy'`."""
    return f"{resource_type.rsplit(':', 1)[-1]} '{name}'"


class Settings:
    """A policy's configuration: a JSON schema whose `default`s are the only defaults.

    The engine validates configured values against the schema; `value` falls back to the
    schema's default so that defaults are written once.
    """

    def __init__(self, properties: dict[str, dict[str, Any]]):
        self.properties = properties
        self.schema = PolicyConfigSchema(properties=properties)

    def value(self, config: Mapping[str, Any], key: str) -> Any:
        if key not in self.properties:
            raise KeyError(f"unknown policy setting {key!r}")
        if key in config:
            return config[key]
        return self.properties[key]["default"]
