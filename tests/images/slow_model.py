"""A pyfunc model whose predict sleeps `sleep` seconds: an in-flight request on demand.

Saved as an MLflow "model from code": this file is copied into the model and run on load, so
the model server image loads it without this test package (nothing pickled by reference).
"""

import time

import mlflow
import numpy as np


class SlowModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(float(model_input["sleep"].iloc[0]))
        return np.ones(len(model_input))


mlflow.models.set_model(SlowModel())
