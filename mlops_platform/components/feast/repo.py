"""The churn feature repository on the platform, pure layer: the ConfigMap that carries its
definitions, the Job that runs `feast apply` on them, the CronJob that runs
`feast materialize-incremental`, and the NetworkPolicy of their pods.

The definitions are `repo/churn_features.py` (self-contained: it runs in the platform's Feast
image, images/feast, which has Feast but not this package). Both workloads run that image,
as the feature server's service account (the workload identity with `read_write` on the
features bucket: apply writes the registry, materialization records what it loaded), with the
server's environment (the Redis password from the Secret, the S3 endpoint locally).

The repository directory they run in is assembled with `subPath` mounts, not a whole-ConfigMap
mount: Feast imports every `*.py` of the repository under the module name of its *resolved*
path, and a ConfigMap volume's files are symlinks into a `..<timestamp>` folder, which would
make the module name `..2026_….churn_features`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_platform.components import kube
from mlops_platform.components.feast import model
from mlops_platform.components.feast.model import CloudType, FeastConfig

DEFINITIONS_FILE = "churn_features.py"
DEFINITIONS_PATH = Path(__file__).with_name("repo") / DEFINITIONS_FILE

REPO_CONFIG_MAP = "feast-feature-repo"
APPLY_PREFIX = "feast-apply"
MATERIALIZE_NAME = "feast-materialize"
JOBS_POLICY_NAME = "feast-jobs"
APPLY_COMPONENT = "apply"
MATERIALIZE_COMPONENT = "materialize"

# Key of the repo ConfigMap holding the offline data URI; the definitions read it as:
OFFLINE_URI_KEY = "offline-data-uri"
OFFLINE_URI_ENV = "MLOPS_FEAST_OFFLINE_URI"

# Names the definitions give (the training step and the model server refer to them).
ENTITY = "customer"
JOIN_KEY = "customer_id"
TIMESTAMP = "snapshot_date"
FEATURE_SERVICE = "churn_model"
OFFLINE_TABLE = "churn/customer_features.parquet"

APPLY_BACKOFF_LIMIT = 3
APPLY_DEADLINE_SECONDS = 900
APPLY_TTL_SECONDS = 86400


def definitions() -> str:
    """The text of the feature repository's one Python file."""
    return DEFINITIONS_PATH.read_text()


def offline_table_uri(offline_data_uri: str) -> str:
    """Where the churn snapshots the views read are (a Parquet file or folder of files)."""
    return f"{offline_data_uri.rstrip('/')}/{OFFLINE_TABLE}"


def repo_config_map(config: FeastConfig, offline_data_uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(REPO_CONFIG_MAP, config, "feature-repo"),
        "data": {DEFINITIONS_FILE: definitions(), OFFLINE_URI_KEY: offline_data_uri},
    }


def repo_digest(repo_data: Mapping[str, str], store_data: Mapping[str, str]) -> str:
    """Changes with what `feast apply` would do: it names the apply Job (Jobs are immutable,
    so a new definition or store file is a new Job, and an unchanged one is not run again)."""
    return model.config_checksum(
        {**{f"repo/{k}": v for k, v in repo_data.items()}, **dict(store_data)}
    )[:10]


def apply_job_name(digest: str) -> str:
    return f"{APPLY_PREFIX}-{digest}"


def apply_command(config: FeastConfig) -> list[str]:
    return ["feast", "--chdir", model.REPO_DIR, "--log-level", config.server.log_level, "apply"]


def materialize_command(config: FeastConfig) -> list[str]:
    """Loads every view from where the previous run stopped (the registry remembers) to now;
    the first run starts one TTL back. `date` gives the end: the CLI wants it as an argument."""
    return [
        "sh",
        "-c",
        f"exec feast --chdir {model.REPO_DIR} --log-level {config.server.log_level} "
        'materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"',
    ]


def _metadata(name: str, config: FeastConfig, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": config.namespace,
        "labels": model.object_labels(component),
    }


def _env(config: FeastConfig, cloud: CloudType, aws_region: str | None) -> list[dict[str, Any]]:
    return [
        *model.server_env(config, cloud, aws_region),
        {
            "name": OFFLINE_URI_ENV,
            "valueFrom": {"configMapKeyRef": {"name": REPO_CONFIG_MAP, "key": OFFLINE_URI_KEY}},
        },
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def _pod_spec(
    config: FeastConfig,
    cloud: CloudType,
    aws_region: str | None,
    name: str,
    command: list[str],
    resources: dict[str, Any],
) -> dict[str, Any]:
    server_container = model.server_container(config, cloud, aws_region)
    secret_volumes = {v["name"] for v in model.server_volumes(config, cloud) if "secret" in v}
    container: dict[str, Any] = {
        "name": name,
        "image": config.server.image,
        "imagePullPolicy": "IfNotPresent",
        # The Redis password from its mounted file, as the server gets it (model.server_entrypoint).
        "command": kube.env_from_files_command({model.PASSWORD_ENV: model.PASSWORD_FILE}, command),
        "env": _env(config, cloud, aws_region),
        "resources": resources,
        "securityContext": kube.restricted_container_security(model.RUN_AS_USER),
        "volumeMounts": [
            {
                "name": "feature-store",
                "mountPath": f"{model.REPO_DIR}/{model.FEATURE_STORE_YAML_KEY}",
                "subPath": model.FEATURE_STORE_YAML_KEY,
                "readOnly": True,
            },
            {
                "name": "feature-repo",
                "mountPath": f"{model.REPO_DIR}/{DEFINITIONS_FILE}",
                "subPath": DEFINITIONS_FILE,
                "readOnly": True,
            },
            {"name": "tmp", "mountPath": model.TMP_MOUNT},
            # the server's secret files: the Redis password, and locally the object-store keys
            *(m for m in server_container["volumeMounts"] if m["name"] in secret_volumes),
        ],
    }
    volumes: list[dict[str, Any]] = [
        {
            "name": "feature-store",
            "configMap": {"name": model.CONFIG_MAP_NAME, "defaultMode": 0o444},
        },
        {"name": "feature-repo", "configMap": {"name": REPO_CONFIG_MAP, "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"sizeLimit": config.server.tmp_size_limit}},
        *(v for v in model.server_volumes(config, cloud) if v["name"] in secret_volumes),
    ]
    if cloud == "gcp":
        # Memorystore's CA, which the connection string names beside feature_store.yaml.
        container["volumeMounts"].insert(
            1,
            {
                "name": "feature-store",
                "mountPath": model.REDIS_CA_PATH,
                "subPath": model.REDIS_CA_KEY,
                "readOnly": True,
            },
        )
    return {
        "restartPolicy": "Never",
        "serviceAccountName": config.service_account,
        # Bucket access comes from the workload identity (projected token, not this one).
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": kube.restricted_pod_security(model.RUN_AS_USER),
        "containers": [container],
        "volumes": volumes,
    }


def apply_job(
    config: FeastConfig, cloud: CloudType, digest: str, aws_region: str | None = None
) -> dict[str, Any]:
    """`feast apply` of the definitions, once per digest of the repository and store file."""
    labels = model.object_labels(APPLY_COMPONENT)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(apply_job_name(digest), config, APPLY_COMPONENT),
        "spec": {
            "backoffLimit": APPLY_BACKOFF_LIMIT,
            "activeDeadlineSeconds": APPLY_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": APPLY_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(
                    config,
                    cloud,
                    aws_region,
                    APPLY_COMPONENT,
                    apply_command(config),
                    kube.container_resources("100m", "512Mi", "1Gi"),
                ),
            },
        },
    }


def materialize_cron_job(
    config: FeastConfig, cloud: CloudType, aws_region: str | None = None
) -> dict[str, Any]:
    run = config.materialization
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(MATERIALIZE_NAME, config, MATERIALIZE_COMPONENT),
        "spec": {
            "schedule": run.schedule,
            "timeZone": "Etc/UTC",
            "suspend": run.suspend,
            # Two runs at once would load the same interval twice and race on the registry.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": model.object_labels(MATERIALIZE_COMPONENT)},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": run.deadline_seconds,
                    "template": {
                        "metadata": {"labels": model.object_labels(MATERIALIZE_COMPONENT)},
                        "spec": _pod_spec(
                            config,
                            cloud,
                            aws_region,
                            MATERIALIZE_COMPONENT,
                            materialize_command(config),
                            kube.container_resources(
                                run.cpu_request, run.memory_request, run.memory_limit
                            ),
                        ),
                    },
                },
            },
        },
    }


def jobs_network_policy(config: FeastConfig) -> dict[str, Any]:
    """The apply and materialization pods serve nothing: no ingress at all (a policy with
    no ingress rule refuses every connection to the pods it selects)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(JOBS_POLICY_NAME, config, "feature-repo"),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "feast"},
                "matchExpressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": [APPLY_COMPONENT, MATERIALIZE_COMPONENT],
                    }
                ],
            },
            "policyTypes": ["Ingress"],
        },
    }


def render(
    config: FeastConfig,
    cloud: CloudType,
    offline_data_uri: str,
    store_data: Mapping[str, str],
    aws_region: str | None = None,
) -> list[dict[str, Any]]:
    """Every object of the feature repository: ConfigMap, apply Job, CronJob, NetworkPolicy."""
    config_map = repo_config_map(config, offline_data_uri)
    digest = repo_digest(config_map["data"], store_data)
    return [
        config_map,
        apply_job(config, cloud, digest, aws_region),
        materialize_cron_job(config, cloud, aws_region),
        jobs_network_policy(config),
    ]
