"""The real Prometheus and Alertmanager helpers start, scrape, evaluate and deliver."""

from __future__ import annotations

import time

from tests.prometheus_support import alertmanager, prometheus


def test_prometheus_scrapes_itself_and_fires_a_rule_into_alertmanager(tmp_path):
    with (
        alertmanager(
            tmp_path / "am",
            {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]},
        ) as am,
        prometheus(
            tmp_path / "prom",
            scrape_configs=[],
            rule_groups=[
                {"name": "t", "rules": [{"alert": "Always", "expr": "vector(1)", "for": "0s"}]}
            ],
            alertmanager_url=am.url,
        ) as prom,
    ):
        assert prom.scalar("vector(2)") == 2.0
        assert prom.scalar("absent_metric_xyz") is None
        prom.wait_for("count(ALERTS{alertname='Always', alertstate='firing'})", bool, 20)
        deadline_alerts = []
        for _ in range(100):
            deadline_alerts = am.alerts()
            if deadline_alerts:
                break
            time.sleep(0.2)
        assert [a["labels"]["alertname"] for a in deadline_alerts] == ["Always"]
