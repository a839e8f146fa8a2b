"""The model server image, run as its Deployment runs it, against a real MLflow on loopback.

The container (read-only root, tmpfs /tmp, UID 10001, no capabilities) loads `churn@champion`
from a real `mlflow server` and must answer exactly as the plain `mlops serve` process serving
the same registered version; on `docker stop` it finishes the request in flight and exits 0.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from images.build import docker
from images.containers import (
    RUN_AS,
    Container,
    run_to_completion,
    start_model_server,
    wait_ready,
)
from tests.serving.serving_support import (
    ServerProcess,
    build_churn_model,
    free_port,
    register_version,
    split_payload,
    start_server,
    start_tracking_server,
    stop_server,
    stop_tracking_server,
    training_frame,
    v2_infer_body,
)

pytestmark = pytest.mark.slow
SLOW_MODEL_CODE = Path(__file__).with_name("slow_model.py")


@pytest.fixture(scope="module")
def image(built_images: dict[str, Any]) -> str:
    return str(built_images["model-server"]["tag"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tracking server on loopback with `churn` version 1 under alias `champion`."""
    folder = tmp_path_factory.mktemp("images-mlflow")
    server = start_tracking_server(folder / "server")
    try:
        model = build_churn_model(folder)
        register_version(server.uri, model["path"], "churn", alias="champion")
        yield server.uri
    finally:
        stop_tracking_server(server)


@pytest.fixture(scope="module")
def plain(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        "models:/churn@champion",
        tmp_path_factory.mktemp("images-plain"),
        env={"MLFLOW_TRACKING_URI": registry},
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def container(image: str, registry: str) -> Iterator[Container]:
    served = start_model_server(
        image, free_port(), "models:/churn@champion", env={"MLFLOW_TRACKING_URI": registry}
    )
    try:
        wait_ready(served)
        yield served
    finally:
        served.remove()


def _as_process(container: Container) -> ServerProcess:
    """The request helpers of the serving tests, pointed at the container's URL."""
    return ServerProcess(container.url, None, Path("/dev/null"))  # type: ignore[arg-type]


def test_image_runs_non_root_on_a_read_only_root_with_compiled_bytecode(image: str) -> None:
    config = subprocess.run(
        [*docker(), "image", "inspect", "--format", "{{json .Config}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(config.stdout)["User"] == RUN_AS
    probe = (
        "import importlib.util, os, pathlib, shutil, sys\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n"
        "    open('/opt/venv/probe', 'w')\n"
        "    print('root writable')\n"
        "except OSError as exc:\n"
        "    print('read-only', exc.errno)\n"
        "print(sorted(t for t in ('uv', 'gcc', 'cc', 'make', 'git') if shutil.which(t)))\n"
        "roots = [pathlib.Path('/app'), pathlib.Path(sys.prefix, 'lib')]\n"
        "sources = [p for r in roots for p in r.rglob('*.py')]\n"
        "missing = [p for p in sources\n"
        "           if not pathlib.Path(importlib.util.cache_from_source(p)).is_file()]\n"
        "print(len(sources), len(missing), [str(p) for p in missing[:5]])\n"
    )
    result = run_to_completion(image, ["python", "-c", probe])
    assert result.returncode == 0, result.stderr
    ids, writable, tools, compiled = result.stdout.splitlines()
    assert ids == "10001 10001"
    assert writable == "read-only 30"  # EROFS
    assert tools == "[]"  # no build tools in the final stage
    sources, missing, examples = compiled.split(" ", 2)
    # uv compiles the installed packages and the build compiles /app: every module imports
    # from its .pyc, nothing is compiled (or could be written) at run time.
    assert int(sources) > 1000
    assert int(missing) == 0, examples


def test_container_answers_like_the_plain_process(
    container: Container, plain: ServerProcess
) -> None:
    served = _as_process(container)
    for server in (served, plain):
        meta = server.get("/v2/models/churn").body
        assert (meta["name"], meta["versions"]) == ("churn", ["1"]), meta
    frame = training_frame(n=64, seed=7)
    invocations = [s.post("/invocations", split_payload(frame)) for s in (served, plain)]
    assert [r.status for r in invocations] == [200, 200], [r.body for r in invocations]
    assert invocations[0].body == invocations[1].body
    predictions = np.asarray(invocations[0].body["predictions"], dtype=float)
    assert predictions.shape == (64,) and len(np.unique(predictions)) > 1

    body = {"id": "image-test", **v2_infer_body(frame)}
    infer = [s.post("/v2/models/churn/infer", body) for s in (served, plain)]
    assert [r.status for r in infer] == [200, 200], [r.body for r in infer]
    assert infer[0].body == infer[1].body
    assert infer[0].body["model_version"] == "1"
    assert {o["name"] for o in infer[0].body["outputs"]} >= {"predictions"}


def test_container_drains_in_flight_requests_on_docker_stop(image: str, tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    example = pd.DataFrame({"sleep": [0.0]})
    model_path = tmp_path / "slow"
    mlflow.pyfunc.save_model(
        str(model_path),
        python_model=str(SLOW_MODEL_CODE),
        signature=infer_signature(example, np.ones(1)),
        pip_requirements=["mlflow"],
    )
    served = start_model_server(
        image, free_port(), "/models/slow", mounts=[(model_path, "/models/slow", True)]
    )
    try:
        wait_ready(served)
        result: dict[str, Any] = {}

        def slow_request() -> None:
            result["response"] = _as_process(served).post(
                "/invocations", {"inputs": {"sleep": 3.0}}
            )

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(1.0)  # the request is now inside the model
        exit_code, seconds = served.stop(timeout=30)
        thread.join(timeout=30)
        assert result["response"].status == 200, result["response"].body
        assert result["response"].body == {"predictions": [1.0]}
        # Exit 0 well before the 30 s SIGKILL: SIGTERM reached the server (PID 1) and it
        # drained instead of being killed (137).
        assert exit_code == 0, served.logs()
        assert 1.0 < seconds < 20, seconds
    finally:
        served.remove()


def test_the_default_image_carries_no_shap_and_refuses_explanations(image: str) -> None:
    probe = (
        "import importlib.util as u; print([u.find_spec(m) for m in ('shap','numba','llvmlite')])"
    )
    result = run_to_completion(image, ["python", "-c", probe])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[None, None, None]"
    refused = run_to_completion(
        image,
        ["python", "-m", "mlops_platform.model_server"],
        env={"MLOPS_SERVE_EXPLAIN": "true", "MLOPS_SERVE_MODEL_URI": "/models/none"},
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "needs shap, which this image leaves out" in refused.stderr
    assert "model-server-explain" in refused.stderr


@pytest.fixture(scope="module")
def explain_image(built_images: dict[str, Any]) -> str:
    return str(built_images["model-server-explain"]["tag"])


def test_the_explain_image_answers_attributions_like_the_plain_process(
    explain_image: str, tmp_path: Path
) -> None:
    """A tree model (the training pipeline's shape), mounted read-only: the container's
    attributions are the plain process's."""
    from tests.serving.serving_support import build_tree_model

    tree = build_tree_model(tmp_path)
    env = {"MLOPS_SERVE_EXPLAIN": "true"}
    served = start_model_server(
        explain_image,
        free_port(),
        "/models/tree",
        env=env,
        mounts=[(Path(tree["path"]), "/models/tree", True)],
    )
    plain = start_server(tree["path"], tmp_path, env=env)
    try:
        wait_ready(served, timeout=240)
        frame = tree["frame"].head(16)
        body = {"id": "explain", **v2_infer_body(frame), "parameters": {"explain": True}}
        answers = [s.post("/v2/models/tree/infer", body) for s in (_as_process(served), plain)]
        assert [a.status for a in answers] == [200, 200], [a.body for a in answers]
        (container_out, plain_out) = (
            {o["name"]: o for o in a.body["outputs"]}["attributions"] for a in answers
        )
        assert container_out["shape"] == [16, frame.shape[1]]
        assert container_out["parameters"] == plain_out["parameters"]
        np.testing.assert_allclose(container_out["data"], plain_out["data"], rtol=1e-9)
        assert np.abs(np.asarray(container_out["data"])).max() > 0
    finally:
        served.remove()
        stop_server(plain)
