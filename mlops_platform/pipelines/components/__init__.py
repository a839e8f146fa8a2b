"""Lightweight KFP components of the churn pipelines, one folder each.

Each folder has `component.py` (the `@dsl.component`: typed artifacts, heavy imports inside
the body) and `logic.py` (plain functions the body calls, tested without kfp).

Component bodies import `mlops_platform.pipelines.components.<name>.logic` at run time, where kfp's
executor provides only the runtime part of `kfp.dsl` (no `dsl.component`). So no `__init__.py` here
imports a `component.py`; pipelines import `mlops_platform.pipelines.components.<name>.component`.
"""
