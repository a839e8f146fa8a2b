"""Declared exceptions: a third-party object that needs what a policy forbids, with the reason.

The Kubernetes policies run over every object the platform creates, including those inside the
Helm charts and kustomize trees (named `<release>:<namespace>/<name>`). Some of those need what
the policy forbids by design (Istio's CNI node agent runs privileged on the host network; the
Prometheus operator manages every `monitoring.coreos.com` resource). Such a need is declared in
the stack's policy config, next to the policy:

    "k8s-host-isolation": {"exceptions": [
        {"resources": ["mlops-mesh-cni:istio-cni/istio-cni-node"],
         "checks": ["hostNetwork", "hostPath"],
         "reason": "Istio's CNI node agent installs the CNI plugin on the node ..."}]}

`resources` are globs over the resource name, `checks` the policy's own check names (each
finding names its check in brackets), `reason` is required: the review of an exception is the
review of its reason. An exception covers only the checks it names; everything else the policy
checks on that object still applies.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import ReportViolation

from crossguard.props import as_list, get

EXCEPTIONS_SETTING: dict[str, dict[str, Any]] = {
    "exceptions": {
        "type": "array",
        "default": [],
        "description": "Objects excepted from some checks of this policy, each with its "
        "reason: resources (globs over resource names), checks (the policy's check names).",
        "items": {
            "type": "object",
            "properties": {
                "resources": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "checks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "reason": {"type": "string", "minLength": 20},
            },
            "required": ["resources", "checks", "reason"],
            "additionalProperties": False,
        },
    }
}


def excepted(config: Mapping[str, Any], name: str, check: str) -> bool:
    """Whether the policy config excepts resource `name` from `check`."""
    for entry in as_list(get(config, "exceptions")):
        if check in as_list(get(entry, "checks")) and any(
            fnmatch.fnmatchcase(name, pattern) for pattern in as_list(get(entry, "resources"))
        ):
            return True
    return False


Check = Callable[[str, str], None]


def checked(
    config: Mapping[str, Any], name: str, report: ReportViolation, tag: bool = True
) -> Check:
    """A `report(check, message)` that drops what the config excepts; `tag` appends the check's
    name to the message (policies whose message already names it leave it out)."""

    def report_check(check: str, message: str) -> None:
        if not excepted(config, name, check):
            report(f"{message} [{check}]" if tag else message)

    return report_check
