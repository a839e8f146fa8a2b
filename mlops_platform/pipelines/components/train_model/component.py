"""`train_model`: a small hyperparameter search and a refit, imbalance-aware."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_model(
    train: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    search_iterations: int = 4,
    search_rows: int = 50000,
    max_iter: int = 200,
    seed: int = 0,
    enabled: bool = True,
):
    """Train the churn classifier (sklearn Pipeline: ordinal encoding + HistGradientBoosting).

    Searches `search_iterations` parameter sets on at most `search_rows` rows (ranked by PR AUC
    on the newest 20% of them), then refits the best on the whole training set. The model
    directory holds the pickled Pipeline, a signature sample and `training.json` (parameters,
    search results, drift reference profile of the training data).
    """
    import os

    # Idle OpenMP threads sleep instead of spinning: on a shared node (other pods, or the
    # demo's MLflow and model server) spinning threads made each fit several times slower.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from mlops_platform.pipelines.components.common import mark_skipped, read_dataset
    from mlops_platform.pipelines.components.train_model.logic import save
    from mlops_platform.pipelines.components.train_model.logic import train as fit

    if not enabled:
        mark_skipped("not enabled (no drift found)", model, metrics)
        return
    train_df = read_dataset(train.path)
    result = fit(
        train_df,
        search_iterations=search_iterations,
        search_rows=search_rows,
        max_iter=max_iter,
        seed=seed,
    )
    save(result, train_df, model.path, seed)
    model.metadata.update({"framework": "sklearn", "params": result.best_params})
    best = max(result.candidates, key=lambda c: c["pr_auc"])
    metrics.log_metric("search_best_pr_auc", round(best["pr_auc"], 5))
    metrics.log_metric("search_best_roc_auc", round(best["roc_auc"], 5))
    metrics.log_metric("train_rows", result.train_rows)
    metrics.log_metric("n_iter", result.n_iter)
    for index, candidate in enumerate(result.candidates):
        print(f"candidate {index}: {candidate}", flush=True)
    print(f"best params {result.best_params}; timings {result.seconds}", flush=True)
