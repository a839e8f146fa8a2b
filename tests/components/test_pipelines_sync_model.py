"""Kubeflow Pipelines, pure layer of the sync: schedules, parameters read from the compiled
pipelines, the spec, the digest, and the ConfigMap and Job it names (Kubernetes 1.35)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mlops_platform import config as root_config
from mlops_platform import manifests
from mlops_platform.components.pipelines import model
from mlops_platform.components.pipelines.model import PipelineInput, PipelinesConfig, ScheduleConfig
from mlops_platform.pipelines import sync

KFP_MANIFESTS = (
    Path(__file__).resolve().parents[3]
    / "shared/charts/kustomize/kubeflow-pipelines-2.16.1/manifests/kustomize"
)
DRIFT = {
    "pipeline": "drift",
    "cron": "0 0 2 * * *",
    "parameters": {
        "data_uri": "s3://acme-datasets/churn/latest.parquet",
        "reference_uri": "s3://acme-datasets/churn/reference.parquet",
        "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
    },
}


# The pipelines may gain inputs (another change recompiles them): the lists come from the YAML.
DECLARED = {name: ", ".join(sorted(model.pipeline_inputs(name))) for name in ("drift", "training")}


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        PipelinesConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


def _schedule(**changes) -> dict:
    return {"schedules": {"nightly": {**DRIFT, **changes}}}


# --- the shipped pipelines and their inputs ---------------------------------------------------


def test_shipped_pipelines_are_the_compiled_ones():
    folder = model.OVERLAY_DIR.parents[3] / "mlops_platform/pipelines/pipelines"
    shipped = {name: path.relative_to(folder) for name, path in model.SHIPPED_PIPELINES.items()}
    assert shipped == {
        "training": Path("training_pipeline.yaml"),
        "drift": Path("drift_pipeline.yaml"),
        "windows_drift": Path("windows_drift_pipeline.yaml"),
        "batch_scoring": Path("batch_scoring_pipeline.yaml"),
        "feature_store_training": Path("feature_store_training_pipeline.yaml"),
    }


def test_inputs_are_read_from_the_compiled_yaml():
    drift = model.pipeline_inputs("drift")
    assert {n for n, i in drift.items() if i.required} == {"data_uri", "tracking_uri"}
    # Empty: the champion's training data, from its lineage (champion_reference).
    assert drift["reference_uri"] == PipelineInput(type="STRING", required=False)
    windows = model.pipeline_inputs("windows_drift")
    assert {n for n, i in windows.items() if i.required} == {"bucket_uri", "tracking_uri"}
    scoring = model.pipeline_inputs("batch_scoring")
    assert {n for n, i in scoring.items() if i.required} == {"data_uri", "tracking_uri"}
    assert drift["psi_threshold"] == PipelineInput(type="NUMBER_DOUBLE", required=False)
    assert drift["season_days"] == PipelineInput(type="NUMBER_INTEGER", required=False)
    assert "psi_threshold" not in model.pipeline_inputs("training")
    assert {n for n, i in model.pipeline_inputs("training").items() if i.required} == {
        "data_uri",
        "tracking_uri",
    }


def test_declared_inputs_follow_the_document():
    document = {
        "root": {
            "inputDefinitions": {
                "parameters": {
                    "a": {"parameterType": "STRING"},
                    "b": {"parameterType": "BOOLEAN", "defaultValue": True},
                    "c": {"parameterType": "LIST", "isOptional": True},
                }
            }
        }
    }
    assert model.declared_inputs(document) == {
        "a": PipelineInput(type="STRING", required=True),
        "b": PipelineInput(type="BOOLEAN", required=False),
        "c": PipelineInput(type="LIST", required=False),
    }
    assert model.declared_inputs({"root": {}}) == {}
    inputs = model.declared_inputs(document)
    assert model.parameter_problems("p", inputs, {"a": "x", "b": False}) == []
    assert model.parameter_problems("p", inputs, {"a": "x", "c": "[1]"}) == [
        "'c' is a LIST input: not settable from config"
    ]
    assert model.parameter_problems("p", inputs, {"a": "x", "b": 1}) == [
        "'b' of pipeline 'p' is BOOLEAN: 1 (int) does not fit"
    ]


# --- schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 2 * * *",
        "0 30 3 * * SUN",
        "0 */15 * * * *",
        "0 0 6 ? * MON-FRI",
        "30 0 0 1,15 JAN-jun ?",
        "0 0 0-23/6 * * *",
        "59 59 23 31 12 6",
    ],
)
def test_valid_crons(cron):
    assert ScheduleConfig(**{**DRIFT, "cron": cron}).cron == cron


SIX_FIELDS = (
    "KFP's cron has 6 (second minute hour day-of-month month day-of-week, in UTC: "
    "'0 0 2 * * *' is 02:00:00 UTC every day)"
)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (
            "0 2 * * *",
            f"cron '0 2 * * *' has 5 fields; {SIX_FIELDS}; with seconds first: '0 0 2 * * *'",
        ),
        ("@daily", f"cron '@daily' has 1 fields; {SIX_FIELDS}"),
        ("0 0 2 * * * 2027", f"cron '0 0 2 * * * 2027' has 7 fields; {SIX_FIELDS}"),
        ("60 0 2 * * *", "cron '60 0 2 * * *': second '60' is not in 0-59"),
        ("0 0 24 * * *", "cron '0 0 24 * * *': hour '24' is not in 0-23"),
        ("0 0 2 0 * *", "cron '0 0 2 0 * *': day-of-month '0' is not in 1-31"),
        ("0 0 2 * 13 *", "cron '0 0 2 * 13 *': month '13' is not in 1-12"),
        ("0 0 2 * * 7", "cron '0 0 2 * * 7': day-of-week '7' is not in 0-6"),
        ("0 0 2 * * SUNDAY", "cron '0 0 2 * * SUNDAY': day-of-week 'SUNDAY' is not in 0-6"),
        ("0 0/0 * * * *", "cron '0 0/0 * * * *': minute step '0' must be a positive number"),
        ("0 5-1 * * * *", "cron '0 5-1 * * * *': minute range '5-1' runs backwards"),
        (
            "? 0 2 * * *",
            "cron '? 0 2 * * *': '?' is only valid for day-of-month and day-of-week, not second",
        ),
        ("0 0 2 * * L", "cron '0 0 2 * * L': day-of-week 'L' is not in 0-6"),
    ],
)
def test_invalid_crons_name_the_field(cron, message):
    assert _error(_schedule(cron=cron)) == f"schedules.nightly.cron: Value error, {message}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"pipeline": "nowcast"},
            "schedules.nightly.pipeline: Value error, pipeline 'nowcast' is not a shipped "
            "pipeline; choose 'training', 'drift', 'windows_drift', 'batch_scoring', "
            "'feature_store_training'",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "psi": 0.3}},
            "schedules.nightly.parameters: Value error, 'psi' is not an input of pipeline "
            f"'drift'; it declares {DECLARED['drift']}",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "season_days": "7"}},
            "schedules.nightly.parameters: Value error, 'season_days' of pipeline 'drift' is "
            "NUMBER_INTEGER: '7' (str) does not fit",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "season_days": 7.5}},
            "schedules.nightly.parameters: Value error, 'season_days' of pipeline 'drift' is "
            "NUMBER_INTEGER: 7.5 (float) does not fit",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "psi_threshold": True}},
            "schedules.nightly.parameters: Value error, 'psi_threshold' of pipeline 'drift' is "
            "NUMBER_DOUBLE: True (bool) does not fit",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "tracking_uri": 5000}},
            "schedules.nightly.parameters: Value error, 'tracking_uri' of pipeline 'drift' is "
            "STRING: 5000 (int) does not fit",
        ),
        (
            {"parameters": {"reference_uri": "s3://x/y"}},  # tracking_uri: the platform's
            "schedules.nightly.parameters: Value error, pipeline 'drift' requires 'data_uri' "
            "(no default)",
        ),
        (
            {"pipeline": "training"},  # drift's reference_uri is not a training input
            "schedules.nightly.parameters: Value error, 'reference_uri' is not an input of "
            f"pipeline 'training'; it declares {DECLARED['training']}",
        ),
        (
            {"parameters": {**DRIFT["parameters"], "seed": [1]}},
            "schedules.nightly.parameters: Value error, 'seed': [1] is not a string, number or "
            "boolean",
        ),
        (
            {"max_concurrency": 0},
            "schedules.nightly.max_concurrency: Input should be greater than or equal to 1",
        ),
        ({"timezone": "UTC"}, "schedules.nightly.timezone: Extra inputs are not permitted"),
    ],
)
def test_invalid_schedules_name_the_field(changes, message):
    assert _error(_schedule(**changes)) == message


def test_parameters_of_compatible_types_are_kept_as_given():
    schedule = ScheduleConfig(
        **{
            **DRIFT,
            "parameters": {
                **DRIFT["parameters"],
                "psi_threshold": 1,  # an integer is a valid double
                "season_days": 14,
                "primary_metric": "pr_auc",
            },
        }
    )
    assert schedule.parameters["psi_threshold"] == 1
    assert type(schedule.parameters["season_days"]) is int


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"schedules": {"Nightly": DRIFT}},
            "schedules: Value error, schedules.Nightly: a schedule key is its recurring run's "
            "name: at most 40 lowercase letters, digits or '-', starting and ending with a "
            "letter or digit",
        ),
        (
            {"schedules": {"n" * 41: DRIFT}},
            f"schedules: Value error, schedules.{'n' * 41}: a schedule key is its recurring "
            "run's name: at most 40 lowercase letters, digits or '-', starting and ending with "
            "a letter or digit",
        ),
        (
            {"experiment": "churn/prod"},
            "experiment: Value error, experiment 'churn/prod' must be 1-63 letters, digits, "
            "spaces, '.', '_' or '-', starting with a letter or digit",
        ),
        (
            {"sync_image": "ghcr.io/mlops-platform/platform:latest"},
            "sync_image: Value error, sync_image 'ghcr.io/mlops-platform/platform:latest' must "
            "be pinned to a tag other than latest, or to a digest",
        ),
        (
            {"publish": False, "schedules": {"nightly": DRIFT}},
            "Value error, schedules need publish: true (the sync Job creates them)",
        ),
    ],
)
def test_invalid_pipelines_config_names_the_field(data, message):
    assert _error(data).lstrip(": ") == message


def test_a_stack_error_names_the_key_and_the_file():
    values = {
        "mlops:cloud": {"type": "local"},
        "mlops:pipelines": {"schedules": {"nightly": {**DRIFT, "cron": "0 2 * * *"}}},
    }
    with pytest.raises(root_config.ConfigError) as info:
        root_config.validate(values, "stacks/Pulumi.staging.yaml")
    text = str(info.value)
    assert text.startswith("invalid stack config in stacks/Pulumi.staging.yaml:\n")
    assert "  - mlops:pipelines.schedules.nightly.cron: cron '0 2 * * *' has 5 fields" in text


# --- the spec, the digest and the objects -----------------------------------------------------


def _config(**schedules) -> PipelinesConfig:
    return PipelinesConfig(schedules=schedules)


def test_spec_names_pipelines_by_their_compiled_name_and_runs_as_the_runner():
    spec = json.loads(model.sync_files(_config(nightly=DRIFT))["spec.json"])
    assert spec["pipelines"] == [
        {
            "name": "churn-batch-scoring",
            "file": "batch_scoring.yaml",
            "description": model.pipeline_info(model.pipeline_texts()["batch_scoring"])[1],
        },
        {
            "name": "churn-drift",
            "file": "drift.yaml",
            "description": model.pipeline_info(model.pipeline_texts()["drift"])[1],
        },
        {
            "name": "churn-training-feature-store",
            "file": "feature_store_training.yaml",
            "description": model.pipeline_info(model.pipeline_texts()["feature_store_training"])[1],
        },
        {
            "name": "churn-training",
            "file": "training.yaml",
            "description": model.pipeline_info(model.pipeline_texts()["training"])[1],
        },
        {
            "name": "churn-windows-drift",
            "file": "windows_drift.yaml",
            "description": model.pipeline_info(model.pipeline_texts()["windows_drift"])[1],
        },
    ]
    assert spec["experiment"]["name"] == "churn"
    assert spec["recurring_runs"] == {
        "nightly": {
            "pipeline": "churn-drift",
            "cron": "0 0 2 * * *",
            "parameters": DRIFT["parameters"],
            "enabled": True,
            "max_concurrency": 1,
            "no_catchup": True,
            "service_account": "pipeline-runner",
        }
    }


def test_files_are_the_spec_and_the_committed_yaml_byte_for_byte():
    files = model.sync_files(_config())
    assert sorted(files) == [
        "batch_scoring.yaml",
        "drift.yaml",
        "feature_store_training.yaml",
        "spec.json",
        "training.yaml",
        "windows_drift.yaml",
    ]
    for name, path in model.SHIPPED_PIPELINES.items():
        assert files[f"{name}.yaml"] == path.read_text()
    assert json.loads(files["spec.json"])["recurring_runs"] == {}


def test_the_program_reads_what_the_model_writes(tmp_path):
    for name, text in model.sync_files(_config(nightly=DRIFT)).items():
        (tmp_path / name).write_text(text)
    spec = sync.load_spec(tmp_path)
    assert spec.experiment == "churn"
    assert [p.name for p in spec.pipelines] == [
        "churn-batch-scoring",
        "churn-drift",
        "churn-training-feature-store",
        "churn-training",
        "churn-windows-drift",
    ]
    (run,) = spec.recurring_runs
    assert (run.key, run.pipeline, run.no_catchup) == ("nightly", "churn-drift", True)


BASE = _config(nightly=DRIFT)


@pytest.mark.parametrize(
    ("config", "texts", "reruns"),
    [
        (BASE, None, False),
        (BASE.model_copy(update={"pipeline_root_prefix": "kfp"}), None, False),
        (BASE.model_copy(update={"artifact_bucket": "datasets"}), None, False),
        (_config(nightly={**DRIFT, "cron": "0 0 3 * * *"}), None, True),
        (_config(nightly={**DRIFT, "enabled": False}), None, True),
        (
            _config(nightly={**DRIFT, "parameters": {**DRIFT["parameters"], "psi_threshold": 0.3}}),
            None,
            True,
        ),
        (_config(nightly=DRIFT, weekly={**DRIFT, "cron": "0 0 3 * * SUN"}), None, True),
        (_config(), None, True),
        (BASE.model_copy(update={"experiment": "churn-prod"}), None, True),
        (
            BASE.model_copy(update={"sync_image": "ghcr.io/mlops-platform/platform:0.1.1"}),
            None,
            True,
        ),
        (BASE, {**model.pipeline_texts(), "drift": model.pipeline_texts()["drift"] + "\n"}, True),
    ],
)
def test_the_job_runs_again_exactly_when_what_it_does_changes(config, texts, reruns):
    assert (model.sync_digest(config, texts) != model.sync_digest(BASE)) is reruns
    name = model.sync_object_name(config, texts)
    assert name == f"kfp-sync-{model.sync_digest(config, texts)}"
    assert model.sync_job(config, texts)["metadata"]["name"] == name
    assert model.sync_config_map(config, texts)["metadata"]["name"] == name


def test_config_map_is_immutable_valid_and_fits():
    config_map = model.sync_config_map(BASE)
    manifests.validate(config_map)
    assert config_map["immutable"] is True
    assert config_map["metadata"]["namespace"] == "kubeflow"
    # The API server refuses ConfigMaps over 1 MiB.
    assert sum(len(k) + len(v.encode()) for k, v in config_map["data"].items()) < 1024 * 1024 // 2


def test_job_runs_the_module_unprivileged_against_the_in_cluster_api():
    job = model.sync_job(BASE)
    manifests.validate(job)
    name = model.sync_object_name(BASE)
    assert job["metadata"] == {
        "name": name,
        "namespace": "kubeflow",
        "labels": {
            "app.kubernetes.io/name": "kfp-sync",
            "app.kubernetes.io/component": "sync",
            "app.kubernetes.io/part-of": "kfp-sync",
            "app.kubernetes.io/managed-by": "mlops-platform",
        },
    }
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (4, 1800)
    assert spec["activeDeadlineSeconds"] > model.SYNC_API_TIMEOUT_SECONDS
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/mlops-platform/platform:0.1.0"
    assert container["command"] == ["python", "-m", "mlops_platform.pipelines.sync"]
    assert container["args"] == [
        "/etc/kfp-sync",
        "--host",
        "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        "--timeout",
        "600",
    ]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "spec", "configMap": {"name": name, "defaultMode": 0o444}} in pod["volumes"]
    assert {"name": "spec", "mountPath": "/etc/kfp-sync", "readOnly": True} in container[
        "volumeMounts"
    ]
    # no value in the spec is secret: standalone KFP has no API auth
    assert all("value" in e and "valueFrom" not in e for e in container["env"])


def test_rendered_job_fails_validation_when_broken():
    job = model.sync_job(BASE)
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(manifests.ManifestError):
        manifests.validate(job)


# --- the kubeflow namespace's NetworkPolicies admit the Job -----------------------------------


def _matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and expression["key"] not in labels:
            return False
        if operator == "DoesNotExist" and expression["key"] in labels:
            return False
    return True


def _kubeflow_network_policies() -> list[dict]:
    """Every NetworkPolicy of upstream env/platform-agnostic (the folders it builds, read from
    the shared copy of the pinned release), and the ones the component renders itself."""
    env = KFP_MANIFESTS / "env/platform-agnostic"
    if not env.is_dir():
        pytest.fail(f"{env}: the shared copy of the KFP 2.16.1 manifests is missing")
    policies = [model.mysql_network_policy()]
    for resource in yaml.safe_load((env / "kustomization.yaml").read_text())["resources"]:
        for path in sorted((env / resource).resolve().rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if isinstance(document, dict) and document.get("kind") == "NetworkPolicy":
                    policies.append(document)
    return policies


def test_network_policies_of_the_kubeflow_namespace_admit_the_job():
    policies = _kubeflow_network_policies()
    assert {p["metadata"]["name"] for p in policies} == {"seaweedfs", "platform-mysql-ingress"}
    # kustomize adds this label to every object and selector of the env
    job_pod = {
        **model.sync_job(BASE)["spec"]["template"]["metadata"]["labels"],
        "application-crd-id": "kubeflow-pipelines",
    }
    api_pod = {"app": "ml-pipeline", "application-crd-id": "kubeflow-pipelines"}
    for policy in policies:
        spec = policy["spec"]
        if _matches(spec["podSelector"], job_pod):
            assert "Egress" not in spec.get("policyTypes", []), policy["metadata"]["name"]
        if _matches(spec["podSelector"], api_pod) and "Ingress" in spec.get("policyTypes", []):
            admitted = any(
                any(
                    "podSelector" in peer
                    and "namespaceSelector" not in peer
                    and _matches(peer["podSelector"], job_pod)
                    for peer in rule.get("from", [{"podSelector": {}}])
                )
                and any(p.get("port") in (None, 8888) for p in rule.get("ports", [{}]))
                for rule in spec.get("ingress", [])
            )
            assert admitted, policy["metadata"]["name"]


# --- the README -------------------------------------------------------------------------------

# Its inputs tables are generated (`mlops docs`) and checked by tests/docs.
README = model.OVERLAY_DIR.parent / "README.md"


def test_readme_example_validates():
    (block,) = [
        b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "schedules" in b
    ]
    config = PipelinesConfig.model_validate(yaml.safe_load(block)["config"]["mlops:pipelines"])
    assert sorted(config.schedules) == ["nightly-drift-check", "weekly-retrain"]
    assert config.schedules["weekly-retrain"].enabled is False
