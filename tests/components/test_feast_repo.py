"""The churn feature repository, pure layer: the definitions agree with the churn data, the apply
Job, the materialization CronJob and their NetworkPolicy per cloud."""

import ast
import contextlib

import pytest
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube
from mlops_platform.components.feast import model, repo
from mlops_platform.components.feast.model import FeastConfig
from mlops_platform.pipelines.data import churn

OFFLINE = "s3://mlops-test-features/feast/data"
STORE_DATA = {model.FEATURE_STORE_YAML_KEY: "project: mlops\n"}


def _definitions_literals() -> dict:
    """The module-level literal assignments of the definitions file (it imports feast, which
    the project's environment does not have, so it is read, not imported)."""
    found = {}
    for node in ast.parse(repo.definitions()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                with contextlib.suppress(ValueError):
                    found[target.id] = ast.literal_eval(node.value)
    return found


def _render(cloud="aws", config=None):
    return repo.render(
        config or FeastConfig(),
        cloud,
        OFFLINE,
        STORE_DATA,
        "eu-west-1" if cloud == "aws" else None,
    )


def _pod(obj):
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def test_the_definitions_name_every_churn_feature_with_its_kind_and_group():
    groups = _definitions_literals()["FEATURE_GROUPS"]
    declared = [
        (name, group, kind) for group, names in groups.items() for name, kind in names.items()
    ]
    expected = [
        (
            spec.name,
            spec.group,
            "str" if spec.kind == "categorical" else "int" if spec.integer else "float",
        )
        for spec in churn.FEATURES
    ]
    assert sorted(declared) == sorted(expected)
    assert [name for name, _, _ in declared] == churn.FEATURE_NAMES


def test_the_definitions_use_the_names_the_platform_refers_to():
    literals = _definitions_literals()
    assert literals["ENTITY"] == repo.ENTITY
    assert literals["JOIN_KEY"] == repo.JOIN_KEY == churn.ID
    assert literals["TIMESTAMP"] == repo.TIMESTAMP == churn.TIMESTAMP
    assert literals["SERVICE"] == repo.FEATURE_SERVICE
    assert literals["TABLE"] == repo.OFFLINE_TABLE
    assert repo.OFFLINE_URI_ENV in repo.definitions()
    assert repo.offline_table_uri(OFFLINE + "/") == f"{OFFLINE}/churn/customer_features.parquet"


@pytest.mark.parametrize("cloud", ["aws", "gcp", "local"])
def test_every_object_is_valid(cloud):
    objects = _render(cloud)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ConfigMap", "feast-feature-repo"),
        ("Job", objects[1]["metadata"]["name"]),
        ("CronJob", "feast-materialize"),
        ("NetworkPolicy", "feast-jobs"),
    ]
    for obj in objects:
        manifests.validate(obj)
        assert obj["metadata"]["namespace"] == "feast"


def test_the_config_map_carries_the_definitions_and_the_offline_uri():
    config_map = _render()[0]
    assert config_map["data"] == {
        "churn_features.py": repo.definitions(),
        "offline-data-uri": OFFLINE,
    }


def test_apply_job_is_named_by_what_it_applies():
    name = _render()[1]["metadata"]["name"]
    assert name == repo.apply_job_name(repo.repo_digest(_render()[0]["data"], STORE_DATA))
    assert name.startswith("feast-apply-") and len(name) == len("feast-apply-") + 10
    other_store = repo.render(FeastConfig(), "aws", OFFLINE, {"x": "y"}, "eu-west-1")
    other_uri = repo.render(FeastConfig(), "aws", "s3://b/feast/data", STORE_DATA, "eu-west-1")
    assert other_store[1]["metadata"]["name"] != name
    assert other_uri[1]["metadata"]["name"] != name
    assert _render()[1]["metadata"]["name"] == name


@pytest.mark.parametrize("cloud", ["aws", "gcp", "local"])
def test_pods_run_feast_in_the_assembled_repo_as_the_server_does(cloud):
    config = FeastConfig()
    _, job, cron_job, _ = _render(cloud)
    server = model.server_container(config, cloud, "eu-west-1" if cloud == "aws" else None)
    for obj, command in (
        (job, ["feast", "--chdir", "/etc/feast", "--log-level", "info", "apply"]),
        (
            cron_job,
            [
                "sh",
                "-c",
                "exec feast --chdir /etc/feast --log-level info materialize-incremental "
                '"$(date -u +%Y-%m-%dT%H:%M:%S)"',
            ],
        ),
    ):
        pod = _pod(obj)
        (container,) = pod["containers"]
        # the Redis password from the mounted Secret file, as the server's entrypoint does
        assert container["command"] == kube.env_from_files_command(
            {model.PASSWORD_ENV: model.PASSWORD_FILE}, command
        )
        assert kube.secret_env_vars(container) == []
        assert container["image"] == config.server.image
        assert pod["restartPolicy"] == "Never"
        assert pod["serviceAccountName"] == "feast"
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["securityContext"]["runAsNonRoot"] is True
        # The server's environment (password from the Secret, region, MinIO endpoint) plus the
        # offline URI from the repo ConfigMap.
        assert container["env"][: len(server["env"])] == server["env"]
        assert {
            "name": "MLOPS_FEAST_OFFLINE_URI",
            "valueFrom": {
                "configMapKeyRef": {"name": "feast-feature-repo", "key": "offline-data-uri"}
            },
        } in container["env"]
        secret_mounts = [m for m in server["volumeMounts"] if m["name"] != "feature-store"]
        assert [m for m in secret_mounts if m["name"] != "tmp"] == [
            m for m in container["volumeMounts"] if m in secret_mounts and m["name"] != "tmp"
        ]
        # Files by subPath, so Feast imports /etc/feast/churn_features.py by its own name.
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/feast/feature_store.yaml"]["subPath"] == "feature_store.yaml"
        assert mounts["/etc/feast/churn_features.py"]["subPath"] == "churn_features.py"
        assert ("/etc/feast/redis-server-ca.pem" in mounts) == (cloud == "gcp")
        assert mounts["/tmp"]["name"] == "tmp"
        assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp")


def test_cron_job_follows_the_materialization_config():
    config = FeastConfig.model_validate(
        {
            "materialization": {
                "schedule": "*/15 * * * *",
                "suspend": True,
                "deadline_seconds": 600,
                "cpu_request": "1",
                "memory_request": "2Gi",
                "memory_limit": "4Gi",
            }
        }
    )
    cron_job = _render(config=config)[2]
    spec = cron_job["spec"]
    assert (spec["schedule"], spec["suspend"], spec["concurrencyPolicy"]) == (
        "*/15 * * * *",
        True,
        "Forbid",
    )
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 600
    assert _pod(cron_job)["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "4Gi"},
    }
    defaults = FeastConfig().materialization
    assert (defaults.schedule, defaults.suspend, defaults.deadline_seconds) == (
        "0 * * * *",
        False,
        3000,
    )
    assert FeastConfig.model_validate({"materialization": {"schedule": "@hourly"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schedule": "every hour"}, "materialization.schedule\n  Value error, schedule"),
        ({"schedule": "0 * * *"}, "must be five cron fields"),
        ({"schedule": "@sometimes"}, "must be five cron fields"),
        ({"memory_request": "4Gi", "memory_limit": "1Gi"}, "memory_limit (1Gi)"),
        ({"cpu_request": "lots"}, "cpu_request 'lots' is not a Kubernetes quantity"),
        ({"deadline_seconds": 5}, "materialization.deadline_seconds"),
        ({"surprise": 1}, "materialization.surprise"),
    ],
)
def test_bad_materialization_config_names_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        FeastConfig.model_validate({"materialization": data})
    assert message in str(error.value)


def test_job_pods_accept_no_connection():
    policy = _render()[3]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy["spec"]
    selector = policy["spec"]["podSelector"]
    for obj in _render()[1:3]:
        template = obj["spec"] if obj["kind"] == "Job" else obj["spec"]["jobTemplate"]["spec"]
        labels = template["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == selector["matchLabels"]["app.kubernetes.io/name"]
        assert labels["app.kubernetes.io/component"] in selector["matchExpressions"][0]["values"]
