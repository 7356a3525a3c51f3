"""The MLflow pyfunc flavour of a frontwire model: a DataFrame of texts in, predictions out.

It wraps the same `Predictor` the server and batch jobs use, so `mlflow.pyfunc.load_model(...)` and
`spark_udf` predict exactly what `frontwire serve` does.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import pandas as pd


class FrontwireModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from frontwire.predictor import Predictor

        artifacts = context.artifacts
        self.predictor = Predictor(classifier_dir=artifacts.get("classifier"), ner_dir=artifacts.get("ner"))

    def predict(self, context: Any, model_input: pd.DataFrame | list[str], params: dict | None = None) -> pd.DataFrame:
        texts = model_input["text"].astype(str).tolist() if isinstance(model_input, pd.DataFrame) else list(model_input)
        return predictions_frame(self.predictor.predict(texts))


def predictions_frame(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    """Columns: `labels` (list of str), `scores` and `entities` as JSON strings (portable to Spark and SQL)."""
    frame = pd.DataFrame(index=range(len(predictions)))
    if predictions and "labels" in predictions[0]:
        frame["labels"] = [p["labels"] for p in predictions]
        frame["scores"] = [json.dumps(p["scores"]) for p in predictions]
    if predictions and "entities" in predictions[0]:
        frame["entities"] = [json.dumps(p["entities"], ensure_ascii=False) for p in predictions]
    return frame
