"""Kubeflow Pipelines, pure layer: config model, upstream manifest locations, and the objects
the platform renders itself (the `kfp-launcher` ConfigMap and a NetworkPolicy for MySQL).

The backend comes from the upstream kustomize manifests at the release pinned in
`mlops_platform/components/versions.py`: `cluster-scoped-resources` (the `kubeflow` Namespace, CRDs, cluster
RBAC) straight from GitHub, and `env/platform-agnostic` through the small overlay in
`kustomize/`, which removes the two objects the platform owns (see its comments). Pipeline
steps run as the `pipeline-runner` service account, which the `pipelines` workload identity
creates, and write their artifacts under `defaultPipelineRoot` in the platform's bucket.

The `kfp-launcher` keys and the `providers` schema are the backend's own, read in the pinned
release's `backend/src/v2/config/{env,s3,gcs,minio}.go`: without `providers` for a scheme the
launcher opens the bucket with the environment's default credentials, which is what IRSA and
GKE Workload Identity give the runner's pods; locally MinIO needs an endpoint and a key pair,
read from the identity's Secret in the same namespace.

The shipped pipelines (`mlops_platform/pipelines/pipelines/*.yaml`), the experiment and the recurring runs
of `schedules` are published by a Job in the cluster (`python -m mlops_platform.pipelines.sync`), since the
KFP API is a ClusterIP Service the deployer cannot reach. Its ConfigMap holds the sync spec and
the compiled YAMLs; both are named by a digest of what the Job would do, so it runs again exactly
when that changes. Schedules are checked here against each pipeline's declared inputs, read from
the compiled YAML (`root.inputDefinitions`), never from a hand-kept list.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import WorkloadIdentityConfig, credentials_secret_name
from mlops_platform.components.versions import KUBEFLOW_PIPELINES
from mlops_platform.pipelines import sync as kfp_sync
from mlops_platform.pipelines.components.image import BASE_IMAGE
from mlops_platform.pipelines.pipelines.compile import TARGETS

CloudType = Literal["aws", "gcp", "local"]

# Fixed by the upstream kustomizations (their `namespace:` fields, the cache-deployer
# ClusterRoleBinding, the API server's in-cluster address): not a config field.
NAMESPACE = "kubeflow"
# The API server's default runner (backend/src/apiserver/common/const.go); the overlay removes
# upstream's copy so that the workload identity's ServiceAccount is the only one.
RUNNER_SERVICE_ACCOUNT = "pipeline-runner"
API_SERVICE = "ml-pipeline"
API_PORT = 8888
UI_SERVICE = "ml-pipeline-ui"
LAUNCHER_CONFIGMAP = "kfp-launcher"
MYSQL_APP_LABEL = "mysql"  # upstream third-party/mysql: Deployment and Service select app=mysql
MYSQL_PORT = 3306
MYSQL_NETWORK_POLICY = "platform-mysql-ingress"
MANAGED_BY = kube.MANAGED_BY

CLUSTER_SCOPED_PATH = "manifests/kustomize/cluster-scoped-resources"
ENV_PATH = "manifests/kustomize/env/platform-agnostic"
OVERLAY_DIR = Path(__file__).parent / "kustomize"


def overlay_directory() -> str:
    """The overlay relative to the working directory (the Pulumi project root under `pulumi
    up`): the state and the plan then hold the same path on every machine and checkout."""
    return os.path.relpath(OVERLAY_DIR)


# Keys of the identity's credentials Secret (mlops_platform/components/identity/resources.py, local).
ACCESS_KEY_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY_KEY = "AWS_SECRET_ACCESS_KEY"
# MinIO accepts any region unless its server sets one; the AWS SDK in the launcher needs one.
MINIO_REGION = "us-east-1"

_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_ROOT_SCHEME: dict[str, str] = {"aws": "s3", "gcp": "gs", "local": "minio"}


# --- the shipped pipelines and their declared inputs ------------------------------------------

# Logical name -> compiled YAML, from the compile script's own list (`training`, `drift`).
SHIPPED_PIPELINES: dict[str, Path] = {
    name.removesuffix("_pipeline"): path for name, path in TARGETS.items()
}
# `parameterType` of the pipeline spec -> the config values a schedule may give it (a YAML
# integer is a valid double; a bool is never a number).
_COMPATIBLE: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
}


class PipelineInput(StrictModel):
    type: str
    required: bool


# libyaml when present: a compiled pipeline is ~30 KB, parsed on every plan.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _first_document(text: str) -> dict[str, Any]:
    return next(yaml.load_all(text, Loader=_LOADER))


@functools.cache
def _compiled(path: Path) -> dict[str, Any]:
    return _first_document(path.read_text())


@functools.lru_cache(maxsize=16)  # the spec, the digest and both objects read the same texts
def pipeline_info(text: str) -> tuple[str, str]:
    """(name, description) of a compiled pipeline: its KFP display name and description."""
    info = _first_document(text)["pipelineInfo"]
    return info["name"], info.get("description", "")


def declared_inputs(document: Mapping[str, Any]) -> dict[str, PipelineInput]:
    """The root parameters of a compiled pipeline; required = no default and not optional."""
    parameters = document["root"].get("inputDefinitions", {}).get("parameters", {})
    return {
        name: PipelineInput(
            type=item["parameterType"],
            required=not item.get("isOptional", False) and "defaultValue" not in item,
        )
        for name, item in parameters.items()
    }


def pipeline_inputs(pipeline: str) -> dict[str, PipelineInput]:
    return declared_inputs(_compiled(SHIPPED_PIPELINES[pipeline]))


# Inputs the platform fills in for every schedule whose pipeline declares them (the program
# passes their values: they are outputs of other components), unless a schedule sets them.
PLATFORM_PARAMETERS: dict[str, str] = {
    "tracking_uri": "the platform's MLflow tracking server (in-cluster URL)",
    "bucket_uri": "the datasets bucket the prediction-log consumer writes its windows to",
    "drift_config": "the drift detector's settings (loop.drift_monitor.settings), so a scheduled "
    "check decides exactly as the drift alert does",
    "feast_registry_path": "the feature store's registry (`<features bucket>/feast/registry.db`)",
    "feast_project": "the feature store's Feast project (feast.project)",
}


def parameter_problems(
    pipeline: str,
    inputs: Mapping[str, PipelineInput],
    parameters: Mapping[str, Any],
    provided: Collection[str] = tuple(PLATFORM_PARAMETERS),
) -> list[str]:
    """What is wrong with a schedule's parameters for `pipeline`, each message naming them.
    Inputs in `provided` are filled in by the platform when the schedule leaves them out."""
    problems = []
    for name, value in parameters.items():
        declared = inputs.get(name)
        if declared is None:
            problems.append(
                f"{name!r} is not an input of pipeline {pipeline!r}; it declares "
                f"{', '.join(sorted(inputs))}"
            )
            continue
        allowed = _COMPATIBLE.get(declared.type)
        if allowed is None:
            problems.append(f"{name!r} is a {declared.type} input: not settable from config")
        elif isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed):
            problems.append(
                f"{name!r} of pipeline {pipeline!r} is {declared.type}: "
                f"{value!r} ({type(value).__name__}) does not fit"
            )
    missing = sorted(
        n for n, i in inputs.items() if i.required and n not in parameters and n not in provided
    )
    if missing:
        problems.append(
            f"pipeline {pipeline!r} requires {', '.join(repr(m) for m in missing)} (no default)"
        )
    return problems


# --- cron ------------------------------------------------------------------------------------

# KFP's ScheduledWorkflow controller parses `cron` with robfig/cron v1's `cron.Parse` and
# evaluates it in UTC (backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go): six
# fields, seconds first, day-of-week optional. A five-field expression would parse with its first
# field as seconds (`0 2 * * *` = minute 2 of every hour), so exactly six are required. Stricter
# than robfig: `?` only where it means something (day-of-month, day-of-week), no descriptors.
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate(_MONTHS)},
    ),
    ("day-of-week", 0, 6, {d: i for i, d in enumerate(_WEEKDAYS)}),
)
_CRON_EXAMPLE = "'0 0 2 * * *' is 02:00:00 UTC every day"


def _cron_value(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> int:
    value = names.get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ValueError(f"{name} {text!r} is not in {low}-{high}")
    return value


def _check_cron_field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> None:
    for part in text.split(","):
        span, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{name} step {step!r} must be a positive number")
        if span in ("*", "?"):
            if span == "?" and name not in ("day-of-month", "day-of-week"):
                raise ValueError(f"'?' is only valid for day-of-month and day-of-week, not {name}")
            continue
        first, dash, last = span.partition("-")
        start = _cron_value(first, name, low, high, names)
        if dash and _cron_value(last, name, low, high, names) < start:
            raise ValueError(f"{name} range {span!r} runs backwards")


def check_cron(value: str) -> str:
    """`value` if KFP's scheduler accepts it as a six-field cron expression, else ValueError."""
    fields = value.split()
    if len(fields) != len(_CRON_FIELDS):
        hint = f"; with seconds first: '0 {value.strip()}'" if len(fields) == 5 else ""
        raise ValueError(
            f"cron {value!r} has {len(fields)} fields; KFP's cron has 6 (second minute hour "
            f"day-of-month month day-of-week, in UTC: {_CRON_EXAMPLE}){hint}"
        )
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        try:
            _check_cron_field(text, name, low, high, names)
        except ValueError as exc:
            raise ValueError(f"cron {value!r}: {exc}") from None
    return value


class ScheduleConfig(StrictModel):
    """A recurring run of a shipped pipeline in the platform's experiment."""

    pipeline: str = Field(
        description="Which shipped pipeline runs: "
        + ", ".join(f"`{name}`" for name in SHIPPED_PIPELINES)
        + "."
    )
    cron: str = Field(
        description="When, as KFP's six-field cron with seconds, in UTC: `0 0 2 * * *` is "
        "02:00 every day, `0 0 3 * * SUN` Sundays at 03:00."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Pipeline arguments: inputs declared by the compiled pipeline, with "
        "compatible types; every input without a default is required.",
    )
    enabled: bool = Field(default=True, description="False keeps the recurring run, paused.")
    max_concurrency: int = Field(
        default=1, ge=1, le=10, description="Runs of this schedule allowed at the same time."
    )
    catchup: bool = Field(
        default=False,
        description="Start the runs missed while paused or late (backfill); off: only the latest.",
    )

    @field_validator("pipeline")
    @classmethod
    def _shipped(cls, value: str) -> str:
        if value not in SHIPPED_PIPELINES:
            raise ValueError(
                f"pipeline {value!r} is not a shipped pipeline; "
                f"choose {', '.join(repr(p) for p in SHIPPED_PIPELINES)}"
            )
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Checked here rather than by the field's type: one message per value, naming it.
        problems = [
            f"{name!r}: {item!r} is not a string, number or boolean"
            for name, item in value.items()
            if not isinstance(item, str | int | float | bool)
        ]
        pipeline = info.data.get("pipeline")
        if not problems and pipeline is not None:  # an unknown pipeline is reported on its own
            problems = parameter_problems(pipeline, pipeline_inputs(pipeline), value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


_EXPERIMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")


class PipelinesConfig(StrictModel):
    """Kubeflow Pipelines (standalone). The release is pinned in mlops_platform/components/versions.py."""

    artifact_bucket: str = Field(
        default="artifacts",
        description="Key in `storage.buckets` of the bucket pipeline artifacts are written to.",
    )
    pipeline_root_prefix: str = Field(
        default="pipelines",
        description="Folder of the pipeline root inside that bucket (`<scheme>://<bucket>/"
        "<prefix>`); the bucket is shared with MLflow and others.",
    )
    publish: bool = Field(
        default=True,
        description="Upload the shipped pipelines, the experiment and `schedules` to KFP with "
        "a sync Job in the cluster (it runs the platform image).",
    )
    experiment: str = Field(
        default="churn",
        description="KFP experiment the scheduled runs belong to (created when missing).",
    )
    schedules: dict[str, ScheduleConfig] = Field(
        default_factory=dict,
        description="Recurring runs keyed by name (the key is the recurring run's name in "
        "KFP). A schedule removed here is deleted from KFP.",
    )
    sync_image: str = Field(
        default=BASE_IMAGE,
        description="Image of the sync Job: the platform image (kfp and this repository's "
        "`mlops_platform.pipelines`), pinned by tag or digest.",
    )

    @field_validator("artifact_bucket")
    @classmethod
    def _bucket_key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(
                f"artifact_bucket {value!r} must be a key of storage.buckets (lowercase letters, "
                "digits or '-')"
            )
        return value

    @field_validator("pipeline_root_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError(
                f"pipeline_root_prefix {value!r} must be one or more '/'-separated folder names "
                "(letters, digits, '.', '_', '-'), without leading or trailing '/'"
            )
        return value

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str) -> str:
        if not _EXPERIMENT.match(value):
            raise ValueError(
                f"experiment {value!r} must be 1-63 letters, digits, spaces, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("schedules")
    @classmethod
    def _schedule_keys(cls, value: dict[str, ScheduleConfig]) -> dict[str, ScheduleConfig]:
        for key in value:
            if not kube.is_dns_label(key) or len(key) > 40:
                raise ValueError(
                    f"schedules.{key}: a schedule key is its recurring run's name: at most 40 "
                    "lowercase letters, digits or '-', starting and ending with a letter or digit"
                )
        return value

    @field_validator("sync_image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return kube.check_pinned_image(value, "sync_image")

    @model_validator(mode="after")
    def _schedules_need_publishing(self) -> PipelinesConfig:
        if self.schedules and not self.publish:
            raise ValueError("schedules need publish: true (the sync Job creates them)")
        return self


# --- checks across the root config ------------------------------------------------------------


def runner_identity(identities: Mapping[str, WorkloadIdentityConfig]) -> str | None:
    """The key of the workload identity pipeline steps run as, if there is one."""
    for key, identity in identities.items():
        if (identity.namespace, identity.service_account) == (NAMESPACE, RUNNER_SERVICE_ACCOUNT):
            return key
    return None


def pipelines_problems(
    config: PipelinesConfig,
    bucket_keys: Iterable[str],
    identities: Mapping[str, WorkloadIdentityConfig],
) -> list[tuple[str, str]]:
    """(field path, message) for a root-config validator; empty when KFP can run. The component
    raises on the first one too."""
    known = sorted(bucket_keys)
    if config.artifact_bucket not in known:
        return [
            (
                "pipelines.artifact_bucket",
                f"unknown bucket {config.artifact_bucket!r}; storage.buckets has "
                f"{', '.join(repr(k) for k in known) or 'none'}",
            )
        ]
    key = runner_identity(identities)
    if key is None:
        return [
            (
                "pipelines",
                f"pipeline steps run as {NAMESPACE}/{RUNNER_SERVICE_ACCOUNT}: add a "
                f"workload_identities entry with namespace {NAMESPACE!r} and service_account "
                f"{RUNNER_SERVICE_ACCOUNT!r} and read_write on {config.artifact_bucket!r}",
            )
        ]
    if identities[key].buckets.get(config.artifact_bucket) != "read_write":
        return [
            (
                f"workload_identities.{key}.buckets",
                f"the pipeline runner writes artifacts to {config.artifact_bucket!r} "
                "(pipelines.artifact_bucket): it needs read_write",
            )
        ]
    return []


# --- values ----------------------------------------------------------------------------------


def cluster_scoped_url() -> str:
    """Upstream `cluster-scoped-resources` at the pinned release (a kustomize remote target)."""
    return KUBEFLOW_PIPELINES.url(CLUSTER_SCOPED_PATH)


def env_url() -> str:
    """Upstream `env/platform-agnostic` at the pinned release: the overlay's only resource."""
    return KUBEFLOW_PIPELINES.url(ENV_PATH)


def pipeline_root(cloud_type: CloudType, bucket: str, prefix: str) -> str:
    """`s3://` on AWS, `gs://` on GCP, `minio://` locally (the launcher's MinIO provider)."""
    return f"{_ROOT_SCHEME[cloud_type]}://{bucket}/{prefix}"


def api_endpoint() -> str:
    return f"http://{API_SERVICE}.{NAMESPACE}.svc.cluster.local:{API_PORT}"


def launcher_providers(cloud_type: CloudType, minio_endpoint: str | None) -> dict[str, Any] | None:
    """The `providers` document, or None where the runner's workload identity is enough.

    Locally both `minio://` (the pipeline root) and `s3://` (what the object store reports as
    bucket URIs, e.g. a pipeline's `data_uri`) reach the MinIO server with the runner's keys.
    """
    if cloud_type != "local":
        return None
    if not minio_endpoint:
        raise ValueError("pipelines: locally the object store must report its MinIO endpoint")

    def default() -> dict[str, Any]:  # a fresh dict per provider: no YAML anchors
        return {
            "endpoint": minio_endpoint,
            "region": MINIO_REGION,
            "disableSSL": minio_endpoint.startswith("http://"),
            "forcePathStyle": True,
            "credentials": {
                "fromEnv": False,
                "secretRef": {
                    "secretName": credentials_secret_name(RUNNER_SERVICE_ACCOUNT),
                    "accessKeyKey": ACCESS_KEY_KEY,
                    "secretKeyKey": SECRET_KEY_KEY,
                },
            },
        }

    return {"minio": {"default": default()}, "s3": {"default": default()}}


def launcher_configmap(
    cloud_type: CloudType, bucket: str, prefix: str, minio_endpoint: str | None = None
) -> dict[str, Any]:
    """The `kfp-launcher` ConfigMap the driver and launcher read in the run's namespace."""
    data = {"defaultPipelineRoot": pipeline_root(cloud_type, bucket, prefix)}
    providers = launcher_providers(cloud_type, minio_endpoint)
    if providers is not None:
        data["providers"] = yaml.safe_dump(providers, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": LAUNCHER_CONFIGMAP,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "data": data,
    }


def mysql_network_policy() -> dict[str, Any]:
    """Upstream's MySQL has a root account without a password: only pods of the KFP namespace
    (API server, cache server, metadata gRPC) may reach it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": MYSQL_NETWORK_POLICY,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": MYSQL_APP_LABEL}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": MYSQL_PORT}],
                }
            ],
        },
    }


# --- the sync Job: pipelines, experiment and schedules as declared state -----------------------

SYNC_NAME = "kfp-sync"
SYNC_COMPONENT = "sync"
SYNC_DIR = "/etc/kfp-sync"
SYNC_RUN_AS_USER = 10001  # the platform image's user (mlops_platform/pipelines/Dockerfile)
SYNC_TMP = "/tmp"
# The program waits this long for the API server (it may still be migrating MySQL); the Job's
# deadline covers the wait, the uploads and its retries' pods.
SYNC_API_TIMEOUT_SECONDS = 600
SYNC_BACKOFF_LIMIT = 4
SYNC_DEADLINE_SECONDS = 1800
SYNC_TTL_SECONDS = 86400


def pipeline_file(pipeline: str) -> str:
    """The ConfigMap key (and file name in the Job) of a shipped pipeline's compiled YAML."""
    return f"{pipeline}.yaml"


def pipeline_texts() -> dict[str, str]:
    """The committed compiled YAML of every shipped pipeline."""
    return {name: path.read_text() for name, path in SHIPPED_PIPELINES.items()}


def schedule_parameters(
    schedule: ScheduleConfig, defaults: Mapping[str, str], texts: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The schedule's arguments: its own, plus each platform value its pipeline declares."""
    text = (texts or {}).get(schedule.pipeline)
    inputs = (
        declared_inputs(_first_document(text))
        if text is not None
        else pipeline_inputs(schedule.pipeline)
    )
    filled = {name: value for name, value in defaults.items() if name in inputs}
    return dict(sorted({**filled, **schedule.parameters}.items()))


def schedule_problems(config: PipelinesConfig, provided: Collection[str]) -> list[tuple[str, str]]:
    """Schedules that need a platform value the program does not provide (a component used
    on its own, without the platform's MLflow or buckets)."""
    problems = []
    for key, schedule in sorted(config.schedules.items()):
        inputs = pipeline_inputs(schedule.pipeline)
        for name in sorted(set(PLATFORM_PARAMETERS) - set(provided)):
            if name in inputs and inputs[name].required and name not in schedule.parameters:
                problems.append(
                    (
                        f"pipelines.schedules.{key}.parameters.{name}",
                        f"required by pipeline {schedule.pipeline!r} and not provided by the "
                        f"platform here ({PLATFORM_PARAMETERS[name]}): set it",
                    )
                )
    return problems


def sync_spec(
    config: PipelinesConfig, texts: Mapping[str, str], defaults: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What `mlops_platform.pipelines.sync` converges KFP to (its `load_spec` reads this); `defaults` are
    the platform's values of `PLATFORM_PARAMETERS`."""
    names = {pipeline: pipeline_info(text)[0] for pipeline, text in texts.items()}
    return {
        "version": kfp_sync.SPEC_VERSION,
        "experiment": {
            "name": config.experiment,
            "description": "Scheduled runs of the platform's pipelines "
            f"({kfp_sync.MARKER}; mlops:pipelines.schedules)",
        },
        "pipelines": [
            {
                "name": names[pipeline],
                "file": pipeline_file(pipeline),
                "description": pipeline_info(text)[1],
            }
            for pipeline, text in sorted(texts.items())
        ],
        "recurring_runs": {
            key: {
                "pipeline": names[schedule.pipeline],
                "cron": schedule.cron,
                "parameters": schedule_parameters(schedule, defaults or {}, texts),
                "enabled": schedule.enabled,
                "max_concurrency": schedule.max_concurrency,
                "no_catchup": not schedule.catchup,
                "service_account": RUNNER_SERVICE_ACCOUNT,
            }
            for key, schedule in sorted(config.schedules.items())
        },
    }


def sync_files(
    config: PipelinesConfig,
    texts: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ConfigMap's data: `spec.json` and every compiled pipeline."""
    texts = pipeline_texts() if texts is None else texts
    spec = json.dumps(sync_spec(config, texts, defaults), indent=2, sort_keys=True) + "\n"
    return {
        kfp_sync.SPEC_FILE: spec,
        **{pipeline_file(p): text for p, text in sorted(texts.items())},
    }


def sync_digest(
    config: PipelinesConfig,
    texts: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> str:
    """10 hex digits naming the ConfigMap and the Job: they change, and so the Job runs again,
    exactly when what it would do changes: the spec, a compiled pipeline, the image or the API
    it talks to."""
    material = {
        "files": sync_files(config, texts, defaults),
        "image": config.sync_image,
        "api": api_endpoint(),
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:10]


def sync_object_name(
    config: PipelinesConfig,
    texts: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> str:
    return f"{SYNC_NAME}-{sync_digest(config, texts, defaults)}"


def _sync_metadata(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "labels": kube.app_labels(SYNC_NAME, SYNC_COMPONENT),
    }


def sync_config_map(
    config: PipelinesConfig,
    texts: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The spec and the compiled pipelines; immutable, since its name changes with them."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _sync_metadata(sync_object_name(config, texts, defaults)),
        "immutable": True,
        "data": sync_files(config, texts, defaults),
    }


def sync_job(
    config: PipelinesConfig,
    texts: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Runs `python -m mlops_platform.pipelines.sync` once per digest against the in-cluster API."""
    name = sync_object_name(config, texts, defaults)
    container = {
        "name": SYNC_NAME,
        "image": config.sync_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "mlops_platform.pipelines.sync"],
        "args": [
            SYNC_DIR,
            "--host",
            api_endpoint(),
            "--timeout",
            str(SYNC_API_TIMEOUT_SECONDS),
        ],
        "env": [
            {"name": "HOME", "value": SYNC_TMP},
            {"name": "TMPDIR", "value": SYNC_TMP},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "resources": kube.container_resources("50m", "256Mi", "512Mi"),
        "securityContext": kube.restricted_container_security(SYNC_RUN_AS_USER),
        "volumeMounts": [
            {"name": "tmp", "mountPath": SYNC_TMP},
            {"name": "spec", "mountPath": SYNC_DIR, "readOnly": True},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _sync_metadata(name),
        "spec": {
            "backoffLimit": SYNC_BACKOFF_LIMIT,
            "activeDeadlineSeconds": SYNC_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": SYNC_TTL_SECONDS,
            "template": {
                "metadata": {"labels": kube.app_labels(SYNC_NAME, SYNC_COMPONENT)},
                "spec": {
                    "restartPolicy": "Never",
                    # It talks to the KFP API only (standalone KFP has no auth), never to
                    # the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": kube.restricted_pod_security(SYNC_RUN_AS_USER),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "spec", "configMap": {"name": name, "defaultMode": 0o444}},
                    ],
                },
            },
        },
    }
