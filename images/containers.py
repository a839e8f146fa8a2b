"""Run the built images as a cluster would, for the tests and the benchmark.

The model server runs hardened as its Deployment runs it: read-only root filesystem with a tmpfs
on /tmp (the pod's emptyDir), UID/GID 10001, every capability dropped, no privilege escalation.
Containers use the host's network namespace and bind to 127.0.0.1: they reach an MLflow server on
loopback and are reached on loopback, and the engine needs no bridge network (.ci/run starts
dockerd with `--bridge=none`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from images.build import docker

RUN_AS = "10001:10001"
HARDENING = (
    "--read-only",
    # Docker's default tmpfs options (noexec, nosuid); 256 MiB holds a downloaded model.
    "--tmpfs=/tmp:rw,noexec,nosuid,size=256m",
    f"--user={RUN_AS}",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=host",
)


def _mount_args(mounts: list[tuple[Path, str, bool]] | None) -> list[str]:
    args = []
    for host, inside, read_only in mounts or []:
        spec = f"type=bind,source={host},target={inside}"
        args += ["--mount", spec + (",readonly" if read_only else "")]
    return args


@dataclass
class Container:
    name: str
    url: str = ""

    def logs(self) -> str:
        result = subprocess.run(
            [*docker(), "logs", self.name], capture_output=True, text=True, timeout=30
        )
        return result.stdout + result.stderr

    def state(self) -> dict[str, object]:
        result = subprocess.run(
            [*docker(), "inspect", "--format", "{{json .State}}", self.name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return json.loads(result.stdout) if result.returncode == 0 else {}

    def stop(self, timeout: int = 30) -> tuple[int, float]:
        """`docker stop` (SIGTERM, SIGKILL after `timeout` s): the exit code and seconds taken."""
        started = time.monotonic()
        subprocess.run(
            [*docker(), "stop", f"--time={timeout}", self.name],
            capture_output=True,
            timeout=timeout + 30,
        )
        seconds = time.monotonic() - started
        return int(self.state().get("ExitCode", -1)), seconds

    def remove(self) -> None:
        subprocess.run([*docker(), "rm", "--force", self.name], capture_output=True, timeout=60)


def run_detached(
    image: str,
    *,
    env: dict[str, str] | None = None,
    mounts: list[tuple[Path, str, bool]] | None = None,
    args: list[str] | None = None,
    name_prefix: str = "mlops-test",
) -> Container:
    """Start a hardened container in the background (mounts: host path, container path, ro)."""
    name = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
    cmd = [*docker(), "run", "--detach", f"--name={name}", *HARDENING]
    for key, value in (env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    cmd += _mount_args(mounts)
    cmd += [image, *(args or [])]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"docker run {image} failed: {result.stderr.strip()}")
    return Container(name)


def run_to_completion(
    image: str,
    command: list[str],
    *,
    mounts: list[tuple[Path, str, bool]] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run one command in a hardened container (as a pipeline step's pod), removed afterwards."""
    cmd = [*docker(), "run", "--rm", *HARDENING, "--entrypoint", command[0]]
    for key, value in (env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    cmd += _mount_args(mounts)
    cmd += [image, *command[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def start_model_server(
    image: str,
    port: int,
    model_uri: str,
    *,
    env: dict[str, str] | None = None,
    mounts: list[tuple[Path, str, bool]] | None = None,
) -> Container:
    container = run_detached(
        image,
        env={
            "MLOPS_SERVE_MODEL_URI": model_uri,
            "MLOPS_SERVE_HOST": "127.0.0.1",
            "MLOPS_SERVE_PORT": str(port),
            **(env or {}),
        },
        mounts=mounts,
        name_prefix="mlops-model-server",
    )
    container.url = f"http://127.0.0.1:{port}"
    return container


def wait_ready(container: Container, timeout: float = 120) -> float:
    """Poll `/v2/health/ready` until 200; returns the seconds waited. Fails with the logs."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = container.state()
        if state and not state.get("Running", False):
            raise AssertionError(
                f"container {container.name} exited {state.get('ExitCode')}:\n{container.logs()}"
            )
        try:
            with urllib.request.urlopen(f"{container.url}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{container.name} not ready after {timeout} s:\n{container.logs()}")


# --------------------------------------------------------------------- a pod's container, run


def _volume_files(
    volume: dict[str, Any], objects: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The files a configMap or secret volume shows: every key, or its `items` renamed."""
    source = volume.get("configMap") or volume.get("secret") or {}
    name = source.get("name") or source.get("secretName")
    if name not in objects:
        raise KeyError(f"volume {volume['name']!r}: no ConfigMap or Secret {name!r} given")
    data = objects[name]
    items = source.get("items")
    if items is None:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items}


def pod_run_args(
    pod: dict[str, Any],
    objects: Mapping[str, Mapping[str, str]],
    folder: Path,
    container: int = 0,
) -> tuple[list[str], list[str]]:
    """`docker run` options and the command for one container of a rendered pod spec, as a
    kubelet would start it: its user and group, its environment (values, and ConfigMap or Secret
    keys from `objects`, name -> data), its configMap and secret volumes written under `folder`
    with the volume's file mode and group-owned by the pod's fsGroup, `subPath` mounts, and its
    command and args. emptyDirs other than /tmp (already a tmpfs) become tmpfs mounts.

    Used by the container tests so that what runs is the rendered pod, not a hand-copied one."""
    spec = pod["containers"][container]
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **spec.get("securityContext", {})}
    user, group = security.get("runAsUser", 0), security.get("runAsGroup", 0)
    fs_group = pod_security.get("fsGroup", group)
    args = [f"--user={user}:{group}"]
    for entry in spec.get("env", []):
        if "value" in entry:
            value = entry["value"]
        else:
            ref = entry["valueFrom"].get("configMapKeyRef") or entry["valueFrom"]["secretKeyRef"]
            value = objects[ref["name"]][ref["key"]]
        args += ["--env", f"{entry['name']}={value}"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in spec.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            if mount["mountPath"] != "/tmp":
                args += [f"--tmpfs={mount['mountPath']}:rw,noexec,nosuid"]
            continue
        source = volume.get("configMap") or volume.get("secret")
        if source is None:
            raise ValueError(f"volume {mount['name']!r}: only configMap, secret and emptyDir")
        root = folder / mount["name"]
        if not root.exists():
            root.mkdir(parents=True)
            mode = source.get("defaultMode", 0o644)
            for path, text in _volume_files(volume, objects).items():
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                os.chown(target, 0, fs_group)
                target.chmod(mode)
            os.chown(root, 0, fs_group)
            root.chmod(0o755)
        host = root / mount["subPath"] if "subPath" in mount else root
        spec_text = f"type=bind,source={host},target={mount['mountPath']}"
        args += ["--mount", spec_text + (",readonly" if mount.get("readOnly") else "")]
    return args, [*spec.get("command", []), *spec.get("args", [])]


def run_pod_to_completion(
    image: str,
    pod: dict[str, Any],
    objects: Mapping[str, Mapping[str, str]],
    folder: Path,
    *,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a rendered pod's container in `image` until it exits (a Job's pod), hardened."""
    options, command = pod_run_args(pod, objects, folder)
    hardening = [h for h in HARDENING if not h.startswith("--user=")]
    cmd = [*docker(), "run", "--rm", *hardening, *options, "--entrypoint", command[0]]
    cmd += [image, *command[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_pod_detached(
    image: str,
    pod: dict[str, Any],
    objects: Mapping[str, Mapping[str, str]],
    folder: Path,
    name_prefix: str = "mlops-pod",
) -> Container:
    """Start a rendered pod's container in `image` in the background (a Deployment's pod)."""
    options, command = pod_run_args(pod, objects, folder)
    hardening = [h for h in HARDENING if not h.startswith("--user=")]
    name = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
    cmd = [*docker(), "run", "--detach", f"--name={name}", *hardening, *options]
    cmd += ["--entrypoint", command[0], image, *command[1:]]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"docker run {image} failed: {result.stderr.strip()}")
    return Container(name)
