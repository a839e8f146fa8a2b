"""`crossguard.offline`: the pack over a saved plan through the real analyzer, as the CLI runs it
(what `mlops plan --policies` calls)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from crossguard import offline
from harness import load_plan, of_type

CONFIG = Path(__file__).parents[1] / "config"


def test_a_clean_plan_passes_and_a_violation_blocks_naming_resource_and_field(tmp_path, capsys):
    plan = load_plan("staging")
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    config = str(CONFIG / "staging.json")
    assert offline.main([str(tmp_path / "plan.json"), "--config", config]) == 0
    assert " 0 mandatory violation(s)" in capsys.readouterr().out

    bad = copy.deepcopy(plan)
    (instance,) = of_type(bad, "aws:rds/instance:Instance")
    instance["inputs"]["publiclyAccessible"] = True
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert offline.main([str(tmp_path / "bad.json"), "--config", config, "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    mandatory = [f for f in findings if f["level"] == "mandatory"]
    assert [(f["policy"], f["resource"]) for f in mandatory] == [
        ("database-not-public", f"aws:rds/instance:Instance::{instance['name']}")
    ]
    assert "publiclyAccessible" in mandatory[0]["message"]


def test_bad_input_is_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "plan.json").write_text(json.dumps(load_plan("dev")))
    (tmp_path / "config.json").write_text(json.dumps({"no-such-policy": {}}))
    args = [str(tmp_path / "plan.json"), "--config", str(tmp_path / "config.json")]
    assert offline.main(args) == 2
    assert (
        capsys.readouterr().err == "error: config names no policy of the pack: 'no-such-policy'\n"
    )
    assert offline.main([str(tmp_path / "absent.json")]) == 2
