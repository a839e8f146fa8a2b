"""images/lock.py: the digest resolver against a real HTTP registry on loopback (the
distribution API's anonymous-token challenge, as Docker Hub, GHCR and Quay answer it), and the
sync / check / mirror commands on a lock file."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from images import lock
from mlops_platform.components.images import model

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


class _Registry(BaseHTTPRequestHandler):
    """`/v2/<path>/manifests/<tag>` behind a bearer token from `/token`."""

    manifests: ClassVar[dict[str, str]] = {}
    token = "t0ken"
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.startswith("/token?"):
            body = json.dumps({"token": self.token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.end_headers()

    def do_HEAD(self):
        self.seen.append((self.path, self.headers.get("Authorization", ""), self.headers["Accept"]))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            host = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{host}/token",service="registry.test",'
                f'scope="repository:{self.path.split("/manifests/")[0][4:]}:pull"',
            )
            self.end_headers()
            return
        digest = self.manifests.get(self.path)
        if digest is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    _Registry.seen = []
    _Registry.manifests = {
        "/v2/library/postgres/manifests/17.11-trixie": D1,
        "/v2/prometheus/prometheus/manifests/v3": D2,
        "/v2/broken/image/manifests/1": "",
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_digest_comes_from_the_registry_after_the_token_challenge(registry):
    ref = model.Reference.parse("postgres:17.11-trixie")
    assert lock.http_digest(ref, registry) == D1
    (first, second) = _Registry.seen
    assert first[0] == second[0] == "/v2/library/postgres/manifests/17.11-trixie"
    assert (first[1], second[1]) == ("", "Bearer t0ken")
    # an index for multi-architecture images is what a node pulls by digest
    assert second[2].startswith("application/vnd.oci.image.index.v1+json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quay.io/missing/image:1", "answered 404"),
        ("quay.io/broken/image:1", "the registry gave no sha256 digest"),
    ],
)
def test_a_registry_without_an_answer_is_an_error_naming_the_image(registry, text, message):
    with pytest.raises(lock.ResolveError, match=message) as caught:
        lock.http_digest(model.Reference.parse(text), registry)
    assert str(caught.value).startswith(text)


def test_resolve_fills_open_entries_and_refresh_all(registry):
    def resolver(ref):
        return lock.http_digest(ref, registry)

    current = {
        "docker.io/library/postgres:17.11-trixie": None,
        "quay.io/prometheus/prometheus:v3": D1,  # reviewed already: kept unless refreshed
        "quay.io/missing/image:1": None,
    }
    resolved, failures = lock.resolve(current, resolver)
    assert resolved == {**current, "docker.io/library/postgres:17.11-trixie": D1}
    (failure,) = failures
    assert failure.startswith("quay.io/missing/image:1: ") and "answered 404" in failure
    refreshed, _ = lock.resolve(current, resolver, refresh=True)
    assert refreshed["quay.io/prometheus/prometheus:v3"] == D2


def test_sync_check_and_mirror_commands(tmp_path, capsys):
    path = tmp_path / "image_lock.json"
    path.write_text(json.dumps({"images": {"docker.io/library/gone:1": D1}}))
    assert lock.main(["--file", str(path), "check"]) == 1
    assert "out of date with the catalogue" in capsys.readouterr().err
    assert lock.main(["--file", str(path), "sync"]) == 0
    synced = model.read_lock(path)
    assert list(synced) == model.lock_keys(model.catalogue())
    assert not any(synced.values())
    assert lock.main(["--file", str(path), "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"0 of {len(synced)} images pinned by digest")
    assert lock.main(["mirror", "--mirror", "registry.example.com/m"]) == 0
    copies = capsys.readouterr().out.splitlines()
    assert (
        "crane copy docker.io/library/redis:8.10.2-trixie "
        "registry.example.com/m/docker.io/library/redis:8.10.2-trixie" in copies
    )
    assert lock.main(["mirror", "--mirror", "https://x"]) == 1
