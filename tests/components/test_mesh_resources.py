"""Service mesh, resource layer under recording mocks: exact types, names, inputs, parents,
ordering and outputs."""

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components import versions
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.mesh import (
    IstioMesh,
    IstioMeshArgs,
    MeshConfig,
    MeshMutualTls,
    MeshMutualTlsArgs,
    model,
)
from tests.components.component_support import named, output_value, untranslated_keys

AWS = AwsCloud(type="aws", region="us-east-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
KIND = LocalCloud(type="local")
DEFAULT = MeshConfig()
WITH_GATEWAY = MeshConfig.model_validate(
    {"ingress_gateway": {"service_type": "LoadBalancer", "replicas": 3}}
)

NAMESPACE = "kubernetes:core/v1:Namespace"
RELEASE = "kubernetes:helm.sh/v3:Release"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
REPO = "https://istio-release.storage.googleapis.com/charts"


def _run(config=DEFAULT, cloud=AWS):
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        built["component"] = IstioMesh(
            "mesh", IstioMeshArgs(config=config, cloud=cloud, kubernetes=provider)
        )

    monitor = mocks.run(program)
    return monitor, built["component"]


def _children(monitor):
    parent = monitor.named("mesh").urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)


def _depends(monitor, name):
    urns = {r.urn: r.name for r in monitor.recorded}
    return sorted(urns[urn] for urn in monitor.named(name).depends_on)


@pytest.fixture(scope="module")
def default():
    return _run()


@pytest.fixture(scope="module")
def gateway():
    return _run(WITH_GATEWAY, GCP)


def test_default_creates_exactly_these_children(default):
    monitor, _ = default
    component = monitor.named("mesh")
    assert component.type == "mlops:mesh:IstioMesh"
    assert component.custom is False
    assert component.parent_type == "pulumi:pulumi:Stack"
    assert _children(monitor) == [
        (NAMESPACE, "mesh-istio-cni"),
        (NAMESPACE, "mesh-istio-system"),
        (RELEASE, "mesh-base"),
        (RELEASE, "mesh-cni"),
        (RELEASE, "mesh-istiod"),
    ]
    # Everything else recorded is the test's provider and the component itself.
    assert len(monitor.recorded) == len(_children(monitor)) + 2


def test_kubernetes_children_use_the_given_provider(default):
    monitor, _ = default
    provider = monitor.named("k8s").urn
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.type != "pulumi:providers:kubernetes":
            assert record.provider is not None, record.name
            assert record.provider.startswith(provider), record.name


def test_namespaces_are_labelled_for_pod_security(default):
    monitor, _ = default
    for name, level in (("istio-system", "restricted"), ("istio-cni", "privileged")):
        namespace = named(monitor, NAMESPACE, f"mesh-{name}")
        assert namespace.inputs["metadata"] == {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "mlops-platform",
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        }
        manifests.validate({"apiVersion": "v1", "kind": "Namespace", **namespace.inputs})
        assert namespace.depends_on == []


@pytest.mark.parametrize(
    ("resource", "release", "chart", "namespace", "values"),
    [
        ("mesh-base", "istio-base", "base", "istio-system", model.base_values),
        ("mesh-cni", "istio-cni", "cni", "istio-cni", model.cni_values),
        ("mesh-istiod", "istiod", "istiod", "istio-system", model.istiod_values),
    ],
)
def test_releases_are_the_pinned_charts(default, resource, release, chart, namespace, values):
    monitor, _ = default
    recorded = named(monitor, RELEASE, resource)
    assert recorded.inputs == {
        "name": release,
        "chart": chart,
        "version": "1.30.3",
        "repositoryOpts": {"repo": REPO},
        "namespace": namespace,
        "values": values(MeshConfig(), AWS),
        "timeout": 600,
        "compat": "true",  # set by the SDK on every Release
    }
    assert untranslated_keys(recorded.inputs) == []
    assert recorded.secret_inputs == set()


def test_ordering_base_and_cni_before_istiod(default):
    monitor, _ = default
    assert _depends(monitor, "mesh-base") == ["mesh-istio-system"]
    assert _depends(monitor, "mesh-cni") == ["mesh-istio-cni"]
    assert _depends(monitor, "mesh-istiod") == ["mesh-base", "mesh-cni", "mesh-istio-system"]


def _run_mtls(config=DEFAULT):
    """`MeshMutualTls` after `IstioMesh` in one program (the platform plans them a layer apart)."""

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        mesh = IstioMesh("mesh", IstioMeshArgs(config=config, cloud=AWS, kubernetes=provider))
        MeshMutualTls(
            "mesh-mtls",
            MeshMutualTlsArgs(config=config, kubernetes=provider),
            pulumi.ResourceOptions(depends_on=mesh.ready),
        )

    return mocks.run(program)


def test_the_mesh_plans_no_custom_resource_of_its_own_crds(default):
    """A custom resource next to the release installing its CRD fails a preview on a fresh
    cluster (pulumi-kubernetes #3027): mesh-wide mTLS is `MeshMutualTls`, a later layer's."""
    monitor, _ = default
    assert [r.name for r in monitor.recorded if "istio.io" in r.type] == []


def test_peer_authentication_is_strict_in_the_root_namespace_and_matches_the_crd(crds_dir):
    monitor = _run_mtls()
    component = monitor.named("mesh-mtls")
    assert component.type == "mlops:mesh:MeshMutualTls"
    assert [(r.type, r.name) for r in monitor.recorded if r.parent == component.urn] == [
        (PEER_AUTHENTICATION, "mesh-mtls-peer-authentication")
    ]
    # through istiod's validating webhook: after istiod
    assert component.depends_on == [monitor.named("mesh-istiod").urn]
    policy = named(monitor, PEER_AUTHENTICATION, "mesh-mtls-peer-authentication")
    assert policy.inputs == {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": "default",
            "namespace": "istio-system",
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    manifests.validate(policy.inputs)


def test_outputs_without_a_gateway(default):
    _, component = default
    assert output_value(component.namespace) == "istio-system"
    assert output_value(component.revision) == "default"
    assert output_value(component.version) == versions.ISTIO_VERSION == "1.30.3"
    assert component.ingress_gateway_service is None
    assert component.ingress_gateway_namespace is None
    assert component.ready == [component._istiod]


def test_gateway_release_on_gke_after_istiod(gateway):
    monitor, component = gateway
    assert _children(monitor) == [
        (NAMESPACE, "mesh-istio-cni"),
        (NAMESPACE, "mesh-istio-ingress"),
        (NAMESPACE, "mesh-istio-system"),
        (RELEASE, "mesh-base"),
        (RELEASE, "mesh-cni"),
        (RELEASE, "mesh-ingress-gateway"),
        (RELEASE, "mesh-istiod"),
    ]
    release = named(monitor, RELEASE, "mesh-ingress-gateway")
    assert release.inputs == {
        "name": "istio-ingressgateway",
        "chart": "gateway",
        "version": "1.30.3",
        "repositoryOpts": {"repo": REPO},
        "namespace": "istio-ingress",
        "values": model.gateway_values(WITH_GATEWAY.ingress_gateway, GCP),
        "timeout": 600,
        "compat": "true",
    }
    assert release.inputs["values"]["global"] == {"platform": "gke"}
    assert _depends(monitor, "mesh-ingress-gateway") == ["mesh-istio-ingress", "mesh-istiod"]
    ingress = named(monitor, NAMESPACE, "mesh-istio-ingress")
    assert ingress.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "baseline"
    )
    cni = named(monitor, RELEASE, "mesh-cni")
    assert cni.inputs["values"]["cniBinDir"] == "/home/kubernetes/bin"
    assert output_value(component.ingress_gateway_service) == "istio-ingressgateway"
    assert output_value(component.ingress_gateway_namespace) == "istio-ingress"


def test_without_cni_istiod_waits_only_for_base():
    config = MeshConfig.model_validate({"cni": {"enabled": False}, "mtls_mode": "PERMISSIVE"})
    monitor, _ = _run(config, KIND)
    assert _children(monitor) == [
        (NAMESPACE, "mesh-istio-system"),
        (RELEASE, "mesh-base"),
        (RELEASE, "mesh-istiod"),
    ]
    assert _depends(monitor, "mesh-istiod") == ["mesh-base", "mesh-istio-system"]
    istiod = named(monitor, RELEASE, "mesh-istiod")
    assert istiod.inputs["values"]["cni"] == {"enabled": False}
    policy = named(_run_mtls(config), PEER_AUTHENTICATION, "mesh-mtls-peer-authentication")
    assert policy.inputs["spec"] == {"mtls": {"mode": "PERMISSIVE"}}


def test_shared_namespace_is_created_once():
    config = MeshConfig.model_validate({"cni": {"namespace": "istio-system"}})
    monitor, _ = _run(config)
    namespaces = [r for r in monitor.of_type(NAMESPACE)]
    assert [n.name for n in namespaces] == ["mesh-istio-system"]
    assert namespaces[0].inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "privileged"
    )
    assert _depends(monitor, "mesh-cni") == ["mesh-istio-system"]


def test_disabled_mesh_and_missing_provider_register_nothing():
    def disabled():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        IstioMesh(
            "mesh",
            IstioMeshArgs(config=MeshConfig(enabled=False), cloud=AWS, kubernetes=provider),
        )

    with pytest.raises(ValueError, match=r"^mesh\.enabled: "):
        mocks.run(disabled)

    monitor = mocks.install()
    with pytest.raises(ValueError, match=r"^IstioMeshArgs\.kubernetes: "):
        IstioMesh("mesh", IstioMeshArgs(config=MeshConfig(), cloud=AWS, kubernetes=None))
    with pytest.raises(ValueError, match=r"^MeshMutualTlsArgs\.kubernetes: "):
        MeshMutualTls("mesh", MeshMutualTlsArgs(config=MeshConfig(), kubernetes=None))
    with pytest.raises(ValueError, match=r"^mesh\.enabled: "):
        MeshMutualTls("mesh", MeshMutualTlsArgs(config=MeshConfig(enabled=False), kubernetes=None))
    assert monitor.recorded == []


def test_opts_parent_is_respected():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        platform = pulumi.ComponentResource("mlops:test:Platform", "platform")
        IstioMesh(
            "mesh",
            IstioMeshArgs(config=MeshConfig(), cloud=AWS, kubernetes=provider),
            pulumi.ResourceOptions(parent=platform),
        )

    monitor = mocks.run(program)
    assert monitor.named("mesh").parent_name == "platform"
    assert monitor.named("mesh-istiod").parent_name == "mesh"
