"""The offline manifest validator: built-in kinds and custom resources, strict."""

import pytest

from mlops_platform import manifests

RULE = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "drift"},
    "spec": {
        "groups": [
            {
                "name": "model",
                "rules": [{"alert": "Drift", "expr": "psi > 0.2", "for": "15m"}],
            }
        ]
    },
}


VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "churn", "namespace": "serving", "labels": {"app": "churn"}},
    "spec": {
        "hosts": ["churn"],
        "http": [
            {"route": [{"destination": {"host": "churn", "subset": "stable"}, "weight": 100}]}
        ],
    },
}


def test_valid_builtin_and_custom_objects_pass(crds_dir):
    manifests.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
    manifests.validate(RULE)
    manifests.validate(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {"name": "predictions", "labels": {"strimzi.io/cluster": "kafka"}},
            "spec": {"partitions": 6, "replicas": 3},
        }
    )
    # Istio's CRDs declare only spec/status at the root; the envelope is still accepted.
    manifests.validate(VIRTUAL_SERVICE)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spek": {}},
            "Namespace x (v1) is invalid at <root>: Additional properties are not allowed "
            "('spek' was unexpected)",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "x", "labels": {"a": 1}},
            },
            "ServiceAccount x (v1) is invalid at metadata.labels.a: "
            "1 is not of type 'string', 'null'",
        ),
        (
            {
                **RULE,
                "spec": {
                    "groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "lables": {}}]}]
                },
            },
            "PrometheusRule drift (monitoring.coreos.com/v1) does not match its CRD:\n"
            "  spec.groups.0.rules.0: Additional properties are not allowed "
            "('lables' was unexpected)",
        ),
        (
            {**VIRTUAL_SERVICE, "metadata": {"name": "churn", "labels": {"a": 1}}},
            "VirtualService churn (networking.istio.io/v1) is invalid at metadata.labels.a: "
            "1 is not of type 'string', 'null'",
        ),
        (
            {**VIRTUAL_SERVICE, "metadata": {"name": "churn", "label": {"a": "b"}}},
            "VirtualService churn (networking.istio.io/v1) is invalid at metadata: "
            "Additional properties are not allowed ('label' was unexpected)",
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "f"}},
            "Foo f (example.com/v1): no schema for this kind in Kubernetes 1.35",
        ),
    ],
)
def test_invalid_objects_are_named_with_the_problem(crds_dir, obj, message):
    with pytest.raises(manifests.ManifestError) as caught:
        manifests.validate(obj)
    assert str(caught.value).startswith(message)


def test_int_or_string_and_nullable_crd_fields(crds_dir):
    schema = manifests._to_json_schema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    )
    assert schema == {
        "type": "object",
        "properties": {
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "note": {"type": ["string", "null"]},
            "free": {"type": "object"},
        },
        "additionalProperties": False,
    }
