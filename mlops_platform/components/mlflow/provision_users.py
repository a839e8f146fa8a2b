"""Create or update the platform's MLflow client users (run by the `mlflow-provision-users-*` Job).

MLflow's basic-auth app keeps its users in the backend database and offers no declarative way to
manage them, only its REST API. This program makes that API converge on a spec: each listed user
exists, has the password the platform generated for it, and holds one wildcard grant per resource
type (`experiment`, `registered_model`) at its permission. Running it again changes nothing but
re-setting the same password and grants, so a re-run (a Job retry, a `pulumi up` after the Job's
TTL removed it) is harmless.

It runs in the tracking server's own image (python + mlflow) and imports nothing of the platform:

    python provision_users.py /etc/mlflow/provision/users.json

Environment: `MLFLOW_TRACKING_URI`; the admin's credentials are MLflow's own credentials file,
`$HOME/.mlflow/credentials` (a mounted Secret key; MLflow's REST client reads it, or its
`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` when set), and each user's password is the
file named by its `password_file` (a mounted Secret key). Passwords are never printed.

Users removed from the spec are left alone (their Secrets are gone, so nobody holds the
password); delete them with `AuthServiceClient.delete_user` when wanted.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a client's permission covers: every experiment (and so its runs, logged models, traces)
# and every registered model (and its versions and aliases).
RESOURCE_TYPES = ("experiment", "registered_model")
PERMISSIONS = ("READ", "EDIT", "MANAGE")
ALL_RESOURCES = "*"
# MLflow refuses shorter passwords (mlflow.utils.validation._validate_password).
MIN_PASSWORD_LENGTH = 12
DEFAULT_WAIT_SECONDS = 300.0


class ProvisioningError(RuntimeError):
    """The spec or the environment is unusable; nothing more is attempted."""


@dataclass(frozen=True)
class ClientUser:
    username: str
    permission: str
    password_file: str


def parse_users(spec: Mapping[str, Any]) -> list[ClientUser]:
    """The `users` of a spec (`{"users": [{"username", "permission", "password_file"}]}`)."""
    users = [
        ClientUser(
            username=str(item["username"]),
            permission=str(item["permission"]),
            password_file=str(item["password_file"]),
        )
        for item in spec.get("users", [])
    ]
    for user in users:
        if user.permission not in PERMISSIONS:
            raise ProvisioningError(
                f"{user.username}: permission {user.permission!r} is not one of {PERMISSIONS}"
            )
    names = [user.username for user in users]
    if len(set(names)) != len(names):
        raise ProvisioningError(f"duplicate usernames in {names}")
    return users


def read_passwords(users: Sequence[ClientUser]) -> dict[str, str]:
    """username -> password from each user's file; every one present and long enough."""
    passwords: dict[str, str] = {}
    for user in users:
        try:
            password = Path(user.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ProvisioningError(
                f"{user.username}: password file {user.password_file} cannot be read "
                f"({error.strerror})"
            ) from None
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ProvisioningError(
                f"{user.username}: password file {user.password_file} is empty or shorter than "
                f"{MIN_PASSWORD_LENGTH} characters"
            )
        passwords[user.username] = password
    return passwords


def admin_credentials_found(environ: Mapping[str, str]) -> bool:
    """MLflow's client will authenticate: its variables are set, or its credentials file
    (`$HOME/.mlflow/credentials`, what MLflow reads) exists."""
    if environ.get("MLFLOW_TRACKING_USERNAME") and environ.get("MLFLOW_TRACKING_PASSWORD"):
        return True
    home = environ.get("HOME", "")
    return bool(home) and (Path(home) / ".mlflow" / "credentials").is_file()


def wait_for_server(
    tracking_uri: str,
    timeout: float = DEFAULT_WAIT_SECONDS,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until `/health` answers 200 (it needs no credentials): the Deployment may still roll."""
    deadline = clock() + timeout
    url = f"{tracking_uri.rstrip('/')}/health"
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except OSError as error:
            last = str(error)
        if clock() >= deadline:
            raise ProvisioningError(f"{url} not healthy after {timeout:.0f}s ({last})")
        sleep(interval)


def _error_code(error: Exception) -> str | None:
    return getattr(error, "error_code", None)


def ensure_user(client: Any, username: str, password: str) -> str:
    """Create `username` with `password`, or reset an existing user's password to it."""
    from mlflow.exceptions import RestException

    try:
        client.create_user(username, password)
        return "created"
    except RestException as error:
        if _error_code(error) != "RESOURCE_ALREADY_EXISTS":
            raise
    # As admin for another user: no current password needed. Setting the same one again is
    # what makes a re-run converge after a rotation that only half applied.
    client.update_user_password(username, password)
    return "password set"


def ensure_permission(client: Any, username: str, resource_type: str, permission: str) -> str:
    """One wildcard grant of `permission` on `resource_type` for `username`.

    The grant API refuses a second grant for the same (user, type, pattern); an existing one is
    revoked and granted again, so a changed permission applies. Grants on single resources
    (the MANAGE a user gets on what it creates) are not touched.
    """
    from mlflow.exceptions import RestException

    try:
        client.grant_user_permission(username, resource_type, ALL_RESOURCES, permission)
        return "granted"
    except RestException as error:
        if _error_code(error) != "RESOURCE_ALREADY_EXISTS":
            raise
    client.revoke_user_permission(username, resource_type, ALL_RESOURCES)
    client.grant_user_permission(username, resource_type, ALL_RESOURCES, permission)
    return "re-granted"


def provision(client: Any, users: Sequence[ClientUser], passwords: Mapping[str, str]) -> list[str]:
    """Converge every user; returns one log line per action (no password in any)."""
    done: list[str] = []
    for user in users:
        action = ensure_user(client, user.username, passwords[user.username])
        done.append(f"{user.username}: {action}")
        for resource_type in RESOURCE_TYPES:
            action = ensure_permission(client, user.username, resource_type, user.permission)
            grant = f"{resource_type} {ALL_RESOURCES} {user.permission}"
            done.append(f"{user.username}: {grant} {action}")
    return done


def main(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    if len(argv) != 1:
        print("usage: provision_users.py USERS_JSON", file=sys.stderr)
        return 2
    try:
        users = parse_users(json.loads(Path(argv[0]).read_text()))
        passwords = read_passwords(users)
        tracking_uri = environ.get("MLFLOW_TRACKING_URI", "")
        if not tracking_uri:
            raise ProvisioningError("MLFLOW_TRACKING_URI is not set")
        if not admin_credentials_found(environ):
            raise ProvisioningError(
                "the admin's credentials are missing: neither $HOME/.mlflow/credentials nor "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
        wait_for_server(tracking_uri)
    except ProvisioningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    from mlflow.server.auth.client import AuthServiceClient

    for line in provision(AuthServiceClient(tracking_uri), users, passwords):
        print(line, flush=True)
    print(f"{len(users)} user(s) provisioned on {tracking_uri}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
