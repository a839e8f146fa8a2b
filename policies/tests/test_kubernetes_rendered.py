"""The Kubernetes policies over the objects the charts and kustomize trees create (rendered by
`mlops plan`, fixtures/rendered/<stack>.json), and the declared exceptions: each one is needed
(removing it brings back a finding), each one covers only what it names, none lacks a reason."""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path

import jsonschema
import pytest
from crossguard import exceptions, identity, kubernetes, supply_chain
from crossguard.pack import POLICIES
from harness import DELETE, STACKS, edited, load_plan, load_rendered, resource_args, violations

CONFIG = Path(__file__).parents[1] / "config"
PROD = load_plan("prod", rendered=True)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# Names are unique per type (a chart's Deployment, Service and ServiceAccount share one).
BY_NAME = {(r["type"], r["name"]): r for r in PROD["resources"]}
# A third-party workload the pack passes as rendered (Flagger's controller, from its chart).
FLAGGER = BY_NAME[DEPLOYMENT, "mlops-delivery-flagger:flagger-system/flagger"]
# The platform's own model server (the program's Deployment).
MODEL_SERVER = BY_NAME[DEPLOYMENT, "churn-release"]
POD = "spec.template.spec"
CONTAINER = f"{POD}.containers.0"
WORKLOAD_POLICIES = [
    kubernetes.no_privileged_containers,
    kubernetes.host_isolation,
    kubernetes.container_security_context,
    kubernetes.container_resources,
    supply_chain.images_allowed_registries,
]


def config(stack: str) -> dict:
    return json.loads((CONFIG / f"{stack}.json").read_text())


def check(policy, resource, path=None, value=None, settings=None) -> list[str]:
    inputs = resource["inputs"] if path is None else edited(resource["inputs"], path, value)
    return violations(policy, resource_args(PROD, resource, inputs, config=settings))


def test_rendered_objects_carry_their_release_and_provider_type():
    rendered = load_rendered("prod")
    assert FLAGGER["type"] == "kubernetes:apps/v1:Deployment"
    assert FLAGGER["renderedBy"] == FLAGGER["parent"] == "mlops-delivery-flagger"
    assert FLAGGER["inputs"]["metadata"]["namespace"] == "flagger-system"
    kinds = {r["type"] for r in rendered}
    assert {
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:core/v1:Service",
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    } <= kinds
    # Cluster-scoped objects carry no namespace in their name.
    cluster_role = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
    assert (cluster_role, "mlops-delivery-flagger:flagger") in BY_NAME
    sources = {r["renderedBy"] for r in rendered}
    assert "mlops-pipelines-platform-agnostic" in sources  # the KFP kustomize tree
    assert all(r["layer"] for r in rendered)


@pytest.mark.parametrize("resource", [FLAGGER, MODEL_SERVER], ids=["chart", "program"])
def test_hardened_workloads_pass_every_workload_policy(resource):
    for policy in WORKLOAD_POLICIES:
        assert check(policy, resource) == [], policy.name


# (policy, field path, value, message after the subject) — one field changed per case.
CASES = [
    (kubernetes.no_privileged_containers, f"{CONTAINER}.securityContext.privileged", True,
     "spec.template.spec.containers[0].securityContext.privileged must not be true [privileged]"),
    (kubernetes.host_isolation, f"{POD}.hostNetwork", True,
     "spec.template.spec.hostNetwork must not be true [hostNetwork]"),
    (kubernetes.host_isolation, f"{POD}.hostPID", True,
     "spec.template.spec.hostPID must not be true [hostPID]"),
    (kubernetes.host_isolation, f"{POD}.hostIPC", True,
     "spec.template.spec.hostIPC must not be true [hostIPC]"),
    (kubernetes.host_isolation, f"{POD}.volumes", [{"name": "root", "hostPath": {"path": "/"}}],
     'spec.template.spec.volumes[0] ("root") must not mount a hostPath ("/") [hostPath]'),
    (kubernetes.host_isolation, f"{CONTAINER}.ports",
     [{"containerPort": 8080, "hostPort": 8080}],
     "spec.template.spec.containers[0].ports[0].hostPort 8080 binds a node port [hostPort]"),
    (kubernetes.container_security_context,
     f"{CONTAINER}.securityContext.allowPrivilegeEscalation", True,
     "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation must be false "
     "[allowPrivilegeEscalation]"),
    (kubernetes.container_security_context,
     f"{CONTAINER}.securityContext.allowPrivilegeEscalation", DELETE,
     "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation must be false "
     "[allowPrivilegeEscalation]"),
    (kubernetes.container_security_context, f"{CONTAINER}.securityContext.capabilities.drop",
     ["NET_RAW"],
     "spec.template.spec.containers[0].securityContext.capabilities.drop must contain ALL "
     "[capabilities]"),
    (kubernetes.container_security_context, f"{CONTAINER}.securityContext.capabilities.add",
     ["SYS_ADMIN"],
     'spec.template.spec.containers[0].securityContext.capabilities.add must not add '
     '["SYS_ADMIN"] [capabilities]'),
    (kubernetes.container_resources, f"{CONTAINER}.resources.requests.cpu", DELETE,
     "spec.template.spec.containers[0].resources.requests.cpu must be set [cpuRequest]"),
    (kubernetes.container_resources, f"{CONTAINER}.resources.requests.memory", DELETE,
     "spec.template.spec.containers[0].resources.requests.memory must be set [memoryRequest]"),
    (kubernetes.container_resources, f"{CONTAINER}.resources.limits.memory", DELETE,
     "spec.template.spec.containers[0].resources.limits.memory must be set [memoryLimit]"),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "path", "value", "message"), CASES)
@pytest.mark.parametrize("resource", [FLAGGER, MODEL_SERVER], ids=["chart", "program"])
def test_one_field_changed_is_one_finding(resource, policy, path, value, message):
    who = f"Deployment '{resource['name']}': "
    assert check(policy, resource, path, value) == [who + message]


@pytest.mark.parametrize("resource", [FLAGGER, MODEL_SERVER], ids=["chart", "program"])
def test_root_user_and_seccomp(resource):
    context = f"{CONTAINER}.securityContext"
    who = f"Deployment '{resource['name']}': {CONTAINER.replace('.0', '[0]')}.securityContext"
    inputs = edited(resource["inputs"], f"{context}.runAsUser", 0)
    assert violations(
        kubernetes.container_security_context, resource_args(PROD, resource, inputs)
    ) == [f"{who}.runAsUser must not be 0 (root) [runAsNonRoot]"]
    inputs = edited(resource["inputs"], f"{context}.seccompProfile", {"type": "Unconfined"})
    assert violations(
        kubernetes.container_security_context, resource_args(PROD, resource, inputs)
    ) == [
        f"{who}.seccompProfile.type (or the pod's) must be RuntimeDefault or Localhost, got "
        '"Unconfined" [seccompProfile]'
    ]


def test_the_pod_level_context_counts_for_its_containers():
    inputs = copy.deepcopy(MODEL_SERVER["inputs"])
    pod = inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]["securityContext"]
    for field in ("runAsNonRoot", "runAsUser", "seccompProfile"):
        container.pop(field, None)
    args = resource_args(PROD, MODEL_SERVER, inputs)
    assert violations(kubernetes.container_security_context, args) == []
    pod["securityContext"] = {}
    args = resource_args(PROD, MODEL_SERVER, inputs)
    assert [
        m.rsplit("[", 1)[-1] for m in violations(kubernetes.container_security_context, args)
    ] == ["runAsNonRoot]", "seccompProfile]"]


def test_docker_hub_image_in_a_chart_object():
    path = f"{CONTAINER}.image"
    assert check(supply_chain.images_allowed_registries, FLAGGER, path, "nginx:1.27") == [
        f"Deployment '{FLAGGER['name']}': spec.template.spec.containers[0].image \"nginx:1.27\" "
        "comes from docker.io, which is not in allowedRegistries"
    ]


# --- exceptions --------------------------------------------------------------------------------


def test_an_exception_covers_only_the_checks_and_objects_it_names():
    hostile = edited(FLAGGER["inputs"], f"{POD}.hostNetwork", True)
    hostile = edited(hostile, f"{POD}.hostPID", True)
    entry = {
        "resources": ["mlops-delivery-flagger:*"],
        "checks": ["hostNetwork"],
        "reason": "a reason long enough to be read",
    }
    settings = {"exceptions": [entry]}
    found = violations(
        kubernetes.host_isolation, resource_args(PROD, FLAGGER, hostile, config=settings)
    )
    assert found == [f"Deployment '{FLAGGER['name']}': {POD}.hostPID must not be true [hostPID]"]
    # The same exception does not reach the program's model server.
    hostile = edited(MODEL_SERVER["inputs"], f"{POD}.hostNetwork", True)
    found = violations(
        kubernetes.host_isolation, resource_args(PROD, MODEL_SERVER, hostile, config=settings)
    )
    assert found == [
        f"Deployment 'churn-release': {POD}.hostNetwork must not be true [hostNetwork]"
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"resources": ["x"], "checks": ["hostPath"]},
        {"resources": ["x"], "checks": ["hostPath"], "reason": "short"},
        {"resources": [], "checks": ["hostPath"], "reason": "a reason long enough to be read"},
        {"resources": ["x"], "checks": ["hostPath"], "reason": "a long enough reason", "why": 1},
    ],
)
def test_the_engine_refuses_an_exception_without_a_reason_or_target(entry):
    schema = {"type": "object", "properties": kubernetes.EXCEPTIONS.properties}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"exceptions": [entry]}, schema)


EXCEPTION_POLICIES = {
    p.name: p
    for p in (
        *WORKLOAD_POLICIES,
        identity.k8s_rbac_no_wildcards,
        identity.k8s_rbac_no_admin_grants,
    )
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_exception_is_needed_check_by_check(stack):
    """Dropping one check of one exception brings back at least one finding: no exception is
    stale, none is wider in checks than the stack needs."""
    plan = load_plan(stack, rendered=True)
    settings = config(stack)
    declared = 0
    for name, values in settings.items():
        entries = values.get("exceptions", [])
        if not entries:
            continue
        assert name in EXCEPTION_POLICIES, f"{stack}: {name} takes no exceptions"
        policy = EXCEPTION_POLICIES[name]
        for index, entry in enumerate(entries):
            targets = [
                r
                for r in plan["resources"]
                if any(fnmatch.fnmatchcase(r["name"], g) for g in entry["resources"])
            ]
            assert targets, f"{stack}: {name} exceptions[{index}] matches no resource"
            for check_name in entry["checks"]:
                declared += 1
                narrowed = copy.deepcopy(values)
                narrowed["exceptions"][index]["checks"].remove(check_name)
                narrowed.pop("enforcementLevel", None)
                found = [
                    m
                    for r in targets
                    for m in violations(policy, resource_args(plan, r, config=narrowed))
                ]
                assert found, f"{stack}: {name} exceptions[{index}] {check_name} is not needed"
    assert declared > 0


def test_every_policy_with_exceptions_declares_the_setting():
    for policy in POLICIES:
        properties = getattr(policy.config_schema, "properties", None) or {}
        if policy.name in EXCEPTION_POLICIES:
            assert properties.get("exceptions") == exceptions.EXCEPTIONS_SETTING["exceptions"]
