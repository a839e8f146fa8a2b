"""The committed pipeline YAML matches the sources, and the pipelines stay runnable locally."""

from __future__ import annotations

import pytest
import yaml

from mlops_platform.components.versions import FEAST_IMAGE
from mlops_platform.pipelines.components.image import BASE_IMAGE
from mlops_platform.pipelines.pipelines import compile as compile_module

PIPELINES = sorted(compile_module.TARGETS)


@pytest.mark.parametrize("name", PIPELINES)
def test_committed_yaml_matches_the_source(name: str) -> None:
    committed = compile_module.TARGETS[name].read_text()
    assert compile_module.compile_to_text(name) == committed, (
        f"{compile_module.TARGETS[name].name} is stale: run "
        "`uv run python -m mlops_platform.pipelines.pipelines.compile` and commit the result"
    )


def test_check_mode_reports_a_stale_file(monkeypatch, tmp_path, capsys) -> None:
    stale = tmp_path / "training_pipeline.yaml"
    stale.write_text("# edited by hand\n")
    monkeypatch.setitem(compile_module.TARGETS, "training_pipeline", stale)
    assert compile_module.main(["--check"]) == 1
    assert "stale compiled pipelines: training_pipeline.yaml" in capsys.readouterr().err
    assert stale.read_text() == "# edited by hand\n"


def spec(name: str) -> dict:
    """The pipeline spec: the first document (the second is the Kubernetes platform config)."""
    return next(yaml.safe_load_all(compile_module.TARGETS[name].read_text()))


@pytest.mark.parametrize("name", PIPELINES)
def test_no_control_flow_the_local_runner_cannot_run(name: str) -> None:
    tasks = spec(name)["root"]["dag"]["tasks"]
    assert not [t for t, task in tasks.items() if "triggerPolicy" in task]
    assert not [t for t, task in tasks.items() if "parameterIterator" in task]


@pytest.mark.parametrize("name", PIPELINES)
def test_every_step_runs_the_pinned_platform_image_without_pip(name: str) -> None:
    executors = spec(name)["deploymentSpec"]["executors"]
    containers = {
        key: value["container"] for key, value in executors.items() if "container" in value
    }
    assert containers
    # The Feast step runs the Feast image (Feast pins pandas 2); every other step the
    # platform image.
    feast = {key for key in containers if key == "exec-feature-store-frame"}
    assert {c["image"] for k, c in containers.items() if k not in feast} == {BASE_IMAGE}
    assert {containers[k]["image"] for k in feast} <= {FEAST_IMAGE}
    assert not any("pip install" in " ".join(c["command"]) for c in containers.values())
    assert ":" in BASE_IMAGE and not BASE_IMAGE.endswith(":latest")


def test_training_pipeline_shape() -> None:
    compiled = spec("training_pipeline")
    tasks = compiled["root"]["dag"]["tasks"]
    assert sorted(tasks) == [
        "evaluate-model",
        "importer",
        "register-model",
        "split-data",
        "train-model",
        "validate-data",
    ]
    assert tasks["split-data"]["dependentTasks"] == ["importer", "validate-data"]
    assert tasks["register-model"]["cachingOptions"] == {}
    assert set(compiled["root"]["inputDefinitions"]["parameters"]) >= {"data_uri", "tracking_uri"}


def test_feature_store_training_pipeline_trains_on_the_point_in_time_frame() -> None:
    from mlops_platform.pipelines.components.feature_store_frame.component import SCRIPT

    compiled = spec("feature_store_training_pipeline")
    tasks = compiled["root"]["dag"]["tasks"]
    assert sorted(tasks) == [
        "evaluate-model",
        "feature-store-frame",
        "importer",
        "register-model",
        "split-data",
        "train-model",
        "validate-data",
    ]
    frame = {
        "taskOutputArtifact": {"outputArtifactKey": "frame", "producerTask": "feature-store-frame"}
    }
    assert tasks["validate-data"]["inputs"]["artifacts"]["dataset"] == frame
    assert tasks["split-data"]["inputs"]["artifacts"]["dataset"] == frame
    assert tasks["feature-store-frame"]["cachingOptions"] == {}
    container = compiled["deploymentSpec"]["executors"]["exec-feature-store-frame"]["container"]
    assert container["image"] == FEAST_IMAGE
    assert container["command"] == ["python", "-c", SCRIPT]
    assert "--registry" in container["args"]
    parameters = compiled["root"]["inputDefinitions"]["parameters"]
    assert {"entities_uri", "tracking_uri", "feast_registry_path"} <= set(parameters)
    assert "defaultValue" not in parameters["feast_registry_path"]


def test_drift_pipeline_gates_retraining_on_the_drift_decision() -> None:
    tasks = spec("drift_pipeline")["root"]["dag"]["tasks"]
    for step in ("split-data", "train-model", "evaluate-model", "register-model"):
        enabled = tasks[step]["inputs"]["parameters"]["enabled"]
        assert enabled == {
            "taskOutputParameter": {"outputParameterKey": "Output", "producerTask": "check-drift"}
        }, step


@pytest.mark.parametrize("name", PIPELINES)
def test_registry_steps_get_the_mlflow_client_credentials_on_a_cluster(name: str) -> None:
    from mlops_platform.components.mlflow.model import DEFAULT_CLIENT_SECRET
    from mlops_platform.pipelines.pipelines.steps import MLFLOW_CREDENTIALS_SECRET

    # the Secret the platform's MLflow component writes for its clients (mlflow.clients)
    assert MLFLOW_CREDENTIALS_SECRET == DEFAULT_CLIENT_SECRET
    _spec, platform = yaml.safe_load_all(compile_module.TARGETS[name].read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    registry_steps = {
        "training_pipeline": ["exec-evaluate-model", "exec-register-model"],
        # the drift check's reference comes from the registry too
        "drift_pipeline": ["exec-champion-reference", "exec-evaluate-model", "exec-register-model"],
        "windows_drift_pipeline": [
            "exec-champion-reference",
            "exec-evaluate-model",
            "exec-register-model",
        ],
        "batch_scoring_pipeline": ["exec-batch-score"],
        "feature_store_training_pipeline": ["exec-evaluate-model", "exec-register-model"],
    }[name]
    with_mlflow = {
        key: executor
        for key, executor in executors.items()
        if any(s["secretName"] == DEFAULT_CLIENT_SECRET for s in executor["secretAsVolume"])
    }
    assert sorted(with_mlflow) == registry_steps
    for executor in with_mlflow.values():
        # MLflow's credentials file at $HOME/.mlflow (HOME=/tmp in the platform image), never
        # the environment
        assert "secretAsEnv" not in executor
        (secret,) = executor["secretAsVolume"]
        assert secret["secretName"] == DEFAULT_CLIENT_SECRET
        assert secret["mountPath"] == "/tmp/.mlflow"
        assert secret["optional"] is True  # an MLflow without auth runs the same pipeline


def test_the_feast_step_gets_the_runners_object_store_files_on_a_local_stack() -> None:
    """Feast opens the registry and the offline Parquet itself: on a local stack with the
    pipeline runner identity's MinIO files (the Secret identity writes, mounted where the
    platform mounts secrets), on AWS and GCP with the pod's identity (the Secret is absent)."""
    from mlops_platform.components import kube
    from mlops_platform.components.identity import model as identity
    from mlops_platform.components.pipelines.model import RUNNER_SERVICE_ACCOUNT
    from mlops_platform.pipelines.pipelines import steps

    secret = identity.credentials_secret_name(RUNNER_SERVICE_ACCOUNT)
    folder = kube.secret_dir(identity.CREDENTIALS_VOLUME)
    assert secret == steps.OBJECT_STORE_CREDENTIALS_SECRET
    assert folder == steps.OBJECT_STORE_CREDENTIALS_DIR
    name = "feature_store_training_pipeline"
    compiled, platform = yaml.safe_load_all(compile_module.TARGETS[name].read_text())
    executor = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-feature-store-frame"
    ]
    assert "secretAsEnv" not in executor
    (mounted,) = executor["secretAsVolume"]
    assert (mounted["secretName"], mounted["mountPath"], mounted["optional"]) == (
        secret,
        folder,
        True,
    )
    container = compiled["deploymentSpec"]["executors"]["exec-feature-store-frame"]["container"]
    files = {e["name"]: e["value"] for e in identity.secret_credential_files(secret).env}
    assert {e["name"]: e["value"] for e in container["env"]} == files
