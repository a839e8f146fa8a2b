"""`<NAME>_FILE`: a secret setting read from a mounted Secret key (mlops_platform.model_server
.settings.secret_from_env, shared by the model server, the loop's consumer, receiver and
monitor)."""

from __future__ import annotations

import os
import stat

import pytest

from mlops_platform.model_server.settings import (
    REGISTRY,
    Settings,
    SettingsError,
    markdown_table,
    read_secret_file,
    secret_from_env,
)
from mlops_platform.pipelines.loop.consumer_settings import ConsumerSettings
from mlops_platform.pipelines.loop.receiver_settings import ReceiverSettings

NAME = "MLOPS_SERVE_KAFKA_SASL_PASSWORD"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("s3cret-pass", "s3cret-pass"),
        ("s3cret-pass\n", "s3cret-pass"),  # kubectl --from-file, editors
        ("s3cret-pass\r\n", "s3cret-pass"),
        (" inner spaces kept ", " inner spaces kept "),
        ("two\nlines", "two\nlines"),
    ],
)
def test_a_file_gives_its_content_without_the_trailing_newline(tmp_path, content, expected):
    path = tmp_path / "password"
    path.write_text(content)
    assert read_secret_file(NAME, str(path)) == expected
    assert secret_from_env({f"{NAME}_FILE": str(path)}, NAME) == expected


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "absent", "MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE='{path}': no such file"),
        (lambda d: _write(d / "empty", ""), "_FILE='{path}': the file is empty"),
        (lambda d: _write(d / "blank", "\n"), "_FILE='{path}': the file is empty"),
        (lambda d: _write(d / "spaces", "  \n"), "_FILE='{path}': the file is empty"),
        (lambda d: d, "_FILE='{path}' is a directory, not a file"),
        (lambda d: _write_bytes(d / "binary", b"\xff\xfe"), "_FILE='{path}' cannot be read: not"),
    ],
)
def test_a_missing_or_empty_file_names_the_variable_and_the_path(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(SettingsError) as error:
        secret_from_env({f"{NAME}_FILE": str(path)}, NAME)
    assert message.format(path=path) in str(error.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_names_the_variable_and_the_reason(tmp_path):
    path = _write(tmp_path / "locked", "s3cret-pass")
    path.chmod(0)
    with pytest.raises(SettingsError) as error:
        read_secret_file(NAME, str(path))
    assert str(error.value) == f"{NAME}_FILE={str(path)!r} cannot be read: Permission denied"
    path.chmod(stat.S_IRUSR)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ""),
        ({NAME: "from-env"}, "from-env"),
        ({NAME: "from-env", f"{NAME}_FILE": ""}, "from-env"),  # an empty _FILE is unset
        ({NAME: "", f"{NAME}_FILE": "{file}"}, "from-file"),
        ({f"{NAME}_FILE": "{file}"}, "from-file"),
    ],
)
def test_the_variable_or_its_file(tmp_path, environ, expected):
    path = _write(tmp_path / "password", "from-file\n")
    env = {k: v.format(file=path) for k, v in environ.items()}
    assert secret_from_env(env, NAME) == expected


def test_both_the_variable_and_its_file_is_refused(tmp_path):
    path = _write(tmp_path / "password", "from-file")
    with pytest.raises(SettingsError, match=f"^{NAME} and {NAME}_FILE are both set: set only one"):
        secret_from_env({NAME: "from-env", f"{NAME}_FILE": str(path)}, NAME)


def test_only_secret_settings_read_files(tmp_path):
    path = _write(tmp_path / "topic", "from-file")
    [topic] = [var for var in REGISTRY if var.name == "MLOPS_SERVE_KAFKA_TOPIC"]
    assert topic.raw({"MLOPS_SERVE_KAFKA_TOPIC_FILE": str(path)}) == ""
    assert "MLOPS_SERVE_KAFKA_SASL_PASSWORD_FILE" in markdown_table()
    assert "MLOPS_SERVE_KAFKA_TOPIC_FILE" not in markdown_table()


SCRAM = {
    "MLOPS_SERVE_PREDICTION_SINK": "kafka",
    "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": "kafka:9093",
    "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MLOPS_SERVE_KAFKA_SASL_USERNAME": "serving-churn",
}


def test_the_model_server_reads_its_kafka_password_from_a_file(tmp_path):
    path = _write(tmp_path / "password", "scram-" + "p" * 20 + "\n")
    settings = Settings.from_env({**SCRAM, f"{NAME}_FILE": str(path)})
    assert settings.kafka_sasl_password == "scram-" + "p" * 20
    with pytest.raises(SettingsError, match=f"{NAME}_FILE='{tmp_path}/gone': no such file"):
        Settings.from_env({**SCRAM, f"{NAME}_FILE": str(tmp_path / "gone")})


def test_the_consumer_reads_its_kafka_password_from_a_file(tmp_path):
    path = _write(tmp_path / "password", "scram-" + "c" * 20)
    env = {k.replace("MLOPS_SERVE_", "MLOPS_CONSUMER_"): v for k, v in SCRAM.items()}
    del env["MLOPS_CONSUMER_PREDICTION_SINK"]
    env["MLOPS_CONSUMER_BUCKET_URI"] = str(tmp_path)
    env["MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE"] = str(path)
    assert ConsumerSettings.from_env(env).kafka_sasl_password == "scram-" + "c" * 20
    env["MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE"] = str(tmp_path / "gone")
    with pytest.raises(SettingsError, match="MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE='"):
        ConsumerSettings.from_env(env)


def test_the_receiver_reads_its_token_from_a_file(tmp_path):
    token = "t" * 40
    path = _write(tmp_path / "token", token + "\n")
    base = {"MLOPS_RECEIVER_DATA_URI": "s3://b/d", "MLOPS_RECEIVER_TRACKING_URI": "http://m"}
    settings = ReceiverSettings.from_env({**base, "MLOPS_RECEIVER_TOKEN_FILE": str(path)})
    assert settings.token == token
    empty = _write(tmp_path / "empty", "")
    with pytest.raises(SettingsError, match=r"MLOPS_RECEIVER_TOKEN_FILE='.*': the file is empty"):
        ReceiverSettings.from_env({**base, "MLOPS_RECEIVER_TOKEN_FILE": str(empty)})


def _write(path, text):
    path.write_text(text)
    return path


def _write_bytes(path, data):
    path.write_bytes(data)
    return path
