"""The image lock (mlops_platform/components/image_lock.json): every third-party image the platform deploys,
normalized reference -> `sha256:` digest (null until resolved).

    python -m images.lock sync       # keys = the catalogue (mlops_platform/components/images/model.py)
    python -m images.lock resolve    # fill digests from the registries (crane, else HTTP API)
    python -m images.lock check      # fail if the keys are stale; report unpinned entries
    python -m images.lock mirror --mirror registry.example.com/mirror   # copies to make

`resolve` asks each registry for the digest of the tag's manifest (an image index for
multi-architecture images, which is what a node pulls by digest): `crane digest` when `crane`
is on PATH, otherwise the distribution API directly (`HEAD /v2/<repository>/manifests/<tag>`
with the anonymous bearer token the registry's `WWW-Authenticate` challenge names). No registry
is reachable from the project's machines, so the scheduled workflow
(.github/workflows/image-lock.yml) runs it and proposes the change as a pull request. A digest
only ever comes from the registry's own answer (`Docker-Content-Digest`, checked to be
sha256:<64 hex>). Only the standard library: the workflow runs it with the runner's python3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script by the workflow
    sys.path.insert(0, str(REPO))

from mlops_platform.components.images import model  # noqa: E402

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# Docker Hub's API host differs from the name images use.
API_HOSTS = {"docker.io": "registry-1.docker.io"}


class ResolveError(RuntimeError):
    pass


def _challenge(header: str) -> dict[str, str]:
    """`Bearer realm="...",service="...",scope="..."` -> its parameters."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        raise ResolveError(f"unsupported authentication scheme {scheme!r}")
    params = {}
    for part in urllib.request.parse_http_list(rest):
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip().strip('"')
    return params


def http_digest(ref: model.Reference, base_url: str | None = None, timeout: float = 30) -> str:
    """The manifest digest of `ref`'s tag from the registry's HTTP API."""
    host = API_HOSTS.get(ref.host, ref.host)
    base = base_url or f"https://{host}"
    url = f"{base}/v2/{ref.path}/manifests/{ref.tag}"
    headers = {"Accept": MANIFEST_TYPES}

    def head(extra: Mapping[str, str]):
        request = urllib.request.Request(url, method="HEAD", headers={**headers, **extra})
        return urllib.request.urlopen(request, timeout=timeout)

    try:
        response = head({})
    except urllib.error.HTTPError as exc:
        if exc.code != 401 or "WWW-Authenticate" not in exc.headers:
            raise ResolveError(f"{ref}: {url} answered {exc.code}") from None
        params = _challenge(exc.headers["WWW-Authenticate"])
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        token_url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(token_url, timeout=timeout) as answer:
            body = json.loads(answer.read())
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ResolveError(f"{ref}: {params['realm']} gave no token") from None
        try:
            response = head({"Authorization": f"Bearer {token}"})
        except urllib.error.HTTPError as again:
            raise ResolveError(f"{ref}: {url} answered {again.code}") from None
    digest = response.headers.get("Docker-Content-Digest", "")
    if not model.DIGEST.match(digest):
        raise ResolveError(f"{ref}: the registry gave no sha256 digest ({digest!r})")
    return digest


def crane_digest(ref: model.Reference) -> str:
    done = subprocess.run(
        ["crane", "digest", str(ref)], capture_output=True, text=True, check=False, timeout=120
    )
    digest = done.stdout.strip()
    if done.returncode != 0 or not model.DIGEST.match(digest):
        raise ResolveError(f"{ref}: crane digest failed: {done.stderr.strip() or digest}")
    return digest


def default_resolver() -> Callable[[model.Reference], str]:
    return crane_digest if shutil.which("crane") else http_digest


def synced(lock: Mapping[str, str | None]) -> dict[str, str | None]:
    """The lock with exactly the catalogue's keys; known digests kept."""
    return {key: lock.get(key) for key in model.lock_keys(model.catalogue())}


def resolve(
    lock: Mapping[str, str | None],
    resolver: Callable[[model.Reference], str],
    refresh: bool = False,
) -> tuple[dict[str, str | None], list[str]]:
    """Digests for the entries without one (every entry with `refresh`): (lock, failures)."""
    out = dict(lock)
    failures = []
    for key, digest in lock.items():
        if digest and not refresh:
            continue
        try:
            out[key] = resolver(model.Reference.parse(key))
        except (ResolveError, OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{key}: {exc}")
    return out, failures


def write_lock(path: Path, lock: Mapping[str, str | None]) -> None:
    document = {
        "_comment": "Written by images/lock.py (python -m images.lock resolve); every digest is "
        "a registry's own answer for the tag. null: not resolved yet.",
        "images": dict(sorted(lock.items())),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def mirror_copies(mirror: str) -> list[str]:
    """`crane copy` commands that fill a mirror with every image (own images included)."""
    model.check_mirror(mirror)
    policy = model.ImagePolicy(mirror=mirror)
    refs = sorted({model.Reference.parse(e.ref).key for e in model.catalogue()})
    return [f"crane copy {ref} {policy.resolve(ref)}" for ref in refs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="images.lock", description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=model.LOCK_FILE)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sync", help="make the lock's keys the catalogue's")
    resolve_parser = sub.add_parser("resolve", help="fill digests from the registries")
    resolve_parser.add_argument("--refresh", action="store_true", help="re-resolve every entry")
    sub.add_parser("check", help="fail on stale keys; list unpinned entries")
    mirror_parser = sub.add_parser("mirror", help="print the copies that fill a mirror")
    mirror_parser.add_argument("--mirror", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "mirror":
            print("\n".join(mirror_copies(args.mirror)))
            return 0
        lock = model.read_lock(args.file) if args.file.exists() else {}
        if args.command == "sync":
            write_lock(args.file, synced(lock))
            return 0
        if args.command == "check":
            expected = synced(lock)
            if list(expected) != sorted(lock):
                missing = sorted(set(expected) - set(lock))
                stale = sorted(set(lock) - set(expected))
                print(
                    f"{args.file}: out of date with the catalogue (missing {missing}, stale "
                    f"{stale}); run python -m images.lock sync",
                    file=sys.stderr,
                )
                return 1
            open_entries = [key for key, digest in lock.items() if not digest]
            print(f"{len(lock) - len(open_entries)} of {len(lock)} images pinned by digest")
            for key in open_entries:
                print(f"  unpinned: {key}")
            return 0
        lock, failures = resolve(synced(lock), default_resolver(), args.refresh)
        write_lock(args.file, lock)
        for failure in failures:
            print(f"images.lock: {failure}", file=sys.stderr)
        return 1 if failures else 0
    except (model.ImageError, ValueError) as exc:
        print(f"images.lock: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
