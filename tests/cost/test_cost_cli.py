"""`mlops plan` shows the estimate in every format and its change against `--diff BASE.json`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from mlops_platform import cli

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "preview.yml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["plan", "--no-render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_carries_the_estimate_beside_the_resources(capsys):
    code, out, _ = run(capsys, "--stack", "dev", "--format", "json")
    document = json.loads(out)
    assert code == 0
    estimate = document["cost"]
    assert (estimate["cloud"], estimate["region"], estimate["currency"]) == (
        "aws", "us-east-1", "USD"
    )  # fmt: skip
    assert estimate["monthlyUsd"]["min"] > 0
    assert set(estimate["byLayer"]) == {"infra", "platform", "ml"}
    assert any(u["name"] == "mlops-feast-redis" for u in estimate["unpriced"])  # Valkey nodes
    assert "changeAgainstBase" not in estimate


def test_markdown_cost_section_comes_before_the_diff_with_the_change(capsys, tmp_path):
    code, out, _ = run(capsys, "--stack", "dev", "--format", "json")
    base = json.loads(out)
    # main's plan had a system pool of 1-2 m6i.xlarge nodes; this one has 2-3 m6i.large
    for r in base["resources"]:
        if r["name"] == "mlops-system" and r["type"] == "aws:eks/nodeGroup:NodeGroup":
            r["inputs"]["instanceTypes"] = ["m6i.xlarge"]
            r["inputs"]["scalingConfig"] = {"minSize": 1, "maxSize": 2, "desiredSize": 1}
    base_file = tmp_path / "main.json"
    base_file.write_text(json.dumps(base))
    code, out, _ = run(capsys, "--stack", "dev", "--format", "markdown", "--diff", str(base_file))
    assert code == 0
    section = out[out.index("### Cost estimate: $") : out.index("### Plan diff")]
    assert "per month + 1 unpriced line, aws us-east-1, prices of " in section
    # 1-2 m6i.xlarge nodes became 2-3 m6i.large ones: a little more at min scale, less at max
    assert (
        f"Change against `{base_file}`: **+$4.00/month** at min scale, "
        "**-$66.08/month** at max scale" in section
    )
    assert "| infra: mlops-system 1-2 x m6i.xlarge | $280 | $0.00 |" in section
    assert "| infra: mlops-system 2-3 x m6i.large | $0.00 | $210 |" in section
    assert "| infra: mlops-system root volume 50 GB gp3 x 2-3 | $8.00 | $12.00 |" in section
    assert "priced lines only" in section
    assert "| **total** |" in section and "Limits: On-demand list prices" in section


def test_text_output_has_the_estimate_and_limits(capsys):
    code, out, _ = run(capsys, "--stack", "local")
    assert code == 0
    assert (
        "Estimated monthly cost (USD, minimum to maximum scale): $0 per month, local cluster: "
        "no cloud spend" in out
    )
    assert "Limits: On-demand list prices" in out


def test_unreadable_base_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "--stack", "local", "--diff", str(tmp_path / "missing.json"))
    assert code == 2
    assert f"--diff {tmp_path / 'missing.json'}: cannot read it" in err


def test_preview_workflow_puts_estimate_and_change_in_the_comment(capsys, tmp_path):
    """The PR comment's shell lines, taken from the workflow, run on a real markdown plan."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["offline"]["steps"]
    script = next(step["run"] for step in steps if step.get("id") == "plan")
    lines = [line.strip() for line in script.splitlines()]
    wanted = [line for line in lines if line.startswith(("cost=$(", "change=$(", "sed -n"))]
    wanted += [line for line in lines if line.startswith('echo "<details>')]
    assert len(wanted) == 4, wanted
    _, out, _ = run(capsys, "--stack", "dev", "--format", "json")
    base = tmp_path / "main.json"
    base.write_text(out)
    _, markdown, _ = run(capsys, "--stack", "dev", "--format", "markdown", "--diff", str(base))
    plans = tmp_path / ".plans"
    plans.mkdir()
    (plans / "dev.md").write_text(markdown)
    done = subprocess.run(
        ["bash", "-c", "stack=dev\n" + "\n".join(wanted)],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    comment = done.stdout
    assert comment.startswith("### Cost estimate: $")
    assert "### Plan diff against" in comment
    headline = markdown.split("### Cost estimate: ", 1)[1].split(", aws us-east-1", 1)[0]
    assert headline.endswith(" unpriced line")  # dev has a price the table does not know
    assert comment.rstrip().endswith(
        f"<details><summary><b>dev</b>: {headline} (±$0/month min, ±$0/month max)</summary>"
    )
