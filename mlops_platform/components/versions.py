"""Every external version the platform deploys, in one place: an upgrade is one reviewed change.

Helm charts are referenced by repository URL, chart name and exact version; container images by
tag and digest where upstream publishes one.
"""

from typing import NamedTuple


class Chart(NamedTuple):
    repo: str
    chart: str
    version: str


# Kubernetes minor version the rendered manifests are validated against and clusters run.
KUBERNETES_VERSION = "1.35"

# NVIDIA device plugin: advertises `nvidia.com/gpu` on EKS and local GPU nodes (GKE has its own).
NVIDIA_DEVICE_PLUGIN = Chart(
    repo="https://nvidia.github.io/k8s-device-plugin",
    chart="nvidia-device-plugin",
    version="0.20.0",
)

# MinIO (local object storage), the official chart; 5.4.0 ships MinIO RELEASE.2024-12-18T13-15-44Z.
MINIO = Chart(repo="https://charts.min.io/", chart="minio", version="5.4.0")

# Cluster autoscaler (EKS; GKE has its own). Its minor version must match the cluster's:
# chart 9.59.0 ships app 1.35.0 for KUBERNETES_VERSION 1.35.
CLUSTER_AUTOSCALER = Chart(
    repo="https://kubernetes.github.io/autoscaler",
    chart="cluster-autoscaler",
    version="9.59.0",
)

# Prometheus, Alertmanager, Grafana and the prometheus-operator CRDs. 88.3.0 is the last release
# with operator v0.93.0, the version of the CRDs the PrometheusRule is validated against
# (../shared/crds/prometheus-operator-0.93.0); 88.4.0 moved to v0.93.1.
KUBE_PROMETHEUS_STACK = Chart(
    repo="https://prometheus-community.github.io/helm-charts",
    chart="kube-prometheus-stack",
    version="88.3.0",
)

# Third-party images are pinned by digest in mlops_platform/components/image_lock.json (reference -> digest),
# which images/lock.py fills from the registries (.github/workflows/image-lock.yml); the stack
# setting `images.mirror` moves every image to a mirror (mlops_platform/components/images).
IMAGE_LOCK_FILE = "mlops_platform/components/image_lock.json"

# The project's own images, built by images/build.py and released by
# .github/workflows/release.yml, which pins them here by digest (images/pin_digests.py rewrites
# these literals to `<repo>:<tag>@sha256:<digest>`). The tag follows pyproject's version.
# The model server's `-explain` variant adds shap (per-request attributions);
# mlops_platform/components/serving deploys it where a deployment turns `explain` on.
MODEL_SERVER_IMAGE = "ghcr.io/mlops-platform/model-server:0.1.0"
MODEL_SERVER_EXPLAIN_IMAGE = "ghcr.io/mlops-platform/model-server-explain:0.1.0"
PLATFORM_IMAGE = "ghcr.io/mlops-platform/platform:0.1.0"
# Feast (images/feast/: FEAST_VERSION with the S3 and GCS filesystems): the feature server, the
# apply Job, the materialization CronJob and the feature-store training step.
FEAST_IMAGE = "ghcr.io/mlops-platform/feast:0.1.0"

# Jaeger v2 (one binary on the OpenTelemetry Collector: OTLP receiver, storage, query UI), the
# optional trace backend of mlops_platform/components/monitoring (`monitoring.tracing`). The v2 image is
# `jaeger`; the v1 `all-in-one` image reached end of life on 2025-12-31.
JAEGER_IMAGE = "jaegertracing/jaeger:2.15.0"

# MLflow tracking server: the official image's `-full` variant (published from 3.9.0 on) carries
# the PostgreSQL driver (psycopg2), boto3 and google-cloud-storage; the plain tag has none of
# them. Same minor as the mlflow client in uv.lock (3.17.x).
MLFLOW_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.0-full"

# PostgreSQL major version of MLflow's backend store: RDS engine version, Cloud SQL
# POSTGRES_<n>, and the official image locally. 17.11 is the newest 17.x the official image
# publishes in docker-library/official-images library/postgres (commit 37079fb3, 2026-08-21:
# "Tags: 17.11, 17, 17.11-trixie, 17-trixie"); 17.9 was February's out-of-cycle release, with
# 17.10 (May 2026, eleven CVEs) and 17.11 after it. Check that file again before a release.
POSTGRES_MAJOR_VERSION = 17
POSTGRES_IMAGE = "postgres:17.11-trixie"

# Strimzi Kafka operator, the official chart as its 1.2.0 README installs it (OCI on Quay). 1.2.0
# installs the CRDs of ../shared/crds/strimzi-1.2.0 (identical to tag 1.2.0's
# packaging/install/cluster-operator/04x-Crd-*.yaml) and runs Kafka 4.2.0-4.3.1.
STRIMZI_KAFKA_OPERATOR = Chart(
    repo="oci://quay.io/strimzi-helm",
    chart="strimzi-kafka-operator",
    version="1.2.0",
)
# The images Strimzi 1.2.0 runs: the operator image (also the Topic and User Operators and the
# brokers' init container) and one Kafka image per Kafka version it supports (its
# kafka-versions.yaml at tag 1.2.0; the chart's `kafka.image` tag prefix `1.2.0` + `-kafka-<v>`).
# The operator takes the Kafka images from a table in its environment that has no room for a
# digest, so the `Kafka` resource names its images itself (mlops_platform/components/kafka):
# the lock's digests and the mirror then reach the brokers like every other image.
STRIMZI_OPERATOR_IMAGE = "quay.io/strimzi/operator:1.2.0"
STRIMZI_KAFKA_VERSIONS = ("4.2.0", "4.2.1", "4.3.0", "4.3.1")
STRIMZI_KAFKA_IMAGES = {
    version: f"quay.io/strimzi/kafka:1.2.0-kafka-{version}" for version in STRIMZI_KAFKA_VERSIONS
}

# Istio, the official charts (`base` = CRDs + default-revision webhook, `istiod`, `cni`, `gateway`);
# every chart is released with the Istio version. 1.30.3 matches the CRDs the rendered Istio
# objects are validated against (../shared/crds/istio-1.30.3).
ISTIO_VERSION = "1.30.3"
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
ISTIO_BASE = Chart(repo=ISTIO_CHARTS, chart="base", version=ISTIO_VERSION)
ISTIOD = Chart(repo=ISTIO_CHARTS, chart="istiod", version=ISTIO_VERSION)
ISTIO_CNI = Chart(repo=ISTIO_CHARTS, chart="cni", version=ISTIO_VERSION)
ISTIO_GATEWAY = Chart(repo=ISTIO_CHARTS, chart="gateway", version=ISTIO_VERSION)


class KustomizeRelease(NamedTuple):
    """A git repository of kustomize manifests at a release tag."""

    repo: str
    ref: str

    def url(self, path: str) -> str:
        """A kustomize remote target: `<repo>/<path>?ref=<tag>` (the form upstream docs use)."""
        return f"{self.repo}/{path}?ref={self.ref}"


# Kubeflow Pipelines standalone from its kustomize manifests (no official Helm chart). Release
# 2.16.1 is the backend of the kfp SDK 2.16.1 in uv.lock (tag 67a73cf8; images
# ghcr.io/kubeflow/kfp-*:2.16.1, Argo Workflows v3.7.3, MySQL 8.4, SeaweedFS). The overlay in
# mlops_platform/components/pipelines/kustomize/ names the same ref; a test keeps the two equal.
KUBEFLOW_PIPELINES = KustomizeRelease(repo="https://github.com/kubeflow/pipelines", ref="2.16.1")

# Feast feature store, installed in the platform's Feast image (FEAST_IMAGE above) from
# images/feast/uv.lock, whose pyproject pins the same version (a test keeps the two equal). Not
# the official feature-server image: its `feast[minimal]` has no s3fs or gcsfs, so its file
# offline store cannot read the features bucket's Parquet (images/feast/pyproject.toml).
FEAST_VERSION = "0.66.0"
# Online store engines: ElastiCache for Valkey (major.minor; ElastiCache applies patches),
# Memorystore for Redis, and the official redis image locally (library/redis tag, Debian trixie).
# 8.10.2 is the newest 8.10 patch: redis/redis 8.10 branch 00-RELEASENOTES, "Redis 8.10.2
# Released Thu 17 Sep 2026" (SECURITY urgency); the official image's 8.10.x-trixie tags come
# from redis/docker-library-redis (official-images library/redis lists 8.10.1-trixie at its
# 2026-08-21 commit 37079fb3, before 8.10.2 was out).
ELASTICACHE_VALKEY_VERSION = "8.0"
MEMORYSTORE_REDIS_VERSION = "REDIS_7_2"
REDIS_IMAGE = "redis:8.10.2-trixie"

# Flagger (progressive delivery, Istio provider) and its load tester, the official charts at the
# 1.44.0 release; the CRDs come with the flagger chart (../shared/crds/flagger-1.44.0 is the
# same file). Loadtester chart 0.38.0 is the one released with Flagger 1.44.0.
FLAGGER_CHARTS = "https://flagger.app"
FLAGGER = Chart(repo=FLAGGER_CHARTS, chart="flagger", version="1.44.0")
FLAGGER_LOADTESTER = Chart(repo=FLAGGER_CHARTS, chart="loadtester", version="0.38.0")

# EKS managed add-ons, pinned for KUBERNETES_VERSION 1.35 (a test keeps the two in step: the
# kube-proxy add-on's minor is the cluster's). No AWS account is reachable from this repository's
# CI, so the versions come from `aws eks describe-addon-versions --kubernetes-version 1.35` as
# quoted in public EKS 1.35 configurations (checked 2026-12-04): the EKS 1.35 default versions of
# 2026-10-02 for vpc-cni, coredns and kube-proxy, and aws-ebs-csi-driver v1.57.1-eksbuild.1, the
# 1.35 default in several independent 1.35 configs. Re-checked 2026-12-05 against the public
# sources the docs/pages search reaches: the EKS user guide's CoreDNS table stops at 1.34
# (v1.12.4-eksbuild.1), its kube-proxy table at 1.34 (v1.34.0-eksbuild.5); EKS Distro's
# v1-34-eks-16 release notes ship CoreDNS v1.13.2 ("project updates for coredns 1.29-1.35"), the
# CoreDNS minor pinned here. No public page lists the 1.35 eksbuild numbers or contradicts them,
# so the pins stay unconfirmed by AWS's own tables. Before an upgrade, re-check with
# `aws eks describe-addon-versions --kubernetes-version <minor> --addon-name <name>`.
EKS_ADDON_VERSIONS = {
    "vpc-cni": "v1.22.4-eksbuild.3",
    "coredns": "v1.13.2-eksbuild.31",
    "kube-proxy": "v1.35.3-eksbuild.29",
    "aws-ebs-csi-driver": "v1.57.1-eksbuild.1",
}

# metrics-server (the `metrics.k8s.io` API behind every CPU/memory HorizontalPodAutoscaler) where
# the cluster has none: the official chart, 3.13.1 = metrics-server 0.8.1 (image
# registry.k8s.io/metrics-server/metrics-server:v0.8.1, the chart's appVersion), which upstream's
# compatibility matrix gives for Kubernetes 1.31+.
METRICS_SERVER = Chart(
    repo="https://kubernetes-sigs.github.io/metrics-server/",
    chart="metrics-server",
    version="3.13.1",
)
