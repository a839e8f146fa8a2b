"""Table tests of the root stack config model and the stack-file loader."""

import json
import textwrap

import pytest

from mlops_platform import config
from mlops_platform.schema import DEFAULT_PATH, render

LOCAL = {"mlops:cloud": {"type": "local"}}


def write(tmp_path, body: str):
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        ({}, [("mlops:cloud", "Field required")]),
        (
            {"mlops:cloud": {"type": "azure"}},
            [
                (
                    "mlops:cloud",
                    "Input tag 'azure' found using 'type' does not match any of the expected "
                    "tags: 'aws', 'gcp', 'local'",
                )
            ],
        ),
        ({"mlops:cloud": {"type": "aws"}}, [("mlops:cloud.region", "Field required")]),
        (
            {"mlops:cloud": {"type": "gcp", "region": "europe-west4"}},
            [("mlops:cloud.project", "Field required")],
        ),
        (
            {"mlops:cloud": {"type": "local", "kube_ctx": "kind"}},
            [("mlops:cloud.kube_ctx", "unknown field")],
        ),
        ({**LOCAL, "mlops:clustr": {}}, [("mlops:clustr", "unknown field")]),
        (
            {**LOCAL, "mlops:protect_stateful": "maybe"},
            [
                (
                    "mlops:protect_stateful",
                    "Input should be a valid boolean, unable to interpret input",
                )
            ],
        ),
    ],
)
def test_invalid_config_lists_every_problem_with_its_path(values, problems):
    with pytest.raises(config.ConfigError) as caught:
        config.validate(values, "stacks/Pulumi.x.yaml")
    assert caught.value.problems == problems
    assert str(caught.value).startswith("invalid stack config in stacks/Pulumi.x.yaml:\n  - ")


def test_all_problems_reported_at_once():
    values = {"mlops:cloud": {"type": "aws"}, "mlops:nope": 1, "mlops:protect_stateful": "x"}
    with pytest.raises(config.ConfigError) as caught:
        config.validate(values, "f.yaml")
    assert [path for path, _ in caught.value.problems] == [
        "mlops:cloud.region",
        "mlops:protect_stateful",
        "mlops:nope",
    ]


def test_other_namespaces_belong_to_providers():
    platform = config.validate({**LOCAL, "kubernetes:context": "kind-x", "aws:region": "x"}, "f")
    assert platform.cloud.type == "local"
    assert platform.cloud.kube_context == "kind-mlops"
    assert platform.protect_stateful is False


def test_stack_file_secure_values_become_secret_placeholders(tmp_path):
    path = write(
        tmp_path,
        """
        config:
          mlops:cloud: {type: local}
          grafana:adminPassword:
            secure: v1:AAAABBBBCCCC
          protect_stateful: true
        """,
    )
    stack_file = config.read_stack_file(path)
    assert stack_file.secret_keys == {"grafana:adminPassword"}
    assert stack_file.values["grafana:adminPassword"] == config.SECRET_PLACEHOLDER
    # a bare key belongs to the project namespace, as with `pulumi config set`
    assert stack_file.values["mlops:protect_stateful"] is True
    assert stack_file.engine_config()["mlops:cloud"] == json.dumps({"type": "local"})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("config: [1, 2]\n", ("config", "expected a mapping of config keys")),
        ("confg: {}\n", ("confg", "unknown top-level key in a stack file")),
        ("- a\n", ("<file>", "expected a mapping with a `config:` key")),
    ],
)
def test_malformed_stack_files(tmp_path, body, problem):
    path = write(tmp_path, body)
    with pytest.raises(config.ConfigError) as caught:
        config.read_stack_file(path)
    assert caught.value.problems == [problem]
    assert caught.value.source == str(path)


def test_unparseable_and_missing_stack_files(tmp_path):
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.read_stack_file(write(tmp_path, "config: {a: [\n"))
    with pytest.raises(config.ConfigError, match="stack file not found"):
        config.read_stack_file(tmp_path / "absent.yaml")


def test_committed_json_schema_matches_the_model():
    assert DEFAULT_PATH.read_text() == render(), "run `uv run mlops schema` and commit the result"


def test_json_schema_rejects_unknown_project_keys_and_accepts_provider_keys():
    import jsonschema

    schema = config.json_schema()
    good = {"config": {"mlops:cloud": {"type": "local"}, "aws:region": "us-east-1"}}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"config": {**good["config"], "mlops:typo": 1}}, schema)


AWS = {"mlops:cloud": {"type": "aws", "region": "us-east-1"}}
GCP = {"mlops:cloud": {"type": "gcp", "project": "p", "region": "europe-west4"}}


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (
            {
                **AWS,
                "mlops:gpu_pools": {
                    "a10g": {"instance_type": "g5.xlarge", "min_size": 3, "max_size": 1}
                },
            },
            [("mlops:gpu_pools.a10g", "min_size (3) must be <= max_size (1)")],
        ),
        (
            {**AWS, "mlops:gpu_pools": {"system": {"instance_type": "g5.xlarge"}}},
            [("mlops:gpu_pools.system", "the name is reserved for the system pool")],
        ),
        (
            {**GCP, "mlops:gpu_pools": {"l4": {"machine_type": "g2-standard-8"}}},
            [("mlops:gpu_pools.l4.accelerator", "Field required")],
        ),
        (
            {
                **LOCAL,
                "mlops:workload_identities": {
                    "mlflow": {
                        "namespace": "mlflow",
                        "service_account": "mlflow",
                        "buckets": {"models": "read"},
                    }
                },
            },
            [
                (
                    "mlops:workload_identities.mlflow.buckets",
                    "unknown bucket(s) 'models'; "
                    "storage.buckets has 'artifacts', 'datasets', 'features'",
                ),
                # the entry adds its grants to the platform's MLflow identity (which keeps
                # read_write on its artifacts): only the unknown bucket is wrong
            ],
        ),
        (
            {
                **LOCAL,
                "mlops:workload_identities": {
                    "mlflow": {
                        "namespace": "mlflow",
                        "service_account": "mlflow",
                        "buckets": {"artifacts": "write"},
                    }
                },
            },
            [
                (
                    "mlops:workload_identities.mlflow.buckets.artifacts",
                    "Input should be 'read' or 'read_write'",
                )
            ],
        ),
        (
            {
                **AWS,
                "mlops:cluster": {
                    "api_allowed_cidrs": ["0.0.0.0/0"],
                    "system_pool": {"min_size": 0},
                },
            },
            [
                (
                    "mlops:cluster.api_allowed_cidrs",
                    "0.0.0.0/0 would open the API server to the internet; "
                    "list the operators' networks instead",
                ),
                (
                    "mlops:cluster.system_pool.min_size",
                    "Input should be greater than or equal to 1",
                ),
            ],
        ),
    ],
)
def test_component_config_errors_carry_their_dotted_path(values, problems):
    with pytest.raises(config.ConfigError) as caught:
        config.validate(values, "stacks/Pulumi.x.yaml")
    assert caught.value.problems == problems


def test_defaults_are_the_secure_choice():
    platform = config.validate(AWS, "f")
    assert platform.protect_stateful is False  # production stacks turn it on explicitly
    assert platform.cluster.api_allowed_cidrs == []  # private API endpoint
    assert all(bucket.versioning for bucket in platform.storage.buckets.values())
    assert platform.gpu_pools == {}
