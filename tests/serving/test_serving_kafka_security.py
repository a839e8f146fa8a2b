"""Kafka sink security: settings and their checks, the librdkafka config per mechanism, the
OAUTHBEARER token providers against local stand-ins of AWS STS and the GKE metadata server,
librdkafka accepting those tokens, and secrets kept out of logs, errors and repr."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from serving_support import REPO, free_port

from mlops_platform.model_server.kafka_security import (
    AwsMskIamToken,
    GcpIamToken,
    redacted,
    security_config,
)
from mlops_platform.model_server.prediction_log import KafkaSink
from mlops_platform.model_server.settings import EnvVar, Settings, SettingsError

PASSWORD = "s3cr3t-Pa55-do-not-leak"
SCRAM_ENV = {
    "MLOPS_SERVE_PREDICTION_SINK": "kafka",
    "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093",
    "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MLOPS_SERVE_KAFKA_SASL_USERNAME": "model-server",
    "MLOPS_SERVE_KAFKA_SASL_PASSWORD": PASSWORD,
    "MLOPS_SERVE_KAFKA_CA_FILE": "/etc/kafka-ca/ca.crt",
}
AWS_ENV = {
    "MLOPS_SERVE_PREDICTION_SINK": "kafka",
    "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": "b-1.mlops.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
    "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-AWS-MSK-IAM",
}
GCP_ENV = {
    "MLOPS_SERVE_PREDICTION_SINK": "kafka",
    "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": (
        "bootstrap.mlops.europe-west1.managedkafka.proj.cloud.goog:9092"
    ),
    "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-GCP-IAM",
}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# -- settings -----------------------------------------------------------------------------------


def test_security_defaults_are_plaintext_without_sasl() -> None:
    s = Settings.from_env({})
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == ("PLAINTEXT", "none")
    assert (s.kafka_sasl_username, s.kafka_sasl_password, s.kafka_ca_file) == ("", "", "")
    assert s.kafka_aws_region == ""


def test_scram_settings_are_parsed() -> None:
    s = Settings.from_env(SCRAM_ENV)
    assert (
        s.kafka_security_protocol,
        s.kafka_sasl_mechanism,
        s.kafka_sasl_username,
        s.kafka_sasl_password,
        s.kafka_ca_file,
    ) == ("SASL_SSL", "SCRAM-SHA-512", "model-server", PASSWORD, "/etc/kafka-ca/ca.crt")


def test_aws_region_falls_back_to_aws_region_and_the_own_variable_wins() -> None:
    assert Settings.from_env({**AWS_ENV, "AWS_REGION": "eu-west-1"}).kafka_aws_region == (
        "eu-west-1"
    )
    own = {**AWS_ENV, "AWS_REGION": "eu-west-1", "MLOPS_SERVE_KAFKA_AWS_REGION": "us-east-2"}
    assert Settings.from_env(own).kafka_aws_region == "us-east-2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL='SASL_PLAINTEXT' must be one of "
            "PLAINTEXT, SSL, SASL_SSL",
        ),
        (
            {"MLOPS_SERVE_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM='GSSAPI' must be one of none, SCRAM-SHA-256, "
            "SCRAM-SHA-512, OAUTHBEARER-AWS-MSK-IAM, OAUTHBEARER-GCP-IAM",
        ),
        (
            {**SCRAM_ENV, "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs "
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not PLAINTEXT",
        ),
        (
            {**AWS_ENV, "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SSL", "AWS_REGION": "eu-west-1"},
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=OAUTHBEARER-AWS-MSK-IAM needs "
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not SSL",
        ),
        (
            {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs MLOPS_SERVE_KAFKA_SASL_MECHANISM "
            "(one of SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER-AWS-MSK-IAM, OAUTHBEARER-GCP-IAM)",
        ),
        (
            {**SCRAM_ENV, "MLOPS_SERVE_KAFKA_SASL_PASSWORD": ""},
            "MLOPS_SERVE_KAFKA_SASL_PASSWORD must be set when "
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        ),
        (
            {
                **SCRAM_ENV,
                "MLOPS_SERVE_KAFKA_SASL_USERNAME": " ",
                "MLOPS_SERVE_KAFKA_SASL_PASSWORD": "",
            },
            "MLOPS_SERVE_KAFKA_SASL_USERNAME and MLOPS_SERVE_KAFKA_SASL_PASSWORD must be set when "
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        ),
        (
            {**GCP_ENV, "MLOPS_SERVE_KAFKA_SASL_PASSWORD": PASSWORD},
            "MLOPS_SERVE_KAFKA_SASL_PASSWORD are only used with "
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=SCRAM-SHA-256 or SCRAM-SHA-512, "
            "not OAUTHBEARER-GCP-IAM",
        ),
        (
            {"MLOPS_SERVE_KAFKA_CA_FILE": "/etc/ca.crt"},
            "MLOPS_SERVE_KAFKA_CA_FILE is set but MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT "
            "uses no TLS",
        ),
        (
            AWS_ENV,
            "MLOPS_SERVE_KAFKA_AWS_REGION (or AWS_REGION) must be set when "
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM=OAUTHBEARER-AWS-MSK-IAM",
        ),
        (
            {**AWS_ENV, "AWS_REGION": "Ireland"},
            "MLOPS_SERVE_KAFKA_AWS_REGION='Ireland' is not an AWS region (like eu-west-1)",
        ),
    ],
)
def test_inconsistent_security_settings_name_the_variables(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert str(err.value) == message
    assert PASSWORD not in str(err.value)


def test_the_password_is_never_in_repr_or_error_messages() -> None:
    s = Settings.from_env(SCRAM_ENV)
    assert PASSWORD not in repr(s) and PASSWORD not in str(s)
    assert "kafka_sasl_password" not in repr(s)
    secret = EnvVar("X_SECRET", "x", int, 0, "a secret number", secret=True)
    with pytest.raises(SettingsError) as err:
        secret.parse(PASSWORD)
    assert str(err.value).startswith("X_SECRET=<redacted> is not a valid int")
    assert PASSWORD not in str(err.value)


# -- producer config ----------------------------------------------------------------------------


def test_plaintext_config() -> None:
    assert security_config(Settings.from_env({})) == {"security.protocol": "PLAINTEXT"}


def test_tls_only_config_with_and_without_a_ca_file() -> None:
    tls = Settings.from_env({"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert security_config(tls) == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
    }
    with_ca = Settings.from_env(
        {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SSL", "MLOPS_SERVE_KAFKA_CA_FILE": "/ca.pem"}
    )
    assert security_config(with_ca) == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/ca.pem",
    }


def test_strimzi_scram_config() -> None:
    assert security_config(Settings.from_env(SCRAM_ENV)) == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/kafka-ca/ca.crt",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "model-server",
        "sasl.password": PASSWORD,
    }


def test_msk_iam_config() -> None:
    config = security_config(Settings.from_env({**AWS_ENV, "AWS_REGION": "eu-west-1"}))
    callback = config.pop("oauth_cb")
    assert config == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "OAUTHBEARER",
    }
    assert type(callback) is AwsMskIamToken and callback.region == "eu-west-1"


def test_gcp_iam_config() -> None:
    config = security_config(Settings.from_env(GCP_ENV))
    callback = config.pop("oauth_cb")
    assert config == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "OAUTHBEARER",
    }
    assert type(callback) is GcpIamToken


def test_redacted_config_hides_the_password_and_names_callbacks() -> None:
    config = security_config(Settings.from_env(SCRAM_ENV))
    shown = redacted({**config, "oauth_cb": AwsMskIamToken("eu-west-1")})
    assert shown["sasl.password"] == "<redacted>"
    assert shown["oauth_cb"] == "AwsMskIamToken(region='eu-west-1')"
    assert shown["sasl.username"] == "model-server"
    assert PASSWORD not in json.dumps(shown)


def test_cloud_libraries_are_imported_only_when_a_token_is_needed() -> None:
    script = textwrap.dedent(
        """
        import sys
        from mlops_platform.model_server import app
        from mlops_platform.model_server.kafka_security import security_config
        from mlops_platform.model_server.settings import Settings
        for env in ({}, {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                         "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-GCP-IAM"},
                    {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                     "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "OAUTHBEARER-AWS-MSK-IAM",
                     "AWS_REGION": "eu-west-1"}):
            security_config(Settings.from_env(env))
        heavy = ("boto3", "botocore", "aws_msk_iam_sasl_signer", "google.auth")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- AWS MSK IAM tokens -------------------------------------------------------------------------


def _isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _presigned(token: str) -> tuple[Any, dict[str, str]]:
    url = urlparse(_b64url_decode(token).decode())
    return url, {k: v[0] for k, v in parse_qs(url.query).items()}


def test_msk_token_is_a_presigned_connect_request_for_the_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-example")
    before = time.time()
    token, expiry = AwsMskIamToken("eu-west-1")("")
    url, query = _presigned(token)
    assert (url.scheme, url.netloc, url.path) == ("https", "kafka.eu-west-1.amazonaws.com", "/")
    assert query["Action"] == "kafka-cluster:Connect"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "900"
    assert query["X-Amz-Security-Token"] == "session-token-example"
    key, _date, region, service, end = query["X-Amz-Credential"].split("/")
    assert (key, region, service, end) == (
        "AKIAIOSFODNN7EXAMPLE",
        "eu-west-1",
        "kafka-cluster",
        "aws4_request",
    )
    assert query["User-Agent"].startswith("aws-msk-iam-sasl-signer-python/")
    assert "wJalrXUtnFEMI" not in token  # the secret key signs, it is never sent
    assert before - 1 + 890 <= expiry <= time.time() + 900


@pytest.fixture
def sts_endpoint() -> Iterator[str]:
    """moto's STS: AssumeRoleWithWebIdentity as IRSA calls it from botocore's default chain."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_msk_token_is_signed_with_the_irsa_role_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sts_endpoint: str
) -> None:
    _isolate_aws(monkeypatch, tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln")
    # What the EKS pod identity webhook injects for IRSA, plus the STS stand-in's address.
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/mlops-model-server")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_endpoint)
    token, _expiry = AwsMskIamToken("eu-west-1")("")
    _url, query = _presigned(token)
    key = query["X-Amz-Credential"].split("/")[0]
    # moto hands out temporary (ASIA...) keys with a session token for the assumed role.
    assert key.startswith("ASIA") and query["X-Amz-Security-Token"]


def test_librdkafka_accepts_the_msk_token_at_producer_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    settings = Settings.from_env({**AWS_ENV, "AWS_REGION": "eu-west-1"})
    calls: list[str] = []
    config = security_config(settings)
    signer = config["oauth_cb"]

    def counting(oauth_config: str) -> tuple[str, float]:
        calls.append(oauth_config)
        return signer(oauth_config)

    caplog.set_level(logging.INFO)
    # confluent-kafka waits for the first token inside the constructor and raises if the
    # callback fails or librdkafka rejects the token; no broker is needed for that.
    sink = KafkaSink(
        f"127.0.0.1:{free_port()}", "predictions", 10, lambda *_: None,
        security={**config, "oauth_cb": counting},
    )  # fmt: skip
    sink._producer.flush(0)
    assert calls, "librdkafka never asked for a token"
    assert "'sasl.mechanism': 'OAUTHBEARER'" in caplog.text


# -- GCP Managed Kafka tokens -------------------------------------------------------------------

SA_EMAIL = "model-server@proj.iam.gserviceaccount.com"
ACCESS_TOKEN = "ya29.fake-access-token"


class _MetadataHandler(BaseHTTPRequestHandler):
    """The GKE metadata server's answers that google-auth's compute credentials ask for."""

    def do_GET(self) -> None:
        if self.headers.get("Metadata-Flavor") != "Google":
            self.send_error(403)
            return
        path = urlparse(self.path).path
        body: Any
        if path == "/":
            body = ""
        elif path == "/computeMetadata/v1/project/project-id":
            body = "proj"
        elif path == "/computeMetadata/v1/instance/service-accounts/default/":
            body = {"email": SA_EMAIL, "aliases": ["default"], "scopes": ["cloud-platform"]}
        elif path in (
            "/computeMetadata/v1/instance/service-accounts/default/token",
            f"/computeMetadata/v1/instance/service-accounts/{SA_EMAIL}/token",
        ):
            body = {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        elif path == "/computeMetadata/v1/universe/universe-domain":
            body = "googleapis.com"
        else:
            self.send_error(404)
            return
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header(
            "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metadata_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_gcp_token_from_workload_identity_is_accepted_by_librdkafka(
    metadata_server: str, tmp_path: Path
) -> None:
    # google-auth reads GCE_METADATA_* when imported, so this runs in a fresh interpreter with
    # the environment a GKE pod has (no key file, credentials from the metadata server).
    script = textwrap.dedent(
        f"""
        import json, logging
        from mlops_platform.model_server.kafka_security import GcpIamToken, security_config
        from mlops_platform.model_server.prediction_log import KafkaSink
        from mlops_platform.model_server.settings import Settings
        settings = Settings.from_env({GCP_ENV!r})
        config = security_config(settings)
        calls = []
        def counting(cfg):
            calls.append(cfg)
            return config["oauth_cb"](cfg)
        sink = KafkaSink("127.0.0.1:{free_port()}", "predictions", 10, lambda *_: None,
                         security={{**config, "oauth_cb": counting}})
        sink._producer.flush(0)
        token, expiry, principal = GcpIamToken()("")
        print(json.dumps({{"calls": len(calls), "token": token, "expiry": expiry,
                          "principal": principal}}))
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),  # no gcloud application-default credentials file
        "GCE_METADATA_HOST": metadata_server,
        "GCE_METADATA_IP": metadata_server,
        "NO_PROXY": "127.0.0.1",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["calls"] >= 1 and result["principal"] == SA_EMAIL
    header, claims, signature = result["token"].split(".")
    assert json.loads(_b64url_decode(header)) == {"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"}
    claims = json.loads(_b64url_decode(claims))
    assert {k: claims[k] for k in ("iss", "scope", "sub")} == {
        "iss": "Google",
        "scope": "kafka",
        "sub": SA_EMAIL,
    }
    assert claims["exp"] == result["expiry"]
    assert time.time() + 3000 < claims["exp"] <= time.time() + 3600
    assert claims["iat"] <= time.time()
    assert _b64url_decode(signature).decode() == ACCESS_TOKEN


class _UserCredentials:
    """Credentials without a service account (e.g. a developer's gcloud login)."""

    valid = True
    token = "ya29.user"
    expiry = None


def test_gcp_token_needs_a_service_account_principal(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RuntimeError, match="no service account e-mail"):
        GcpIamToken(_UserCredentials())("")
    assert "ya29.user" not in caplog.text


# -- secrets stay out of logs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_bootstrap() -> Iterator[str]:
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    broker = next(iter(holder.list_topics(timeout=10).brokers.values()))
    yield f"{broker.host}:{broker.port}"
    holder.flush(1)


def test_scram_sink_never_logs_the_password(
    mock_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka's mock broker speaks neither TLS nor SASL, so the handshake fails: the
    failure is logged (through Python logging), the password never is."""
    settings = Settings.from_env(
        {
            **SCRAM_ENV,
            "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": mock_bootstrap,
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "MLOPS_SERVE_KAFKA_CA_FILE": "",
        }
    )
    caplog.set_level(logging.DEBUG)
    drops: list[tuple[str, int]] = []
    sink = KafkaSink(
        mock_bootstrap,
        "predictions",
        10,
        lambda reason, n: drops.append((reason, n)),
        security=security_config(settings),
    )
    sink.write([b'{"x": 1}'], [b"r1"])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "librdkafka" not in caplog.text:
        sink.poll()
        time.sleep(0.1)
    sink.close(0.5)
    rdkafka_lines = [r for r in caplog.records if r.name.endswith(".librdkafka")]
    assert rdkafka_lines, "librdkafka's logs should go through Python logging"
    assert "'sasl.password': '<redacted>'" in caplog.text
    assert PASSWORD not in caplog.text
    assert drops == [("kafka_undelivered_at_exit", 1)]


def test_missing_ca_file_stops_the_sink_naming_the_variable(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {**SCRAM_ENV, "MLOPS_SERVE_KAFKA_CA_FILE": str(tmp_path / "absent.crt")}
    )
    with pytest.raises(FileNotFoundError) as err:
        KafkaSink("k:9093", "predictions", 10, lambda *_: None, security=security_config(settings))
    assert (
        str(err.value)
        == f"MLOPS_SERVE_KAFKA_CA_FILE={str(tmp_path / 'absent.crt')!r}: no such file"
    )
    assert PASSWORD not in str(err.value)
