"""`mlops plan` and the whole program under mocks, for every shipped stack file."""

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from mlops_platform import cli, config, manifests, mocks, plan, program

STACKS = sorted(Path(__file__).resolve().parents[2].joinpath("stacks").glob("Pulumi.*.yaml"))
STACK_NAMES = [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_environment_has_a_stack_file():
    assert {"local", "dev", "staging", "prod", "prod-gcp"} <= set(STACK_NAMES)


@pytest.mark.parametrize("path", STACKS, ids=STACK_NAMES)
def test_stack_file_validates(path):
    platform = config.load_stack_file(path)
    assert platform.cloud.type in {"aws", "gcp", "local"}


@pytest.mark.parametrize("path", STACKS, ids=STACK_NAMES)
def test_whole_program_plans_and_every_kubernetes_object_is_valid(path, crds_dir, tmp_path):
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    result = plan.build_plan(stack, path)
    assert result.resources, f"{stack}: the program registered nothing"
    for resource in result.resources:
        assert resource.type and resource.name and resource.component
    written = plan.write_manifests(result, tmp_path)
    for file in written:
        manifests.validate(yaml.safe_load(file.read_text()))
    # every component's children sit under a component, never loose at the stack root
    loose = [
        r.name for r in result.resources if r.component == "(stack)" and "providers" not in r.type
    ]
    # the one hand-off a layer creates for the next: Alertmanager's token for the loop
    assert loose == ["mlops-loop-token"]


def test_invalid_config_registers_nothing():
    with pytest.raises(pulumi.RunError) as caught:
        mocks.run(
            program.main,
            project="mlops-infra",
            stack="broken",
            config={"mlops:cloud": '{"type": "aws"}'},
        )
    assert "stacks/Pulumi.broken.yaml" in str(caught.value)
    assert "mlops:cloud.region: Field required" in str(caught.value)


def test_plan_exit_code_and_error_for_invalid_stack_file(tmp_path, capsys):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  mlops:cloud: {type: local}\n  mlops:bogus: 1\n")
    code, out, err = run_cli(capsys, "plan", "--stack", "bad", "--stack-file", str(bad))
    assert code == 2
    assert out == ""
    assert err == f"error: invalid stack config in {bad}:\n  - mlops:bogus: unknown field\n"


def test_plan_json_lists_resources_with_type_name_parent_inputs(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "local", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "local"
    assert document["total"] == len(document["resources"]) > 0
    for resource in document["resources"]:
        assert {"type", "name", "parent", "inputs"} <= set(resource)
    assert sum(document["countsByType"].values()) == document["total"]


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_plan_text_formats_group_by_component_with_counts(capsys, fmt):
    code, out, _ = run_cli(capsys, "plan", "--stack", "local", "--format", fmt)
    assert code == 0
    result = plan.build_plan("local", plan.stack_file_path("local"))
    for component, count in result.counts_by_component.items():
        assert component in out and str(count) in out


def test_generated_secrets_never_appear_in_plan_output_or_manifests(tmp_path, capsys):
    # Under mocks every RandomPassword result is "mock-<digest>" (mlops_platform.mocks._fake_outputs).
    monitor_plan = plan.build_plan("local", plan.stack_file_path("local"))
    secrets = [r for r in monitor_plan.resources if r.type == "kubernetes:core/v1:Secret"]
    assert secrets, "the local stack stores generated credentials in Secrets"
    layers = plan.run_layers(
        "local", config.read_stack_file(plan.stack_file_path("local")).engine_config()
    )
    raw = mocks.merged([monitor for _, monitor in layers])
    raw_secrets = json.dumps([r.inputs for r in raw.of_type("kubernetes:core/v1:Secret")])
    assert "mock-" in raw_secrets, "the unmasked inputs do hold the generated values"
    for fmt in ("table", "markdown", "json"):
        code, out, err = run_cli(
            capsys,
            "plan",
            "--stack",
            "local",
            "--format",
            fmt,
            "--render-manifests",
            str(tmp_path / fmt),
        )
        assert code == 0
        assert "mock-" not in out + err
    assert mocks.SECRET_MASK in out  # the JSON form shows where the secrets are
    for manifest in (tmp_path / "json").iterdir():
        assert "mock-" not in manifest.read_text()


def test_secret_config_values_never_appear_in_any_output(tmp_path, capsys):
    stack_file = tmp_path / "Pulumi.s.yaml"
    local = yaml.safe_load(plan.stack_file_path("local").read_text())
    local["config"]["mlops:ops_token"] = {"secure": "v1:c2VjcmV0LXZhbHVl"}
    stack_file.write_text(yaml.safe_dump(local))
    code, _, err = run_cli(capsys, "plan", "--stack", "s", "--stack-file", str(stack_file))
    # the project namespace is closed: an undeclared secret key is rejected like any other
    assert code == 2
    assert "mlops:ops_token: unknown field" in err
    assert "c2VjcmV0LXZhbHVl" not in err


@pytest.mark.parametrize(
    ("stack", "bucket_type", "protected"),
    [
        ("prod", "aws:s3/bucket:Bucket", True),
        ("staging", "aws:s3/bucket:Bucket", True),
        ("dev", "aws:s3/bucket:Bucket", False),
        ("prod-gcp", "gcp:storage/bucket:Bucket", True),
    ],
)
def test_stateful_resources_protected_and_retained_from_config(stack, bucket_type, protected):
    result = plan.build_plan(stack, plan.stack_file_path(stack))
    buckets = [r for r in result.resources if r.type == bucket_type]
    # artifacts, datasets, features (+ the access-log bucket on AWS)
    assert len(buckets) >= 3
    for bucket in buckets:
        assert (bucket.protect, bucket.retain_on_delete) == (protected, protected), bucket.name
