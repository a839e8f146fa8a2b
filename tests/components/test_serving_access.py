"""Who may call a served model: callers derived from the wiring, NetworkPolicies, the Istio
AuthorizationPolicy and the optional JWT RequestAuthentication, exact and valid against the CRDs."""

import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from mlops_platform import manifests, mocks
from mlops_platform.components.serving import ModelDeployment, ModelDeploymentArgs, model
from mlops_platform.components.serving.delivery import FlaggerWiring
from mlops_platform.components.serving.model import ModelDeploymentConfig

TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
MINIMAL = {"stable": {"model_uri": "models:/churn@champion"}, "mlflow_tracking_uri": TRACKING}
FLAGGER = FlaggerWiring(
    prometheus_url="http://prometheus.monitoring.svc.cluster.local:9090",
    load_tester_url="http://flagger-loadtester.flagger-system/",
    loop_url="http://retrain-receiver.mlops-loop.svc.cluster.local:8080",
)
JWT = {"issuer": "https://login.example.com/", "jwks_uri": "https://login.example.com/jwks"}
PODS = {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": "churn"}
LABELS = {
    **PODS,
    "app.kubernetes.io/component": "serving",
    "app.kubernetes.io/managed-by": "mlops-platform",
}


def _config(**changes) -> ModelDeploymentConfig:
    return ModelDeploymentConfig.model_validate({**MINIMAL, **changes})


def _peer(*namespaces):
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}
            ]
        }
    }


@pytest.mark.parametrize(
    ("changes", "flagger", "platform", "edge"),
    [
        ({}, None, (), ()),
        ({"client_namespaces": ["apps", "batch"]}, None, (), ("apps", "batch")),
        (
            {"gateway": "istio-ingress/public", "hosts": ["churn.example.com"]},
            None,
            (),
            ("istio-ingress",),
        ),
        ({"progressive": {}}, FLAGGER, ("flagger-system", "mlops-loop"), ()),
        ({"progressive": {"load_test": {"enabled": False}}}, FLAGGER, ("mlops-loop",), ()),
        (
            {"progressive": {}},
            FlaggerWiring(FLAGGER.prometheus_url, FLAGGER.load_tester_url),
            ("flagger-system",),
            (),
        ),
        # Flagger wiring without progressive delivery: nobody from Flagger calls the model.
        ({}, FLAGGER, (), ()),
    ],
)
def test_callers_are_derived_from_the_wiring(changes, flagger, platform, edge):
    who = model.callers(_config(**changes), flagger, "monitoring")
    assert (who.platform, who.edge, who.prometheus) == (platform, edge, "monitoring")


def test_service_namespace_reads_the_kubernetes_dns_name():
    assert model.service_namespace("http://a.b/") == "b"
    assert model.service_namespace("http://a.b.svc.cluster.local:9090/x") == "b"
    with pytest.raises(ValueError, match=r"'http://localhost:8080' is not an in-cluster service"):
        model.service_namespace("http://localhost:8080")


def test_network_policies_let_callers_and_prometheus_in_and_nothing_else(crds_dir):
    config = _config(client_namespaces=["apps"], gateway="istio-ingress/public", hosts=["a.io"])
    who = model.callers(config, None, "monitoring")
    policies = model.network_policies("churn", config, who)
    assert policies == {
        "callers": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "churn-callers", "namespace": "serving", "labels": LABELS},
            "spec": {
                "podSelector": {"matchLabels": PODS},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [_peer("apps", "istio-ingress")],
                        "ports": [{"protocol": "TCP", "port": 8080}],
                    }
                ],
            },
        },
        "metrics": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "churn-metrics", "namespace": "serving", "labels": LABELS},
            "spec": {
                "podSelector": {"matchLabels": PODS},
                "policyTypes": ["Ingress"],
                # Istio's merged metrics endpoint (pilot-agent), scraped by the PodMonitor.
                "ingress": [
                    {"from": [_peer("monitoring")], "ports": [{"protocol": "TCP", "port": 15020}]}
                ],
            },
        },
    }
    for obj in policies.values():
        manifests.validate(obj)


def test_without_the_sidecar_prometheus_scrapes_the_serving_port():
    config = _config(istio_sidecar=False)
    policies = model.network_policies("churn", config, model.callers(config, None, "monitoring"))
    assert list(policies) == ["metrics"]
    assert policies["metrics"]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_nobody_wired_means_no_ingress_at_all(crds_dir):
    policies = model.network_policies("churn", _config(), model.callers(_config()))
    assert policies == {
        "deny": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "churn-deny-ingress", "namespace": "serving", "labels": LABELS},
            # No ingress rule: nothing is allowed (an empty `from` would allow everyone).
            "spec": {"podSelector": {"matchLabels": PODS}, "policyTypes": ["Ingress"]},
        }
    }
    manifests.validate(policies["deny"])


def _authorization(**changes):
    config = _config(**changes)
    flagger = FLAGGER if "progressive" in changes else None
    return model.authorization_policy("churn", config, model.callers(config, flagger, "monitoring"))


def test_authorization_policy_allows_platform_callers_and_clients_on_the_serving_port(crds_dir):
    policy = _authorization(progressive={}, client_namespaces=["apps"])
    assert policy == {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "churn", "namespace": "serving", "labels": LABELS},
        "spec": {
            "selector": {"matchLabels": PODS},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"namespaces": ["flagger-system", "mlops-loop"]}}],
                    "to": [{"operation": {"ports": ["8080"]}}],
                },
                {
                    "from": [{"source": {"namespaces": ["apps"]}}],
                    "to": [{"operation": {"ports": ["8080"]}}],
                },
            ],
        },
    }
    manifests.validate(policy)


def test_authorization_policy_without_callers_matches_nothing(crds_dir):
    policy = _authorization()
    # An ALLOW policy with no rule: Istio refuses every request to the pods.
    assert policy["spec"] == {"selector": {"matchLabels": PODS}, "action": "ALLOW"}
    manifests.validate(policy)


def test_jwt_is_required_from_end_users_but_not_from_platform_callers(crds_dir):
    config = _config(
        progressive={},
        gateway="istio-ingress/public",
        hosts=["churn.example.com"],
        authentication={**JWT, "audiences": ["churn"]},
    )
    rendered = model.render("churn", config, flagger=FLAGGER, prometheus_namespace="monitoring")
    assert rendered.request_authentication == {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": "churn", "namespace": "serving", "labels": LABELS},
        "spec": {
            "selector": {"matchLabels": PODS},
            "jwtRules": [
                {
                    "issuer": "https://login.example.com/",
                    "jwksUri": "https://login.example.com/jwks",
                    "forwardOriginalToken": False,
                    "audiences": ["churn"],
                }
            ],
        },
    }
    assert rendered.authorization_policy is not None
    rules = rendered.authorization_policy["spec"]["rules"]
    assert [rule["from"][0]["source"] for rule in rules] == [
        {"namespaces": ["flagger-system", "mlops-loop"]},
        {"namespaces": ["istio-ingress"], "requestPrincipals": ["https://login.example.com//*"]},
    ]
    for obj in rendered.objects():
        manifests.validate(obj)


def test_authentication_is_off_by_default():
    rendered = model.render("churn", _config())
    assert rendered.request_authentication is None
    assert "RequestAuthentication" not in [o["kind"] for o in rendered.objects()]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"authentication": JWT, "istio_sidecar": False},
            ": Value error, authentication needs istio_sidecar: the sidecar validates the tokens",
        ),
        (
            {"authentication": {**JWT, "jwks_uri": "http://login.example.com/jwks"}},
            "authentication.jwks_uri: Value error, jwks_uri 'http://login.example.com/jwks' "
            "must be an https:// URL",
        ),
        (
            {"authentication": {**JWT, "issuer": " "}},
            "authentication.issuer: Value error, issuer ' ' must be a non-empty value without "
            "spaces",
        ),
        (
            {"authentication": {"issuer": "https://x"}},
            "authentication.jwks_uri: Field required",
        ),
        (
            {"client_namespaces": ["Apps"]},
            "client_namespaces: Value error, client_namespaces 'Apps' must be a DNS label: at "
            "most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ),
        (
            {"client_namespaces": ["apps", "apps"]},
            "client_namespaces: Value error, client_namespaces: each namespace may appear once",
        ),
    ],
)
def test_config_errors_name_the_field(changes, message):
    with pytest.raises(ValidationError) as info:
        _config(**changes)
    [error] = info.value.errors()
    assert ".".join(str(p) for p in error["loc"]) + ": " + error["msg"] == message


def test_resource_layer_registers_the_access_objects_as_rendered():
    config = _config(client_namespaces=["apps"], authentication=JWT)

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        ModelDeployment(
            "churn",
            ModelDeploymentArgs(config=config, kubernetes=provider, prometheus_namespace="mon"),
        )

    monitor = mocks.run(program)
    rendered = model.render("churn", config, prometheus_namespace="mon")
    expected = {
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "churn-callers-network-policy"): (
            rendered.network_policies["callers"]
        ),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "churn-metrics-network-policy"): (
            rendered.network_policies["metrics"]
        ),
        ("kubernetes:security.istio.io/v1:AuthorizationPolicy", "churn-authorization-policy"): (
            rendered.authorization_policy
        ),
        (
            "kubernetes:security.istio.io/v1:RequestAuthentication",
            "churn-request-authentication",
        ): rendered.request_authentication,
    }
    parent = monitor.named("churn").urn
    for (type_, name), obj in expected.items():
        record = monitor.named(name)
        assert (record.type, record.parent) == (type_, parent), name
        assert record.inputs == obj, name
