"""Alertmanager receivers and routes (MonitoringConfig.alerting): table tests of the pure model,
the generated configuration checked by the real `amtool check-config` and routed by the real
`amtool config routes test`, and secrets accepted only from Pulumi secret config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_support import require
from pydantic import ValidationError

from mlops_platform import config as root_config
from mlops_platform import manifests
from mlops_platform.components.monitoring import MonitoringConfig, model
from mlops_platform.components.secret_config import ConfigSecret, EngineSecret

SECURE = {"secure": "v1:AAAA"}
RECEIVERS = {
    "oncall": {"type": "pagerduty", "routing_key": SECURE},
    "team": {"type": "slack", "api_url": SECURE, "channel": "#ml-alerts"},
    "tickets": {
        "type": "webhook",
        "url": "https://tickets.example.com/hook",
        "bearer_token": SECURE,
    },
}
ROUTES = [
    {"receiver": "oncall", "severities": ["critical"]},
    {"receiver": "team", "models": ["churn", "fraud"], "continue_matching": True},
    {"receiver": "tickets", "alertnames": ["ModelPredictionLogDropping"]},
]
RETRAIN = "http://retrain-receiver.mlops-loop.svc.cluster.local:8080/alerts"


def alerting(**data):
    return MonitoringConfig.model_validate({"alerting": data}).alerting


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        MonitoringConfig.model_validate({"alerting": data})
    [error] = info.value.errors()
    return ".".join(str(p) for p in error["loc"]) + ": " + error["msg"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"receivers": {"team": {**RECEIVERS["team"], "api_url": "https://hooks.slack.com/x"}}},
            "alerting.receivers.team.slack.api_url: Value error, must be a Pulumi secret, not "
            "plain text in the stack file",
        ),
        (
            {"receivers": {"oncall": {"type": "pagerduty", "routing_key": "abc"}}},
            "alerting.receivers.oncall.pagerduty.routing_key: Value error, must be a Pulumi secret",
        ),
        (
            {"receivers": {"t": {"type": "webhook", "url": "https://x", "bearer_token": "tok"}}},
            "alerting.receivers.t.webhook.bearer_token: Value error, must be a Pulumi secret",
        ),
        (
            {"receivers": {"t": {"type": "webhook", "url": "https://user:pw@x/"}}},
            "alerting.receivers.t.webhook.url: Value error, url 'https://user:pw@x/' must be an "
            "http(s) URL without credentials (use bearer_token)",
        ),
        (
            {"receivers": {"null": {"type": "webhook", "url": "https://x"}}},
            "alerting.receivers: Value error, receivers.null: the name is reserved by the platform",
        ),
        (
            {"receivers": {"Team": {"type": "webhook", "url": "https://x"}}},
            "alerting.receivers: Value error, receivers.Team: a receiver name is a DNS label of at "
            "most 40 characters",
        ),
        (
            {"receivers": {"t": {"type": "email", "to": "a@b"}}},
            "alerting.receivers.t: Input tag 'email' found using 'type' does not match any of the "
            "expected tags: 'webhook', 'slack', 'pagerduty'",
        ),
        (
            {"routes": [{"receiver": "pager"}]},
            "alerting: Value error, routes[0].receiver: unknown receiver 'pager'; receivers has "
            "none",
        ),
        (
            {"receivers": RECEIVERS, "default_receiver": "pager"},
            "alerting: Value error, default_receiver: unknown receiver 'pager'; receivers has "
            "['oncall', 'team', 'tickets']",
        ),
        (
            {"receivers": RECEIVERS, "routes": [{"receiver": "team", "models": ['churn"}']}]},
            "alerting.routes.0.models: Value error, models: 'churn\"}' must be a plain label value "
            "(letters, digits, _ . : -)",
        ),
        (
            {"group_by": ["model-name"]},
            "alerting.group_by: Value error, group_by: 'model-name' is not a label name",
        ),
    ],
)
def test_bad_alerting_config_names_the_field(data, message):
    assert _error(data).startswith(message)


def test_a_plain_secret_never_shows_in_the_error():
    with pytest.raises(root_config.ConfigError) as caught:
        root_config.validate(
            {
                "mlops:cloud": {"type": "local", "kube_context": "kind-mlops"},
                "mlops:monitoring": {
                    "alerting": {
                        "receivers": {
                            "team": {**RECEIVERS["team"], "api_url": "https://hooks/T0/SECRET"}
                        }
                    }
                },
            },
            "stacks/Pulumi.x.yaml",
        )
    text = str(caught.value)
    assert "SECRET" not in text
    assert text.startswith(
        "invalid stack config in stacks/Pulumi.x.yaml:\n"
        "  - mlops:monitoring.alerting.receivers.team.api_url: must be a Pulumi secret"
    )


def test_engine_decrypted_values_are_accepted_only_under_a_secret_key():
    values = {
        "mlops:cloud": {"type": "local", "kube_context": "kind-mlops"},
        "mlops:monitoring": {
            "alerting": {
                "receivers": {"team": {**RECEIVERS["team"], "api_url": "https://hooks/T0/X"}}
            }
        },
    }
    platform = root_config.validate(values, "x", secret_keys=["mlops:monitoring"])
    secret = platform.monitoring.alerting.receivers["team"].api_url
    assert secret.reveal() == "https://hooks/T0/X"
    assert "hooks" not in repr(platform) and "hooks" not in platform.model_dump_json()
    with pytest.raises(root_config.ConfigError):
        root_config.validate(values, "x", secret_keys=["mlops:cloud"])
    assert repr(EngineSecret("x")) == "EngineSecret([secret])"
    assert (
        ConfigSecret("x") == ConfigSecret("x")
        and str(ConfigSecret("x")) == "ConfigSecret([secret])"
    )


def test_defaults_send_drift_to_the_retrain_receiver_and_the_rest_to_null():
    config = model.alertmanager_config(alerting(), RETRAIN)
    assert config["route"]["receiver"] == "null"
    assert config["route"]["routes"] == [
        {"receiver": "null", "matchers": ['alertname=~"Watchdog|InfoInhibitor"']},
        {
            "receiver": "platform-retrain",
            "matchers": ['alertname="ModelFeatureDrift"'],
            "group_by": ["alertname", "namespace", "model"],
            "continue": False,
        },
    ]
    assert config["receivers"] == [
        {"name": "null"},
        {
            "name": "platform-retrain",
            "webhook_configs": [
                {
                    "url": RETRAIN,
                    "send_resolved": True,
                    "http_config": {
                        "authorization": {
                            "type": "Bearer",
                            "credentials_file": "/etc/alertmanager/secrets/"
                            "alertmanager-receiver-credentials/platform-retrain-token",
                        }
                    },
                }
            ],
        },
    ]
    assert model.receiver_secret_keys(alerting(), retrain=True) == ["platform-retrain-token"]
    values = model.helm_values(MonitoringConfig(), RETRAIN)["alertmanager"]
    assert values["alertmanagerSpec"]["secrets"] == ["alertmanager-receiver-credentials"]
    assert (
        "secrets" not in model.helm_values(MonitoringConfig())["alertmanager"]["alertmanagerSpec"]
    )


@pytest.mark.parametrize(
    ("data", "fallback"),
    [
        ({}, "null"),
        ({"receivers": {"team": RECEIVERS["team"]}}, "team"),
        ({"receivers": RECEIVERS}, "null"),
        ({"receivers": RECEIVERS, "default_receiver": "tickets"}, "tickets"),
    ],
)
def test_the_default_receiver(data, fallback):
    assert model.alertmanager_config(alerting(**data), None)["route"]["receiver"] == fallback


def _write(tmp_path: Path, data, retrain=RETRAIN) -> tuple[Path, Path]:
    secrets = tmp_path / "secrets"
    folder = secrets / model.RECEIVER_SECRET
    folder.mkdir(parents=True)
    config = alerting(**data)
    for key in model.receiver_secret_keys(config, retrain is not None):
        (folder / key).write_text("value-of-" + key)
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(model.alertmanager_config(config, retrain, str(secrets))))
    return path, folder


def test_amtool_accepts_the_generated_config(tmp_path):
    amtool = require("amtool")
    path, folder = _write(tmp_path, {"receivers": RECEIVERS, "routes": ROUTES})
    assert sorted(p.name for p in folder.iterdir()) == [
        "oncall-routing-key",
        "platform-retrain-token",
        "team-api-url",
        "tickets-bearer-token",
    ]
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 5 receivers" in result.stdout and "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            {"alertname": "ModelFeatureDrift", "model": "churn", "severity": "warning"},
            "platform-retrain",
        ),
        ({"alertname": "ModelServerDown", "model": "churn", "severity": "critical"}, "oncall"),
        ({"alertname": "ModelServerHighLatency", "model": "churn", "severity": "warning"}, "team"),
        # continue_matching on `team`: the next route gets it too.
        (
            {"alertname": "ModelPredictionLogDropping", "model": "fraud", "severity": "warning"},
            "team,tickets",
        ),
        (
            {"alertname": "ModelPredictionLogDropping", "model": "other", "severity": "warning"},
            "tickets",
        ),
        ({"alertname": "Watchdog", "severity": "none"}, "null"),
        ({"alertname": "KubePodCrashLooping", "severity": "warning"}, "null"),
    ],
)
def test_real_alertmanager_routing(tmp_path, labels, receivers):
    amtool = require("amtool")
    path, _ = _write(tmp_path, {"receivers": RECEIVERS, "routes": ROUTES})
    argv = [amtool, "config", "routes", "test", f"--config.file={path}"]
    argv += [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.stdout.strip() == receivers, result.stderr


def test_notify_drift_also_sends_drift_down_the_routes(tmp_path):
    amtool = require("amtool")
    path, _ = _write(tmp_path, {"receivers": RECEIVERS, "routes": ROUTES, "notify_drift": True})
    argv = [amtool, "config", "routes", "test", f"--config.file={path}"]
    argv += ["alertname=ModelFeatureDrift", "model=churn", "severity=warning"]
    assert subprocess.run(argv, capture_output=True, text=True).stdout.strip() == (
        "platform-retrain,team"
    )


def test_receiver_secret_is_a_valid_object_with_only_placeholders():
    keys = model.receiver_secret_keys(alerting(receivers=RECEIVERS), retrain=True)
    secret = model.receiver_secret("monitoring", keys)
    manifests.validate(secret)
    assert set(secret["stringData"].values()) == {"[secret]"}
    assert keys == [
        "platform-retrain-token",
        "oncall-routing-key",
        "team-api-url",
        "tickets-bearer-token",
    ]


def test_pydantic_error_text_does_not_quote_a_refused_secret():
    data = {"receivers": {"team": {**RECEIVERS["team"], "api_url": "https://hooks/T0/SECRET"}}}
    with pytest.raises(ValidationError) as caught:
        MonitoringConfig.model_validate({"alerting": data})
    assert "SECRET" not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        root_config.PlatformConfig.model_validate(
            {"cloud": {"type": "local", "kube_context": "k"}, "monitoring": {"alerting": data}}
        )
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(("minutes", "rendered"), [(15, "15m"), (0.05, "3s"), (1.5, "90s")])
def test_drift_for_renders_fractions_in_seconds_and_matches_the_crd(crds_dir, minutes, rendered):
    config = MonitoringConfig.model_validate({"alerts": {"drift_for_minutes": minutes}})
    rule = model.prometheus_rule(config.alerts, config.namespace)
    [drift] = [r for r in rule["spec"]["groups"][0]["rules"] if r["alert"] == "ModelFeatureDrift"]
    assert drift["for"] == rendered
    manifests.validate(rule)
