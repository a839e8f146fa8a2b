"""Kubernetes rules shared by the components' pure models.

What belongs here: checks and renderings defined by Kubernetes itself, the same for every
component: object-name shapes (DNS labels), resource quantities, image pinning, the system
namespaces, and the requests/limits of a container. Everything here is pure (no Pulumi, no I/O)
and raises `ValueError` with the field named, so pydantic validators can call it directly.

What does not: a component's own naming rules (bucket keys, cluster ids, cloud resource names),
its defaults and its field descriptions; those stay in the component's model, which declares its
fields (and so its part of the JSON schema) itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import field_validator, model_validator

from mlops_platform.components.base import StrictModel

# RFC 1123 label: namespaces, service accounts, most object names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RFC 1035 label: Service names, which must start with a letter.
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
# Namespaces Kubernetes itself owns; a component installing into one would mix with the system.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

# The subset of the quantity grammar the platform accepts: a decimal number and an SI or binary
# suffix (no exponents, no sign).
QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS: dict[str | None, float] = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
QUANTITY_EXAMPLE = "512Mi, 250m"


def is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and DNS_LABEL.match(value) is not None


def check_dns_label(value: str, field: str, *, explain: bool = True) -> str:
    """`value` if it is a DNS label, else a `ValueError` naming `field`; `explain=False` keeps
    the message to "must be a DNS label" (what the kafka, storage and monitoring models say)."""
    if not is_dns_label(value):
        if not explain:
            raise ValueError(f"{field} {value!r} must be a DNS label")
        raise ValueError(
            f"{field} {value!r} must be a DNS label: at most 63 lowercase letters, digits or "
            "'-', starting and ending with a letter or digit"
        )
    return value


def check_namespace(value: str, field: str) -> str:
    """A DNS label that is not one of the system namespaces."""
    check_dns_label(value, field)
    if value in SYSTEM_NAMESPACES:
        raise ValueError(f"{field} {value!r} is a Kubernetes system namespace")
    return value


def is_quantity(text: str) -> bool:
    return QUANTITY.match(text) is not None


def quantity_value(text: str) -> float:
    """A Kubernetes quantity (`250m`, `1Gi`) as a plain number, for comparisons."""
    match = QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. {QUANTITY_EXAMPLE})")
    return float(match["number"]) * _FACTORS[match["suffix"]]


def check_quantity(value: str, field: str, example: str = QUANTITY_EXAMPLE) -> str:
    """`value` if it is a quantity, else a `ValueError` naming `field` with `example` values
    (a volume size reads better with `10Gi` than with `512Mi`)."""
    if not is_quantity(value):
        raise ValueError(f"{field} {value!r} is not a Kubernetes quantity (e.g. {example})")
    return value


def check_limit_covers_request(kind: Literal["cpu", "memory"], request: str, limit: str) -> None:
    """Kubernetes refuses a container whose limit is below its request: say so at config time."""
    if quantity_value(limit) < quantity_value(request):
        raise ValueError(f"{kind}_limit ({limit}) must be at least {kind}_request ({request})")


def floating_image(image: str) -> bool:
    """True when an image is neither digest-pinned nor tagged other than `latest`."""
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[-1] == "latest"


def check_pinned_image(value: str, field: str = "image") -> str:
    if not value or floating_image(value):
        raise ValueError(
            f"{field} {value!r} must be pinned to a tag other than latest, or to a digest"
        )
    return value


def container_resources(
    cpu_request: str, memory_request: str, memory_limit: str, cpu_limit: str | None = None
) -> dict[str, Any]:
    """A container's `resources`: requests, the memory limit and, when given, a CPU limit."""
    limits = {"memory": memory_limit}
    if cpu_limit is not None:
        limits["cpu"] = cpu_limit
    return {"requests": {"cpu": cpu_request, "memory": memory_request}, "limits": limits}


class ContainerResourcesConfig(StrictModel):
    """Base of a component's resources model: requests and a memory limit, each a quantity.

    Subclasses declare the three fields again with their own defaults and descriptions (their
    schema is theirs); they inherit the checks and `values()`. The memory limit must cover the
    request unless `check_memory_limit` is turned off.
    """

    # Whether `memory_limit >= memory_request` is checked here rather than left to the API server.
    check_memory_limit: ClassVar[bool] = True

    cpu_request: str
    memory_request: str
    memory_limit: str

    @field_validator("cpu_request", "memory_request", "memory_limit")
    @classmethod
    def _quantity(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name)

    @model_validator(mode="after")
    def _memory_limit_covers_request(self) -> ContainerResourcesConfig:
        if self.check_memory_limit:
            check_limit_covers_request("memory", self.memory_request, self.memory_limit)
        return self

    def values(self) -> dict[str, Any]:
        return container_resources(self.cpu_request, self.memory_request, self.memory_limit)


# --- labels -----------------------------------------------------------------------------------

MANAGED_BY = "mlops-platform"


def app_selector(app: str, component: str) -> dict[str, str]:
    """The recommended `app.kubernetes.io` labels that select one part of an application."""
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component}


def app_labels(app: str, component: str) -> dict[str, str]:
    """`app_selector` plus the labels every object of that application carries."""
    return {
        **app_selector(app, component),
        "app.kubernetes.io/part-of": app,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


# --- pod and container specs ------------------------------------------------------------------


def restricted_container_security(user: int) -> dict[str, Any]:
    """A container `securityContext` that passes Pod Security `restricted`, read-only root."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_security(user: int) -> dict[str, Any]:
    """A pod `securityContext` for `restricted`; volumes are group-owned by `user`."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# --- secrets as files -------------------------------------------------------------------------

# No workload of the platform reads a secret from its environment (checkov CKV_K8S_35): an
# environment is copied into every child process, shown by `/proc/<pid>/environ` and crash
# reports, and cannot change without a restart. Secrets are Secret volumes instead, read-only,
# one folder per Secret under this root.
SECRETS_DIR = "/var/run/secrets/mlops"
# kubelet writes the files as root and gives them the pod's fsGroup (every pod of the platform
# runs with fsGroup = its user): group read is how the container's user reads them; nobody
# writes, and other users of the node read nothing.
SECRET_FILE_MODE = 0o440
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def secret_dir(volume: str) -> str:
    """Where the Secret volume `volume` is mounted."""
    return f"{SECRETS_DIR}/{volume}"


def secret_volume(
    volume: str, secret: str, keys: Iterable[str] | Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Secret `secret` as volume `volume`: `keys` only (each a file of its own name, or of the
    name a mapping gives it), or every key; a key missing from the Secret keeps the pod from
    starting rather than starting it half-configured."""
    source: dict[str, Any] = {"secretName": secret, "defaultMode": SECRET_FILE_MODE}
    if keys is not None:
        paths = keys if isinstance(keys, Mapping) else {key: key for key in keys}
        source["items"] = [{"key": key, "path": path} for key, path in paths.items()]
    return {"name": volume, "secret": source}


def secret_volume_mount(volume: str, path: str | None = None) -> dict[str, Any]:
    """The read-only mount of `secret_volume(volume, ...)`, at `secret_dir(volume)` unless
    a program wants its file elsewhere (MLflow's `~/.mlflow/credentials`)."""
    return {"name": volume, "mountPath": path or secret_dir(volume), "readOnly": True}


def env_from_files_command(files: Mapping[str, str], program: Sequence[str]) -> list[str]:
    """A container `command` that runs `program` with each variable of `files` set from the
    file it maps to, for programs that read a secret only from their environment and offer
    no file of their own (MLflow's backend-store URI and Flask key, Feast's `${VAR}` in
    feature_store.yaml). A POSIX `sh` (every Debian-based image has one) reads the files and
    `exec`s the program, so the value lives only in that process's environment, never in the
    pod spec; a missing or empty file stops the start-up naming the variable and the path.
    `args` of the container are appended to `program`."""
    lines = []
    for name, path in sorted(files.items()):
        if not _ENV_NAME.match(name):
            raise ValueError(f"env_from_files_command: {name!r} is not a variable name")
        if not path.startswith("/") or "'" in path:
            raise ValueError(f"env_from_files_command: {path!r} must be an absolute path")
        lines.append(
            f"[ -s '{path}' ] || {{ echo '{name}: {path} is missing or empty' >&2; exit 1; }}"
        )
        lines.append(f"{name}=\"$(cat '{path}')\"; export {name}")
    lines.append('exec "$0" "$@"')
    return ["/bin/sh", "-c", "\n".join(lines), *program]


def secret_env_vars(container: Mapping[str, Any]) -> list[str]:
    """What of a container's environment comes from a Secret (`secretKeyRef`, `envFrom`
    `secretRef`): always empty for the platform's own workloads, which tests assert."""
    found = [
        var["name"]
        for var in container.get("env") or []
        if "secretKeyRef" in (var.get("valueFrom") or {})
    ]
    found += [
        f"envFrom:{source['secretRef'].get('name')}"
        for source in container.get("envFrom") or []
        if "secretRef" in source
    ]
    return found


def probe(action: dict[str, Any], period: int, failures: int, timeout: int = 3) -> dict[str, Any]:
    """A probe: `action` is its handler (`httpGet`, `tcpSocket`, `exec`)."""
    return {
        **action,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def ingress_network_policy(
    metadata: dict[str, Any],
    pod_labels: dict[str, str],
    sources: list[dict[str, Any]],
    port: int,
) -> dict[str, Any]:
    """A NetworkPolicy that lets only `sources` (NetworkPolicy peers) reach `port` of the pods
    with `pod_labels`; every other ingress to those pods is refused."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": pod_labels},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


# The cluster's DNS pods: CoreDNS on EKS and kind, kube-dns on GKE, all labelled alike in
# kube-system. (With NodeLocal DNSCache the node-local address must be allowed too: not enabled
# by the platform's clusters.)
DNS_PEER: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORT = 53


def egress_network_policy(
    metadata: dict[str, Any],
    pod_labels: dict[str, str],
    destinations: Sequence[tuple[list[dict[str, Any]], int]],
) -> dict[str, Any]:
    """A NetworkPolicy for pods that only call out: nothing may reach them, and they may open
    connections only to each destination's peers on its TCP port, and to the cluster DNS."""
    egress = [
        {"to": peers, "ports": [{"protocol": "TCP", "port": port}]} for peers, port in destinations
    ]
    egress.append(
        {
            "to": [DNS_PEER],
            "ports": [
                {"protocol": "UDP", "port": DNS_PORT},
                {"protocol": "TCP", "port": DNS_PORT},
            ],
        }
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": pod_labels},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }
