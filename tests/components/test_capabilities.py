"""The capability model: what objects and planned resources rely on and provide, the check
between the two, and the catalog's declarations checked against the packaged upstream charts."""

import tarfile
from pathlib import Path

import pytest
import yaml

from mlops_platform import docs
from mlops_platform.components import versions
from mlops_platform.components.capabilities import catalog
from mlops_platform.components.capabilities.model import (
    METRICS_API,
    Inventory,
    Need,
    Offer,
    Problem,
    StorageClassSpec,
    api,
    check,
    crd,
    object_needs,
    object_offer,
    objects_inventory,
    provisioner,
    storage_class,
)
from mlops_platform.components.capabilities.plan import resource_inventory, unmet
from mlops_platform.manifests import _CrdLoader

DEFAULT = storage_class(None)


def pvc(name, **spec):
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def hpa(name, metrics=None, api_version="autoscaling/v2"):
    spec = {"scaleTargetRef": {"kind": "Deployment", "name": name}, "maxReplicas": 3}
    if metrics is not None:
        spec["metrics"] = metrics
    return {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": spec,
    }


def storage_class_object(name, provisioner_name, default=None):
    metadata = {"name": name}
    if default is not None:
        metadata["annotations"] = {catalog_default_annotation(): str(default).lower()}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": metadata,
        "provisioner": provisioner_name,
    }


def catalog_default_annotation():
    return "storageclass.kubernetes.io/is-default-class"


# --- what one object relies on -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "needs"),
    [
        (pvc("data", storageClassName="gp3"), [storage_class("gp3")]),
        (pvc("data"), [DEFAULT]),
        (pvc("static", storageClassName=""), []),  # binds a pre-created PV: no class
        (
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "volumeClaimTemplates": [
                        {"metadata": {"name": "a"}, "spec": {}},
                        {"metadata": {"name": "b"}, "spec": {"storageClassName": "fast"}},
                    ]
                },
            },
            [DEFAULT, storage_class("fast")],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {
                    "template": {
                        "spec": {
                            "volumes": [
                                {
                                    "name": "scratch",
                                    "ephemeral": {"volumeClaimTemplate": {"spec": {}}},
                                },
                                {"name": "tmp", "emptyDir": {}},
                            ]
                        }
                    }
                },
            },
            [DEFAULT],
        ),
        (hpa("cpu", [{"type": "Resource", "resource": {"name": "cpu"}}]), [api(METRICS_API)]),
        (hpa("default"), [api(METRICS_API)]),  # v2 without metrics: 80% CPU
        (hpa("v1", api_version="autoscaling/v1"), [api(METRICS_API)]),
        (
            hpa("mixed", [{"type": "Pods"}, {"type": "External"}, {"type": "ContainerResource"}]),
            [
                api("custom.metrics.k8s.io/v1beta2"),
                api("external.metrics.k8s.io/v1beta1"),
                api(METRICS_API),
            ],
        ),
        (
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {"name": "r"},
                "spec": {},
            },
            [crd("monitoring.coreos.com/v1", "PrometheusRule")],
        ),
        (
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaNodePool",
                "metadata": {"name": "pool"},
                "spec": {
                    "storage": {
                        "type": "jbod",
                        "volumes": [
                            {"id": 0, "type": "persistent-claim", "size": "5Gi"},
                            {"id": 1, "type": "persistent-claim", "size": "5Gi", "class": "fast"},
                            {"id": 2, "type": "ephemeral"},
                        ],
                    }
                },
            },
            [crd("kafka.strimzi.io/v1", "KafkaNodePool"), DEFAULT, storage_class("fast")],
        ),
        (
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "Prometheus",
                "metadata": {"name": "p"},
                "spec": {"storage": {"volumeClaimTemplate": {"spec": {"storageClassName": "x"}}}},
            },
            [crd("monitoring.coreos.com/v1", "Prometheus"), storage_class("x")],
        ),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, []),
    ],
    ids=lambda value: value.get("metadata", {}).get("name") if isinstance(value, dict) else None,
)
def test_object_needs(obj, needs):
    assert [need.capability for need in object_needs(obj)] == needs


def test_a_need_names_the_object_and_the_field():
    [need] = object_needs(hpa("churn", [{"type": "Resource"}]))
    assert need == Need(
        api(METRICS_API), "HorizontalPodAutoscaler churn", "spec.metrics[0] (Resource)"
    )


def test_object_offers():
    offer = object_offer(storage_class_object("gp3", "ebs.csi.aws.com", default=True))
    assert offer.storage_classes == (StorageClassSpec("gp3", "ebs.csi.aws.com", True),)
    crd_object = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "canaries.flagger.app"},
        "spec": {
            "group": "flagger.app",
            "names": {"kind": "Canary"},
            "versions": [
                {"name": "v1beta1", "served": True},
                {"name": "v1alpha1", "served": False},
            ],
        },
    }
    assert object_offer(crd_object).capabilities == {crd("flagger.app/v1beta1", "Canary")}
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1"},
    }
    assert object_offer(api_service).capabilities == {api(METRICS_API)}
    assert object_offer(pvc("x")) is None


# --- the check -------------------------------------------------------------------------------


def _inventory(objects, *offers):
    inventory = objects_inventory(objects)
    inventory.offers += offers
    return inventory


def _eks(version):
    return Offer(
        "EKS", storage_classes=catalog.eks_baseline(version).storage_classes, existing=True
    )


EBS = Offer("EKS add-on ebs", capabilities=frozenset({provisioner("ebs.csi.aws.com")}))
GP3 = storage_class_object("gp3", "ebs.csi.aws.com", default=True)


@pytest.mark.parametrize(
    ("inventory", "problems"),
    [
        (_inventory([pvc("data"), GP3], EBS), []),
        (
            _inventory([pvc("data")], EBS),
            [
                "PersistentVolumeClaim data: relies on a default StorageClass "
                "(spec.storageClassName), which nothing provides"
            ],
        ),
        (
            _inventory([pvc("data"), GP3]),
            [
                "PersistentVolumeClaim data: relies on StorageClass gp3 (spec.storageClassName), "
                "whose provisioner ebs.csi.aws.com nothing installs"
            ],
        ),
        # EKS before 1.30: gp2 is the default, but the in-tree plugin is served by the CSI driver
        (
            _inventory(
                [pvc("data")],
                _eks("1.29"),
            ),
            [
                "PersistentVolumeClaim data: relies on StorageClass gp2 (spec.storageClassName), "
                "whose provisioner ebs.csi.aws.com nothing installs"
            ],
        ),
        (
            _inventory(
                [pvc("data")],
                EBS,
                _eks("1.29"),
            ),
            [],
        ),
        # ... and with gp3 added as the default too, there are two defaults unless gp2 is patched
        (
            _inventory(
                [GP3],
                EBS,
                _eks("1.29"),
            ),
            [
                "cluster: 2 default StorageClasses (gp2, gp3): a claim without a class gets "
                "whichever was created last"
            ],
        ),
        (
            _inventory(
                [GP3],
                EBS,
                _eks("1.29"),
                Offer("patch", default_changes=(("gp2", False),)),
            ),
            [],
        ),
        (
            _inventory([], Offer("patch", default_changes=(("gp2", False),))),
            ["patch: patches StorageClass gp2, which no one provides"],
        ),
        (
            _inventory(
                [storage_class_object("gp2", "ebs.csi.aws.com")],
                _eks("1.35"),
            ),
            ["StorageClass gp2: creates StorageClass gp2, which EKS provides already"],
        ),
        (
            _inventory([hpa("churn")]),
            [
                "HorizontalPodAutoscaler churn: relies on api metrics.k8s.io/v1beta1 "
                "(spec.metrics (default: CPU)), which nothing provides"
            ],
        ),
        (
            _inventory(
                [hpa("churn")], Offer("GKE", capabilities=catalog.gke_baseline().capabilities)
            ),
            [],
        ),
    ],
)
def test_check(inventory, problems):
    assert [str(problem) for problem in check(inventory)] == problems


def test_eks_at_the_pinned_version_has_no_default_class():
    baseline = catalog.eks_baseline(versions.KUBERNETES_VERSION)
    assert baseline.storage_classes == (StorageClassSpec("gp2", "kubernetes.io/aws-ebs", False),)
    assert baseline.capabilities == frozenset()


# --- planned resources -----------------------------------------------------------------------


def _release(chart, values=None, **inputs):
    return {
        "type": "kubernetes:helm.sh/v3:Release",
        "name": f"r-{chart.rsplit('/', 1)[-1]}",
        "inputs": {"chart": chart, "values": values or {}, **inputs},
    }


@pytest.mark.parametrize(
    ("resource", "offers", "needs"),
    [
        (_release("oci://quay.io/strimzi-helm/strimzi-kafka-operator"), catalog.STRIMZI_CRDS, []),
        (_release("strimzi-kafka-operator", skipCrds=True), frozenset(), []),
        (_release("istiod"), frozenset(), [api(METRICS_API)]),  # chart default: autoscale
        (_release("istiod", {"autoscaleEnabled": False}), frozenset(), []),
        (_release("gateway", {"autoscaling": {"enabled": False}}), frozenset(), []),
        (_release("minio"), frozenset(), [DEFAULT]),
        (
            _release("minio", {"persistence": {"storageClass": "fast"}}),
            frozenset(),
            [storage_class("fast")],
        ),
        (_release("minio", {"persistence": {"enabled": False}}), frozenset(), []),
        (_release("metrics-server"), frozenset({api(METRICS_API)}), []),
        (_release("kube-prometheus-stack", {"crds": {"enabled": False}}), frozenset(), []),
        (
            _release(
                "kube-prometheus-stack",
                {
                    "prometheus": {
                        "prometheusSpec": {"storageSpec": {"volumeClaimTemplate": {"spec": {}}}}
                    },
                    "grafana": {"persistence": {"enabled": True, "storageClassName": "gp3"}},
                },
            ),
            catalog.PROMETHEUS_OPERATOR_CRDS,
            [DEFAULT, storage_class("gp3")],
        ),
        (
            {
                "type": "kubernetes:kustomize/v2:Directory",
                "name": "kfp",
                "inputs": {
                    "directory": "https://github.com/kubeflow/pipelines/manifests/kustomize/"
                    "cluster-scoped-resources?ref=2.16.1"
                },
            },
            catalog.KFP_CLUSTER_SCOPED_CRDS,
            [],
        ),
        (
            {
                "type": "aws:eks/addon:Addon",
                "name": "ebs",
                "inputs": {"addonName": "aws-ebs-csi-driver"},
            },
            frozenset({provisioner("ebs.csi.aws.com")}),
            [],
        ),
        (
            {
                "type": "gcp:container/cluster:Cluster",
                "name": "gke",
                "inputs": {
                    "addonsConfig": {"gcePersistentDiskCsiDriverConfig": {"enabled": False}}
                },
            },
            frozenset({api(METRICS_API)}),
            [],
        ),
        (
            {
                "type": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
                "name": "churn-hpa",
                "inputs": hpa("churn"),
            },
            frozenset(),
            [api(METRICS_API)],
        ),
    ],
    ids=lambda value: value.get("name") if isinstance(value, dict) else None,
)
def test_resource_inventory(resource, offers, needs):
    inventory = resource_inventory(resource)
    assert frozenset().union(*(offer.capabilities for offer in inventory.offers)) == offers
    assert [need.capability for need in inventory.needs] == needs
    assert inventory.problems == []


def test_an_undeclared_chart_or_kustomize_build_is_a_problem():
    found = resource_inventory(_release("mystery"))
    assert found.problems == [
        Problem(
            "Helm release r-mystery (mystery)",
            "chart mystery has no capability declaration in the catalog",
        )
    ]
    kustomize = {
        "type": "kubernetes:kustomize/v2:Directory",
        "name": "k",
        "inputs": {"directory": "x"},
    }
    assert [str(p) for p in unmet([kustomize])] == [
        "kustomize k: x has no capability declaration in the catalog"
    ]


def test_patched_gp2_and_a_new_default_on_an_old_eks_cluster():
    resources = [
        {"type": "aws:eks/cluster:Cluster", "name": "eks", "inputs": {"version": "1.29"}},
        {
            "type": "aws:eks/addon:Addon",
            "name": "ebs",
            "inputs": {"addonName": "aws-ebs-csi-driver"},
        },
        {"type": "kubernetes:storage.k8s.io/v1:StorageClass", "name": "gp3", "inputs": GP3},
        {"type": "kubernetes:core/v1:PersistentVolumeClaim", "name": "data", "inputs": pvc("data")},
    ]
    assert [str(p) for p in unmet(resources)] == [
        "cluster: 2 default StorageClasses (gp2, gp3): a claim without a class gets whichever "
        "was created last"
    ]
    patch = {
        "type": "kubernetes:storage.k8s.io/v1:StorageClassPatch",
        "name": "gp2-patch",
        "inputs": storage_class_object("gp2", "kubernetes.io/aws-ebs", default=False),
    }
    assert unmet([*resources, patch]) == []


def test_a_local_cluster_is_passed_as_existing():
    resources = [
        {"type": "kubernetes:core/v1:PersistentVolumeClaim", "name": "d", "inputs": pvc("d")}
    ]
    assert len(unmet(resources)) == 1
    for distribution in ("kind", "k3d", "minikube"):
        assert unmet(resources, catalog.LOCAL_BASELINES[distribution]) == [], distribution
    hpas = [
        {
            "type": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "name": "h",
            "inputs": hpa("h"),
        }
    ]
    assert unmet(hpas, catalog.LOCAL_BASELINES["k3d"]) == []
    assert len(unmet(hpas, catalog.LOCAL_BASELINES["kind"])) == 1


# --- the catalog against the packaged charts and the KFP tree --------------------------------


def _chart_crds(archive: Path) -> frozenset:
    found = set()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.endswith((".yaml", ".yml")):
                continue
            text = tar.extractfile(member).read().decode()
            if "CustomResourceDefinition" not in text:
                continue
            try:
                documents = list(yaml.load_all(text, Loader=_CrdLoader))
            except yaml.YAMLError:  # a Go template, not plain YAML
                continue
            found |= _served(documents)
    return frozenset(found)


def _served(documents) -> set:
    found = set()
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    found.add(crd(f"{spec['group']}/{version['name']}", spec["names"]["kind"]))
    return found


@pytest.mark.parametrize(
    ("chart", "declared"),
    [
        (versions.KUBE_PROMETHEUS_STACK, catalog.PROMETHEUS_OPERATOR_CRDS),
        (versions.STRIMZI_KAFKA_OPERATOR, catalog.STRIMZI_CRDS),
        (versions.ISTIO_BASE, catalog.ISTIO_CRDS),
        (versions.FLAGGER, catalog.FLAGGER_CRDS),
    ],
    ids=lambda value: getattr(value, "chart", None),
)
def test_declared_crds_are_the_packaged_charts(charts_dir, chart, declared):
    assert _chart_crds(charts_dir / f"{chart.chart}-{chart.version}.tgz") == declared


def test_charts_without_crds_declare_none(charts_dir):
    for chart in (
        versions.ISTIOD,
        versions.ISTIO_CNI,
        versions.ISTIO_GATEWAY,
        versions.MINIO,
        versions.METRICS_SERVER,
        versions.CLUSTER_AUTOSCALER,
        versions.FLAGGER_LOADTESTER,
    ):
        assert _chart_crds(charts_dir / f"{chart.chart}-{chart.version}.tgz") == set(), chart.chart
        assert catalog.CHARTS[chart.chart].provides({}, False) <= {api(METRICS_API)}


def test_every_pinned_chart_is_declared():
    pinned = {value.chart for value in vars(versions).values() if isinstance(value, versions.Chart)}
    assert pinned == set(catalog.CHARTS)


@pytest.mark.parametrize(
    ("key", "expected"),
    list(catalog.ASSUMED_CHART_DEFAULTS.items()),
    ids=lambda value: "/".join(value) if isinstance(value, tuple) else None,
)
def test_assumed_chart_defaults(charts_dir, key, expected):
    chart_name, path = key
    [chart] = [
        v
        for v in vars(versions).values()
        if isinstance(v, versions.Chart) and v.chart == chart_name
    ]
    with tarfile.open(charts_dir / f"{chart.chart}-{chart.version}.tgz") as tar:
        values = yaml.safe_load(tar.extractfile(f"{chart.chart}/values.yaml").read())
    node = values
    for part in path.split("."):
        node = node[part]
    assert node == expected


KFP = Path("kustomize/kubeflow-pipelines-2.16.1")


def test_kfp_cluster_scoped_crds_are_the_upstream_ones(charts_dir):
    root = charts_dir / KFP
    folders = [
        "manifests/kustomize/third-party/application/cluster-scoped",
        "manifests/kustomize/base/pipeline/cluster-scoped",
        "localized-files/github.com/argoproj/argo-workflows/v3.7.3/manifests/base/crds/minimal",
    ]
    found = set()
    for folder in folders:
        for path in sorted((root / folder).glob("*.yaml")):
            found |= _served(yaml.load_all(path.read_text(), Loader=_CrdLoader))
    assert found == catalog.KFP_CLUSTER_SCOPED_CRDS


def test_kfp_claims_take_the_default_class(charts_dir):
    third_party = charts_dir / KFP / "manifests/kustomize/third-party"
    claims = {
        "mysql-pv-claim": third_party / "mysql/base/mysql-pv-claim.yaml",
        "seaweedfs-pvc": third_party / "seaweedfs/base/seaweedfs/seaweedfs-pvc.yaml",
    }
    for name, path in claims.items():
        claim = yaml.safe_load(path.read_text())
        assert claim["metadata"]["name"] == name
        assert [n.capability for n in object_needs(claim)] == [DEFAULT], name
    declared = catalog.KUSTOMIZE["mlops_platform/components/pipelines/kustomize"].needs
    assert [where for cap, where in declared if cap == DEFAULT] == [
        f"PersistentVolumeClaim {name}" for name in claims
    ]


def test_an_empty_inventory_is_complete():
    assert check(Inventory()) == []


def test_readme_table_of_cluster_baselines_is_current():
    readme = Path(catalog.__file__).with_name("README.md").read_text()
    expected = docs.replace_section(
        readme, "baselines", catalog.render_baselines(versions.KUBERNETES_VERSION)
    )
    assert readme == expected, (
        "mlops_platform/components/capabilities/README.md is stale: run `uv run mlops docs`"
    )
