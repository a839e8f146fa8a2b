"""mlops_platform/teardown.py on GCP: what GKE made for the cluster (Service load balancers' forwarding
rules, claims' persistent disks) is found, waited for and named.

No emulator of the Compute Engine API exists (Google's emulators cover Pub/Sub, Datastore,
Firestore, Bigtable and Spanner), so the real google-cloud-compute clients talk over HTTP to a
local server that answers the two REST calls the check makes with the responses the API
returns (`forwardingRules.list`, `disks.aggregatedList`: the documented JSON, paged as the API
pages it). The pure listing logic is table-tested on the same response shapes.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from mlops_platform import cli, teardown

PROJECT, REGION, CLUSTER = "acme-mlops-prod", "europe-west4", "mlops-prod"  # Pulumi.prod-gcp
BASE = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}"


def _rule(name: str, description: str, **extra) -> dict:
    """A forwarding rule as `forwardingRules.list` returns it."""
    return {
        "kind": "compute#forwardingRule",
        "id": str(abs(hash(name)) % 10**18),
        "creationTimestamp": "2026-12-01T09:12:44.118-08:00",
        "name": name,
        "description": description,
        "region": f"{BASE}/regions/{REGION}",
        "IPAddress": "34.90.1.17",
        "IPProtocol": "TCP",
        "portRange": "80-443",
        "target": f"{BASE}/regions/{REGION}/targetPools/{name}",
        "selfLink": f"{BASE}/regions/{REGION}/forwardingRules/{name}",
        "loadBalancingScheme": "EXTERNAL",
        "networkTier": "PREMIUM",
        "labelFingerprint": "42WmSpB8rSM=",
        "fingerprint": "u1yQfWqKx2U=",
        **extra,
    }


def _disk(name: str, zone: str, labels: dict, description: str = "") -> dict:
    """A persistent disk as `disks.aggregatedList` returns it."""
    return {
        "kind": "compute#disk",
        "id": str(abs(hash(name)) % 10**18),
        "creationTimestamp": "2026-12-01T09:20:03.512-08:00",
        "name": name,
        "description": description,
        "sizeGb": "200",
        "zone": f"{BASE}/zones/{zone}",
        "status": "READY",
        "selfLink": f"{BASE}/zones/{zone}/disks/{name}",
        "type": f"{BASE}/zones/{zone}/diskTypes/pd-balanced",
        "labels": labels,
        "labelFingerprint": "nT7_dAxskBs=",
        "physicalBlockSizeBytes": "4096",
    }


def _pvc(namespace: str, name: str, volume: str) -> str:
    """The description the PD CSI driver writes (external-provisioner's extra metadata)."""
    return json.dumps(
        {
            "kubernetes.io/created-for/pv/name": volume,
            "kubernetes.io/created-for/pvc/name": name,
            "kubernetes.io/created-for/pvc/namespace": namespace,
            "storage.gke.io/created-by": "pd.csi.storage.gke.io",
        }
    )


GKE_LABELS = {
    "goog-gke-volume": "",
    "goog-k8s-cluster-location": REGION,
    "goog-k8s-cluster-name": CLUSTER,
}


def _made() -> dict:
    """What the ml and platform layers leave in the project after their destroy, with
    look-alikes that are not the cluster's."""
    return {
        "rules": {
            "a6f1c2d3e4b5a6978": _rule(
                "a6f1c2d3e4b5a6978",
                '{"kubernetes.io/service-name":"istio-ingress/istio-ingressgateway"}',
            ),
            "k8s2-tcp-3kf9x2-serving-churn-public-q7w1": _rule(
                "k8s2-tcp-3kf9x2-serving-churn-public-q7w1",
                '{"networking.gke.io/service-name":"serving/churn-public",'
                '"networking.gke.io/api-version":"ga"}',
                loadBalancingScheme="EXTERNAL",
                backendService=f"{BASE}/regions/{REGION}/backendServices/k8s2-tcp-3kf9x2",
            ),
            # made by hand / by Terraform: not Kubernetes'
            "website": _rule("website", "the marketing site"),
            "legacy": _rule("legacy", ""),
        },
        "disks": {
            ("europe-west4-a", "pvc-5b0c1e0a-9f1d-4a53-8a0e-1d2c3b4a5f60"): _disk(
                "pvc-5b0c1e0a-9f1d-4a53-8a0e-1d2c3b4a5f60",
                "europe-west4-a",
                GKE_LABELS,
                _pvc("monitoring", "prometheus-db-0", "pvc-5b0c1e0a-9f1d-4a53-8a0e-1d2c3b4a5f60"),
            ),
            ("europe-west4-b", "pvc-0d8e5f3a-1c2b-4e6f-9a7b-8c9d0e1f2a3b"): _disk(
                "pvc-0d8e5f3a-1c2b-4e6f-9a7b-8c9d0e1f2a3b",
                "europe-west4-b",
                GKE_LABELS,
                _pvc("kafka", "data-0-kafka-0", "pvc-0d8e5f3a-1c2b-4e6f-9a7b-8c9d0e1f2a3b"),
            ),
            # the same kind of disk of another cluster, a node's boot disk, a hand-made disk
            ("europe-west4-a", "pvc-other"): _disk(
                "pvc-other",
                "europe-west4-a",
                {**GKE_LABELS, "goog-k8s-cluster-name": "mlops-staging"},
                _pvc("monitoring", "prometheus-db-0", "pvc-other"),
            ),
            ("europe-west4-a", "gke-mlops-prod-system-1a2b3c4d-x9z8"): _disk(
                "gke-mlops-prod-system-1a2b3c4d-x9z8",
                "europe-west4-a",
                {**GKE_LABELS, "goog-k8s-node-pool-name": "system"},
            ),
            ("europe-west4-c", "scratch"): _disk("scratch", "europe-west4-c", {}),
        },
    }


EXPECTED = {
    "forwarding rule a6f1c2d3e4b5a6978 (Service istio-ingress/istio-ingressgateway)",
    "forwarding rule k8s2-tcp-3kf9x2-serving-churn-public-q7w1 (Service serving/churn-public)",
    "persistent disk europe-west4-a/pvc-5b0c1e0a-9f1d-4a53-8a0e-1d2c3b4a5f60 "
    "(PVC monitoring/prometheus-db-0)",
    "persistent disk europe-west4-b/pvc-0d8e5f3a-1c2b-4e6f-9a7b-8c9d0e1f2a3b "
    "(PVC kafka/data-0-kafka-0)",
}


# -- the pure listing, table-tested on the API's response shapes ------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ('{"kubernetes.io/service-name":"a/b"}', ["Service a/b"]),
        (
            '{"networking.gke.io/service-name":"a/b","networking.gke.io/api-version":"ga"}',
            ["Service a/b"],
        ),
        ("", []),
        ("the marketing site", []),
        ('["kubernetes.io/service-name"]', []),
        ('{"kubernetes.io/cluster-name":"x"}', []),
    ],
)
def test_a_forwarding_rule_is_a_services_by_its_description(description, expected):
    rule = compute_v1.ForwardingRule.from_json(
        json.dumps(_rule("r", description)), ignore_unknown_fields=True
    )
    assert [left.owner for left in teardown.gcp_forwarding_rule_leftovers([rule])] == expected


@pytest.mark.parametrize(
    ("labels", "description", "expected"),
    [
        (GKE_LABELS, _pvc("ns", "data-0", "pvc-1"), ["PVC ns/data-0"]),
        ({**GKE_LABELS, "goog-k8s-cluster-name": "other"}, _pvc("ns", "data-0", "pvc-1"), []),
        ({}, _pvc("ns", "data-0", "pvc-1"), []),  # a claim's disk, but no cluster says so
        (GKE_LABELS, "", []),  # a node's boot disk
        (GKE_LABELS, json.dumps({"kubernetes.io/created-for/pvc/name": "x"}), []),
    ],
)
def test_a_disk_is_the_clusters_claims_by_label_and_description(labels, description, expected):
    disk = compute_v1.Disk.from_json(
        json.dumps(_disk("pvc-1", "europe-west4-a", labels, description)),
        ignore_unknown_fields=True,
    )
    found = teardown.gcp_disk_leftovers([("zones/europe-west4-a", [disk])], CLUSTER)
    assert [left.owner for left in found] == expected
    assert [left.id for left in found] == ["europe-west4-a/pvc-1"] * len(expected)


# -- the real clients against recorded REST responses ----------------------------------------


class FakeCompute:
    """Answers `forwardingRules.list` and `disks.aggregatedList` from `state`, paged like the
    API (`maxResults` default 500; here 1 rule per page so the clients follow
    `nextPageToken`), and records every request."""

    def __init__(self, state: dict):
        self.state = state
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                status, body = fake.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> tuple[int, dict]:
        url = urlparse(path)
        query = parse_qs(url.query)
        rules_path = f"/compute/v1/projects/{PROJECT}/regions/{REGION}/forwardingRules"
        disks_path = f"/compute/v1/projects/{PROJECT}/aggregated/disks"
        if url.path == rules_path:
            rules = list(self.state["rules"].values())
            page = int(query.get("pageToken", ["0"])[0])
            body = {
                "kind": "compute#forwardingRuleList",
                "id": f"projects/{PROJECT}/regions/{REGION}/forwardingRules",
                "items": rules[page : page + 1],
                "selfLink": f"{BASE}/regions/{REGION}/forwardingRules",
            }
            if page + 1 < len(rules):
                body["nextPageToken"] = str(page + 1)
            return 200, body
        if url.path == disks_path:
            scopes: dict[str, dict] = {
                f"zones/{zone}": {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": f"There are no results for scope 'zones/{zone}' on this page.",
                        "data": [{"key": "scope", "value": f"zones/{zone}"}],
                    }
                }
                for zone in ("europe-west4-a", "europe-west4-b", "europe-west4-c")
            }
            for (zone, _), disk in self.state["disks"].items():
                scopes[f"zones/{zone}"] = {
                    "disks": [*scopes[f"zones/{zone}"].get("disks", []), disk]
                }
            return 200, {
                "kind": "compute#diskAggregatedList",
                "id": f"projects/{PROJECT}/aggregated/disks",
                "items": scopes,
                "selfLink": f"{BASE}/aggregated/disks",
            }
        return 404, {"error": {"code": 404, "message": f"The resource '{path}' was not found"}}

    def clients(self) -> dict:
        return teardown.gcp_clients(
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )

    def __enter__(self) -> FakeCompute:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def compute():
    with FakeCompute(_made()) as fake:
        yield fake


def test_finds_through_the_real_clients_only_what_gke_made_for_this_cluster(compute):
    found = teardown.find_gcp(CLUSTER, PROJECT, REGION, compute.clients())
    assert {str(left) for left in found} == EXPECTED
    assert len(found) == len(EXPECTED)
    # every page of the rules was read
    assert sum("forwardingRules" in r for r in compute.requests) == len(compute.state["rules"])
    assert teardown.find_gcp("mlops-dev", PROJECT, REGION, compute.clients()) == [
        left for left in found if left.kind == "forwarding rule"
    ]


class _Clock:
    def __init__(self, on_sleep):
        self.now, self.sleeps, self.on_sleep = 0.0, [], on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.sleeps))


def test_waits_while_gke_deletes_and_passes_once_all_is_gone(compute):
    state = compute.state

    def controllers(looks: int) -> None:
        if looks == 1:  # the service controller deletes the load balancers first
            for name in list(state["rules"]):
                if "service-name" in state["rules"][name]["description"]:
                    del state["rules"][name]
        elif looks == 2:  # then the CSI driver the claims' disks
            for key, disk in list(state["disks"].items()):
                if "created-for" in disk["description"]:
                    del state["disks"][key]

    clock = _Clock(controllers)
    seen: list[int] = []
    clients = compute.clients()
    left = teardown.wait_until_gone(
        lambda: teardown.find_gcp(CLUSTER, PROJECT, REGION, clients),
        timeout=600,
        interval=15,
        clock=clock,
        sleep=clock.sleep,
        report=lambda left: seen.append(len(left)),
    )
    assert (left, seen, clock.sleeps) == ([], [4, 2], [15, 15])


@pytest.fixture
def command(compute, monkeypatch):
    """`mlops teardown-check` as run, its GCP clients pointed at the fake API."""
    real = teardown.gcp_clients
    monkeypatch.setattr(
        teardown,
        "gcp_clients",
        lambda: real(
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=compute.endpoint),
        ),
    )
    return compute


def test_the_command_exits_1_naming_what_is_left_and_0_once_it_is_gone(command, capsys):
    assert cli.main(["teardown-check", "--stack", "prod-gcp", "--timeout", "0"]) == 1
    err = capsys.readouterr().err
    assert f"Kubernetes-made resources of cluster {CLUSTER} ({PROJECT}, {REGION}) are left" in err
    assert {line.removeprefix("  - ") for line in err.splitlines() if line.startswith("  - ")} == (
        EXPECTED
    )
    command.state["rules"] = {k: v for k, v in command.state["rules"].items() if k == "website"}
    command.state["disks"] = {}
    assert cli.main(["teardown-check", "--stack", "prod-gcp", "--timeout", "0"]) == 0
    assert (
        f"prod-gcp: no load balancer or volume of cluster {CLUSTER} is left in "
        f"{PROJECT}, {REGION}" in capsys.readouterr().out
    )


def test_an_api_error_is_not_a_pass(compute):
    """A look that fails (here: a project the fake does not know) raises: never 'all gone'."""
    clients = compute.clients()
    with pytest.raises(Exception) as info:
        teardown.find_gcp(CLUSTER, "another-project", REGION, clients)
    assert "404" in str(info.value)


def test_local_needs_no_check(capsys):
    args = argparse.Namespace(stack="local", timeout=0.0, interval=1.0)
    assert teardown.main(args) == 0
    assert "a local cluster; the platform creates nothing outside it" in capsys.readouterr().out
