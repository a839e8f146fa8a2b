"""Service mesh, pure layer: config defaults and errors, per-cloud chart values, mTLS policy."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import versions
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.mesh import model
from mlops_platform.components.mesh.model import IngressGatewayConfig, MeshConfig

README = Path(model.__file__).with_name("README.md")
DEFAULT = MeshConfig()
AWS = AwsCloud(type="aws", region="us-east-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
KIND = LocalCloud(type="local")
K3D = LocalCloud(type="local", distribution="k3d")
MINIKUBE = LocalCloud(type="local", distribution="minikube")
GATEWAY = IngressGatewayConfig(
    service_type="LoadBalancer",
    load_balancer_source_ranges=["203.0.113.0/24"],
    service_annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
)


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        MeshConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config -----------------------------------------------------------------------------------


def test_defaults_are_the_secure_choice():
    assert DEFAULT.model_dump() == {
        "enabled": True,
        "namespace": "istio-system",
        "mtls_mode": "STRICT",
        "istiod": {
            "replicas": 2,
            "max_replicas": None,
            "resources": {"cpu_request": "250m", "memory_request": "512Mi", "memory_limit": "2Gi"},
        },
        "cni": {"enabled": True, "namespace": "istio-cni"},
        "ingress_gateway": None,
    }


def test_gateway_defaults_stay_inside_the_cluster():
    gateway = MeshConfig.model_validate({"ingress_gateway": {}}).ingress_gateway
    assert gateway.model_dump() == {
        "name": "istio-ingressgateway",
        "namespace": "istio-ingress",
        "replicas": 2,
        "service_type": "ClusterIP",
        "service_annotations": {},
        "load_balancer_source_ranges": [],
        "resources": {"cpu_request": "100m", "memory_request": "128Mi", "memory_limit": "1Gi"},
    }
    assert gateway.selector == {"istio": "ingressgateway"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"mtls_mode": "DISABLE"},
            "mtls_mode: Input should be 'STRICT' or 'PERMISSIVE'",
        ),
        (
            {"namespace": "Istio_System"},
            "namespace: Value error, namespace 'Istio_System' must be a DNS label: at most 63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit",
        ),
        (
            {"namespace": "kube-system"},
            "namespace: Value error, namespace 'kube-system' is a Kubernetes system namespace",
        ),
        (
            {"cni": {"namespace": "default"}},
            "cni.namespace: Value error, namespace 'default' is a Kubernetes system namespace",
        ),
        (
            {"istiod": {"replicas": 0}},
            "istiod.replicas: Input should be greater than or equal to 1",
        ),
        (
            {"istiod": {"replicas": 3, "max_replicas": 2}},
            "istiod: Value error, max_replicas (2) must be at least replicas (3)",
        ),
        (
            {"istiod": {"resources": {"memory_limit": "2 GB"}}},
            "istiod.resources.memory_limit: Value error, memory_limit '2 GB' is not a Kubernetes "
            "quantity (e.g. 512Mi, 250m)",
        ),
        (
            {"ingress_gateway": {"name": "1gateway"}},
            "ingress_gateway.name: Value error, name '1gateway' must be a DNS-1035 label (it "
            "names the Service): at most 63 lowercase letters, digits or '-', starting with a "
            "letter",
        ),
        (
            {"ingress_gateway": {"service_type": "ExternalName"}},
            "ingress_gateway.service_type: Input should be 'ClusterIP', 'NodePort' or "
            "'LoadBalancer'",
        ),
        (
            {
                "ingress_gateway": {
                    "service_type": "LoadBalancer",
                    "load_balancer_source_ranges": ["10.0.0.1/8"],
                }
            },
            "ingress_gateway.load_balancer_source_ranges: Value error, '10.0.0.1/8' is not a "
            "CIDR block (e.g. 203.0.113.0/24)",
        ),
        (
            {"ingress_gateway": {"load_balancer_source_ranges": ["10.0.0.0/8"]}},
            "ingress_gateway: Value error, load_balancer_source_ranges only apply to "
            "service_type LoadBalancer, not ClusterIP",
        ),
        (
            {"ingress_gateway": {"replicas": 51}},
            "ingress_gateway.replicas: Input should be less than or equal to 50",
        ),
        ({"revision": "canary"}, "revision: Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_field(data, message):
    assert _error(data) == message


# --- per-cloud values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "expected"),
    [(AWS, None), (GCP, "gke"), (KIND, None), (K3D, "k3d"), (MINIKUBE, "minikube")],
)
def test_platform_profile_per_cloud(cloud, expected):
    assert model.platform(cloud) == expected


def test_base_values():
    assert model.base_values(DEFAULT, AWS) == {
        "global": {"istioNamespace": "istio-system"},
        "defaultRevision": "default",
    }
    assert model.base_values(DEFAULT, GCP)["global"] == {
        "istioNamespace": "istio-system",
        "platform": "gke",
    }


def test_istiod_values_default():
    assert model.istiod_values(DEFAULT, AWS) == {
        "global": {"istioNamespace": "istio-system"},
        "autoscaleEnabled": False,
        "replicaCount": 2,
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "seccompProfile": {"type": "RuntimeDefault"},
        "cni": {"enabled": True},
        "meshConfig": {"rootNamespace": "istio-system", "enablePrometheusMerge": True},
    }


def test_istiod_values_autoscaled_without_cni_in_another_namespace():
    config = MeshConfig.model_validate(
        {
            "namespace": "mesh",
            "istiod": {"replicas": 2, "max_replicas": 5},
            "cni": {"enabled": False},
        }
    )
    values = model.istiod_values(config, K3D)
    assert values["global"] == {"istioNamespace": "mesh", "platform": "k3d"}
    assert values["autoscaleEnabled"] is True
    assert (values["autoscaleMin"], values["autoscaleMax"]) == (2, 5)
    assert values["cni"] == {"enabled": False}
    assert values["meshConfig"]["rootNamespace"] == "mesh"


@pytest.mark.parametrize(
    ("cloud", "expected"),
    [
        (AWS, {}),
        (KIND, {}),
        (
            GCP,
            {
                "global": {"platform": "gke"},
                "cniBinDir": "/home/kubernetes/bin",
                "resourceQuotas": {"enabled": True},
            },
        ),
        (K3D, {"global": {"platform": "k3d"}}),
        (MINIKUBE, {"global": {"platform": "minikube"}}),
    ],
)
def test_cni_values_per_cloud(cloud, expected):
    assert model.cni_values(DEFAULT, cloud) == expected


def test_gateway_values():
    assert model.gateway_values(GATEWAY, AWS) == {
        "replicaCount": 2,
        "autoscaling": {"enabled": False},
        "service": {
            "type": "LoadBalancer",
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
            "loadBalancerSourceRanges": ["203.0.113.0/24"],
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        },
        "podDisruptionBudget": {"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


def test_single_gateway_replica_has_no_pdb_and_gke_gets_its_platform():
    values = model.gateway_values(IngressGatewayConfig(replicas=1), GCP)
    assert values["podDisruptionBudget"] == {}
    assert values["service"] == {"type": "ClusterIP"}
    assert values["global"] == {"platform": "gke"}


def test_gateway_pod_security_context_is_a_valid_pod_security_context():
    values = model.gateway_values(GATEWAY, AWS)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gateway"},
        "spec": {
            "securityContext": values["securityContext"],
            "containers": [{"name": "istio-proxy", "image": "auto"}],
        },
    }
    manifests.validate(pod)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "istio-ingressgateway"},
        "spec": {"selector": {"matchLabels": GATEWAY.selector}, **values["podDisruptionBudget"]},
    }
    manifests.validate(pdb)


# --- objects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
def test_peer_authentication_is_mesh_wide_and_valid(mode, crds_dir):
    config = MeshConfig(mtls_mode=mode)
    policy = model.peer_authentication(config)
    assert policy == {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": "default",
            "namespace": "istio-system",
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "spec": {"mtls": {"mode": mode}},
    }
    manifests.validate(policy)


def test_peer_authentication_validation_is_strict(crds_dir):
    policy = model.peer_authentication(DEFAULT)
    bad_mode = copy.deepcopy(policy)
    bad_mode["spec"]["mtls"]["mode"] = "ON"
    bad_field = copy.deepcopy(policy)
    bad_field["spec"]["mtls"]["mod"] = "STRICT"
    for obj in (bad_mode, bad_field):
        with pytest.raises(manifests.ManifestError):
            manifests.validate(obj)


def test_namespace_levels_default():
    assert model.namespace_levels(DEFAULT) == {
        "istio-cni": "privileged",
        "istio-system": "restricted",
    }


def test_namespace_levels_with_gateway_and_without_cni():
    config = MeshConfig.model_validate({"cni": {"enabled": False}, "ingress_gateway": {}})
    assert model.namespace_levels(config) == {
        "istio-ingress": "baseline",
        "istio-system": "restricted",
    }


def test_shared_namespace_takes_the_most_permissive_level():
    config = MeshConfig.model_validate(
        {"cni": {"namespace": "istio-system"}, "ingress_gateway": {"namespace": "istio-system"}}
    )
    assert model.namespace_levels(config) == {"istio-system": "privileged"}


@pytest.mark.parametrize("level", ["restricted", "baseline", "privileged"])
def test_namespace_manifests_are_valid(level):
    namespace = model.namespace_manifest("istio-system", level)
    manifests.validate(namespace)
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == level
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_chart_pins_match_the_crds(crds_dir):
    assert versions.ISTIO_VERSION == "1.30.3"
    assert (crds_dir / f"istio-{versions.ISTIO_VERSION}").is_dir()
    charts = (versions.ISTIO_BASE, versions.ISTIOD, versions.ISTIO_CNI, versions.ISTIO_GATEWAY)
    assert [c.chart for c in charts] == ["base", "istiod", "cni", "gateway"]
    for chart in charts:
        assert chart.repo == "https://istio-release.storage.googleapis.com/charts"
        assert chart.version == versions.ISTIO_VERSION


def test_readme_example_validates_and_renders(crds_dir):
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    [document] = [yaml.safe_load(block) for block in blocks]
    config = MeshConfig.model_validate(document["config"]["mlops:mesh"])
    assert config.ingress_gateway is not None
    assert config.ingress_gateway.service_type == "LoadBalancer"
    assert model.istiod_values(config, AWS)["autoscaleMax"] == 5
    manifests.validate(model.peer_authentication(config))
