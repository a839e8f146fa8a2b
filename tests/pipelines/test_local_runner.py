"""Why the drift pipeline has no `dsl.If`: kfp 2.16.1's local runner never takes the branch.

Its condition evaluator substitutes channel names into the compiled expression
(`inputs.parameter_values['pipelinechannel--...'] == true`) and evals it, which raises
NameError, logs a warning and treats the condition as false. If this test starts failing after
a kfp upgrade, the local runner handles conditions and the drift pipeline can use `dsl.If`.
"""

from pathlib import Path

from kfp import dsl, local


@dsl.component(install_kfp_package=False)
def decide() -> bool:
    return True


@dsl.component(install_kfp_package=False)
def branch(marker: str):
    with open(marker, "w") as handle:
        handle.write("ran")


@dsl.pipeline(name="if-probe")
def if_probe(marker: str):
    decision = decide()
    with dsl.If(decision.output == True):  # noqa: E712 - kfp builds the condition from ==
        branch(marker=marker)


def test_local_runner_skips_a_true_dsl_if_branch(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    marker = tmp_path / "marker"
    if_probe(marker=str(marker))
    assert not marker.exists()


@dsl.pipeline(name="plain-probe")
def plain_probe(marker: str):
    decide()
    branch(marker=marker)


def test_control_the_same_step_runs_without_a_condition(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    marker = tmp_path / "marker"
    plain_probe(marker=str(marker))
    assert marker.read_text() == "ran"
