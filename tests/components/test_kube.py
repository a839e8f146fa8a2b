"""Table tests of the shared Kubernetes checks (mlops_platform/components/kube.py), exact
messages included."""

from typing import ClassVar

import pydantic
import pytest
from pydantic import Field

from mlops_platform.components import kube

LABEL_MESSAGE = (
    "must be a DNS label: at most 63 lowercase letters, digits or '-', starting and ending "
    "with a letter or digit"
)


@pytest.mark.parametrize("value", ["a", "0", "mlflow", "kube-system-2", "a" * 63, "9lives"])
def test_dns_labels_accepted(value):
    assert kube.is_dns_label(value)
    assert kube.check_dns_label(value, "namespace") == value


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "a_b", "a.b", "a" * 64, "é"])
def test_dns_labels_refused_with_the_field_named(value):
    assert not kube.is_dns_label(value)
    with pytest.raises(ValueError) as error:
        kube.check_dns_label(value, "service_account")
    assert str(error.value) == f"service_account {value!r} {LABEL_MESSAGE}"
    with pytest.raises(ValueError) as error:
        kube.check_dns_label(value, "namespace", explain=False)
    assert str(error.value) == f"namespace {value!r} must be a DNS label"


@pytest.mark.parametrize(
    ("value", "ok"), [("svc", True), ("s-1", True), ("1svc", False), ("svc-", False)]
)
def test_dns_1035_labels_start_with_a_letter(value, ok):
    assert (kube.DNS_1035_LABEL.match(value) is not None) is ok


@pytest.mark.parametrize("value", ["istio-system", "mlops", "defaults"])
def test_namespace_accepts_ordinary_labels(value):
    assert kube.check_namespace(value, "namespace") == value


@pytest.mark.parametrize("value", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_namespace_refuses_system_namespaces(value):
    with pytest.raises(ValueError) as error:
        kube.check_namespace(value, "namespace")
    assert str(error.value) == f"namespace {value!r} is a Kubernetes system namespace"


def test_namespace_checks_the_label_first():
    with pytest.raises(ValueError) as error:
        kube.check_namespace("Kube-System", "gateway.namespace")
    assert str(error.value) == f"gateway.namespace 'Kube-System' {LABEL_MESSAGE}"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("250m", 0.25),
        ("1.5", 1.5),
        ("2k", 2000.0),
        ("512M", 512e6),
        ("1G", 1e9),
        ("1T", 1e12),
        ("64Ki", 65536.0),
        ("512Mi", 512 * 2**20),
        ("1.5Gi", 1.5 * 2**30),
        ("2Ti", 2 * 2**40),
    ],
)
def test_quantity_value(text, value):
    assert kube.is_quantity(text)
    assert kube.quantity_value(text) == value
    assert kube.check_quantity(text, "memory_limit") == text


@pytest.mark.parametrize("text", ["", "Mi", "1mi", "1Ei", "-1", "1e3", "1 Gi", ".5", "1.", "1GB"])
def test_bad_quantities(text):
    assert not kube.is_quantity(text)
    with pytest.raises(ValueError) as error:
        kube.quantity_value(text)
    assert str(error.value) == f"{text!r} is not a Kubernetes quantity (e.g. 512Mi, 250m)"
    with pytest.raises(ValueError) as error:
        kube.check_quantity(text, "cpu_request")
    assert (
        str(error.value) == f"cpu_request {text!r} is not a Kubernetes quantity (e.g. 512Mi, 250m)"
    )
    with pytest.raises(ValueError) as error:
        kube.check_quantity(text, "storage_size", example="10Gi, 250m")
    assert (
        str(error.value) == f"storage_size {text!r} is not a Kubernetes quantity (e.g. 10Gi, 250m)"
    )


@pytest.mark.parametrize(
    ("kind", "requested", "limit"),
    [
        ("memory", "512Mi", "512Mi"),
        ("memory", "1G", "1Gi"),
        ("cpu", "500m", "1"),
        ("cpu", "1", "1000m"),
    ],
)
def test_limit_covering_the_request(kind, requested, limit):
    assert kube.check_limit_covers_request(kind, requested, limit) is None


@pytest.mark.parametrize(
    ("kind", "requested", "limit"),
    [("memory", "1Gi", "1G"), ("memory", "2Gi", "512Mi"), ("cpu", "1", "999m")],
)
def test_limit_below_the_request(kind, requested, limit):
    with pytest.raises(ValueError) as error:
        kube.check_limit_covers_request(kind, requested, limit)
    assert str(error.value) == (
        f"{kind}_limit ({limit}) must be at least {kind}_request ({requested})"
    )


@pytest.mark.parametrize(
    ("image", "floating"),
    [
        ("mlflow", True),
        ("mlflow:latest", True),
        ("ghcr.io/mlflow/mlflow:latest", True),
        ("localhost:5000/mlflow", True),
        ("localhost:5000/mlflow:latest", True),
        ("ghcr.io/mlflow/mlflow:v3.5.0", False),
        ("localhost:5000/mlflow:3", False),
        ("mlflow@sha256:" + "a" * 64, False),
        ("mlflow:latest@sha256:" + "a" * 64, False),
    ],
)
def test_floating_image(image, floating):
    assert kube.floating_image(image) is floating
    if floating:
        with pytest.raises(ValueError) as error:
            kube.check_pinned_image(image)
        assert str(error.value) == (
            f"image {image!r} must be pinned to a tag other than latest, or to a digest"
        )
    else:
        assert kube.check_pinned_image(image) == image


def test_empty_image_is_refused_with_the_field_named():
    with pytest.raises(ValueError) as error:
        kube.check_pinned_image("", "server.image")
    assert str(error.value) == (
        "server.image '' must be pinned to a tag other than latest, or to a digest"
    )


def test_container_resources_rendering():
    assert kube.container_resources("250m", "512Mi", "1Gi") == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert kube.container_resources("250m", "512Mi", "1Gi", "2") == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi", "cpu": "2"},
    }


class _Checked(kube.ContainerResourcesConfig):
    cpu_request: str = Field(default="100m", description="CPU request.")
    memory_request: str = Field(default="128Mi", description="Memory request.")
    memory_limit: str = Field(default="256Mi", description="Memory limit.")


class _Unchecked(_Checked):
    check_memory_limit: ClassVar[bool] = False


def test_resources_model_defaults_and_values():
    assert _Checked().values() == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert list(_Checked.model_fields) == ["cpu_request", "memory_request", "memory_limit"]
    assert "check_memory_limit" not in _Checked.model_json_schema()["properties"]


@pytest.mark.parametrize("field", ["cpu_request", "memory_request", "memory_limit"])
def test_resources_model_names_the_bad_quantity(field):
    with pytest.raises(pydantic.ValidationError) as error:
        _Checked(**{field: "lots"})
    (problem,) = error.value.errors()
    assert problem["loc"] == (field,)
    assert problem["msg"] == (
        f"Value error, {field} 'lots' is not a Kubernetes quantity (e.g. 512Mi, 250m)"
    )


def test_resources_model_memory_limit_check_is_explicit():
    with pytest.raises(pydantic.ValidationError) as error:
        _Checked(memory_request="1Gi", memory_limit="512Mi")
    assert error.value.errors()[0]["msg"] == (
        "Value error, memory_limit (512Mi) must be at least memory_request (1Gi)"
    )
    unchecked = _Unchecked(memory_request="1Gi", memory_limit="512Mi")
    assert unchecked.values()["limits"] == {"memory": "512Mi"}


def test_resources_model_is_strict():
    with pytest.raises(pydantic.ValidationError) as error:
        _Checked(cpu_limit="1")
    assert error.value.errors()[0]["loc"] == ("cpu_limit",)


def test_restricted_security_contexts_pass_the_pod_security_standard():
    container = kube.restricted_container_security(10001)
    assert container == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert kube.restricted_pod_security(999) == {
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_probe():
    assert kube.probe({"tcpSocket": {"port": 6379}}, 10, 3) == {
        "tcpSocket": {"port": 6379},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def test_a_secret_is_a_read_only_volume_of_chosen_keys():
    assert kube.secret_volume("db", "mlflow-credentials", ["database-password"]) == {
        "name": "db",
        "secret": {
            "secretName": "mlflow-credentials",
            "defaultMode": 0o440,
            "items": [{"key": "database-password", "path": "database-password"}],
        },
    }
    assert kube.secret_volume("all", "s") == {
        "name": "all",
        "secret": {"secretName": "s", "defaultMode": 0o440},
    }
    assert kube.secret_volume_mount("db") == {
        "name": "db",
        "mountPath": "/var/run/secrets/mlops/db",
        "readOnly": True,
    }
    assert kube.secret_volume_mount("c", "/tmp/.mlflow")["mountPath"] == "/tmp/.mlflow"


@pytest.mark.parametrize(
    ("container", "found"),
    [
        ({"env": [{"name": "A", "value": "x"}]}, []),
        ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, ["A"]),
        ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}, []),
        (
            {"envFrom": [{"secretRef": {"name": "s"}}, {"configMapRef": {"name": "c"}}]},
            ["envFrom:s"],
        ),
        ({}, []),
    ],
)
def test_secret_env_vars_finds_every_secret_in_an_environment(container, found):
    assert kube.secret_env_vars(container) == found


def test_env_from_files_command_sets_the_variables_then_runs_the_program(tmp_path):
    import subprocess

    uri, key = tmp_path / "uri", tmp_path / "key"
    uri.write_text("postgresql://u:p%40ss@db/x\n")
    key.write_text("flask $(not run) `key`")
    command = kube.env_from_files_command(
        {"DB_URI": str(uri), "FLASK_KEY": str(key)}, ["python3", "-c"]
    )
    assert command[:2] == ["/bin/sh", "-c"] and command[3:] == ["python3", "-c"]
    show = 'import os,sys; print(os.environ["DB_URI"], os.environ["FLASK_KEY"], sys.argv[1:])'
    done = subprocess.run([*command, show, "--flag"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "postgresql://u:p%40ss@db/x flask $(not run) `key` ['--flag']\n"

    key.write_text("")
    done = subprocess.run([*command, show], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"FLASK_KEY: {key} is missing or empty\n"
    key.unlink()
    done = subprocess.run([*command, show], capture_output=True, text=True, check=False)
    assert done.stderr == f"FLASK_KEY: {key} is missing or empty\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"A-B": "/x"}, "'A-B' is not a variable name"),
        ({"A": "relative"}, "'relative' must be an absolute path"),
        ({"A": "/it's"}, "must be an absolute path"),
    ],
)
def test_env_from_files_command_refuses_what_the_shell_would_misread(files, message):
    with pytest.raises(ValueError, match=message):
        kube.env_from_files_command(files, ["prog"])


def test_egress_network_policy_allows_only_its_destinations_and_dns():
    peers = [{"podSelector": {"matchLabels": {"app": "db"}}}]
    policy = kube.egress_network_policy(
        {"name": "job", "namespace": "ns"}, {"app": "j"}, [(peers, 5432)]
    )
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "j"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [
            {"to": peers, "ports": [{"protocol": "TCP", "port": 5432}]},
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ],
    }


def test_app_labels_select_and_mark_the_platform():
    assert kube.app_selector("mlflow", "database") == {
        "app.kubernetes.io/name": "mlflow",
        "app.kubernetes.io/component": "database",
    }
    assert kube.app_labels("feast", "online-store") == {
        "app.kubernetes.io/name": "feast",
        "app.kubernetes.io/component": "online-store",
        "app.kubernetes.io/part-of": "feast",
        "app.kubernetes.io/managed-by": "mlops-platform",
    }
