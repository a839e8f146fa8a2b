"""How the prediction log's Kafka producer authenticates: TLS, SASL/SCRAM, or OAUTHBEARER tokens
signed with the workload's cloud identity (AWS MSK IAM, Google Cloud IAM).

`security_config` turns the settings into librdkafka properties (a pure function, tested key by
key). The OAUTHBEARER token providers are callables that confluent-kafka calls as `oauth_cb`
from its background thread whenever librdkafka needs a (new) token; their cloud libraries are
imported only on that first call, so a server that does not use them never loads them.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from mlops_platform.model_server.settings import SCRAM_MECHANISMS, Settings

log = logging.getLogger(__name__)

CA_FILE_VAR = "MLOPS_SERVE_KAFKA_CA_FILE"
REDACTED = "<redacted>"
_SECRET_KEYS = frozenset({"sasl.password", "sasl.oauthbearer.client.secret", "ssl.key.password"})


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka properties for the configured protocol and mechanism (no I/O)."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol != "PLAINTEXT":
        # librdkafka's default since 2.0, set explicitly: the broker's name must match its cert.
        config["ssl.endpoint.identification.algorithm"] = "https"
        if settings.kafka_ca_file:
            config["ssl.ca.location"] = settings.kafka_ca_file
    mechanism = settings.kafka_sasl_mechanism
    if mechanism in SCRAM_MECHANISMS:
        config["sasl.mechanism"] = mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password
    elif mechanism == "OAUTHBEARER-AWS-MSK-IAM":
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = AwsMskIamToken(settings.kafka_aws_region)
    elif mechanism == "OAUTHBEARER-GCP-IAM":
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = GcpIamToken()
    return config


def redacted(config: Mapping[str, Any]) -> dict[str, str]:
    """The producer config as it may be logged: secrets replaced, callbacks by name."""
    shown: dict[str, str] = {}
    for key, value in config.items():
        if key in _SECRET_KEYS:
            shown[key] = REDACTED
        elif callable(value):
            shown[key] = repr(value)
        else:
            shown[key] = str(value)
    return shown


class AwsMskIamToken:
    """`oauth_cb` for Amazon MSK IAM: a SigV4-presigned `kafka-cluster:Connect` request signed
    with the default AWS credential chain (in EKS: the pod's IRSA role via
    AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE), made by AWS's `aws-msk-iam-sasl-signer-python`.
    Tokens live 15 minutes; librdkafka asks for a new one at 80% of that."""

    def __init__(self, region: str) -> None:
        self.region = region

    def __repr__(self) -> str:
        return f"AwsMskIamToken(region={self.region!r})"

    def __call__(self, _oauthbearer_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        try:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
        except Exception as exc:
            # botocore's messages name the missing credential source, never a key.
            log.error("could not sign an MSK IAM token (region %s): %r", self.region, exc)
            raise
        return token, expiry_ms / 1000


class GcpIamToken:
    """`oauth_cb` for Google Cloud Managed Service for Apache Kafka.

    The service accepts a Google OAuth2 access token wrapped in a JWT-shaped envelope: header
    `{"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}`, claims `exp`, `iat`, `iss: "Google"`,
    `scope: "kafka"` and `sub` = the service account's e-mail (the Kafka principal), and the
    access token itself in the signature slot, each part base64url without padding — the format
    of Google's own Python quickstart and auth-login handler. Credentials are Application Default
    Credentials: on GKE with Workload Identity, the Google service account bound to the pod's
    Kubernetes service account (from the metadata server)."""

    SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
    HEADER = json.dumps({"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"})

    def __init__(self, credentials: Any = None) -> None:
        self._credentials = credentials
        self._request: Any = None

    def __repr__(self) -> str:
        return "GcpIamToken()"

    def __call__(self, _oauthbearer_config: str) -> tuple[str, float, str]:
        try:
            credentials = self._fresh_credentials()
            email = getattr(credentials, "service_account_email", None)
            if not email or email == "default":
                raise RuntimeError(
                    "the Google credentials name no service account e-mail (the Kafka "
                    "principal); bind the pod's Kubernetes service account to a Google service "
                    "account (iam.gke.io/gcp-service-account) with roles/managedkafka.client"
                )
            if credentials.expiry is None:
                raise RuntimeError("the Google access token has no expiry time")
        except Exception as exc:
            log.error("could not obtain a Google access token for Kafka: %r", exc)
            raise
        # google-auth keeps expiry as a naive datetime in UTC.
        expiry = credentials.expiry.replace(tzinfo=datetime.UTC).timestamp()
        claims = {
            "exp": expiry,
            "iat": time.time(),
            "iss": "Google",
            "scope": "kafka",
            "sub": email,
        }
        token = ".".join(
            _b64url(part)
            for part in (
                self.HEADER.encode(),
                json.dumps(claims).encode(),
                credentials.token.encode(),
            )
        )
        return token, expiry, email

    def _fresh_credentials(self) -> Any:
        import google.auth
        import google.auth.transport.requests

        if self._credentials is None:
            self._credentials, _project = google.auth.default(scopes=list(self.SCOPES))
        if not self._credentials.valid:
            if self._request is None:
                self._request = google.auth.transport.requests.Request()
            self._credentials.refresh(self._request)
        return self._credentials


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
