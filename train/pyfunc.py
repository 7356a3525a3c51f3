"""The MLflow pyfunc flavour of a frontwire model: a DataFrame of texts in, predictions out.

It wraps the same `Predictor` the server and batch jobs use, so `mlflow.pyfunc.load_model(...)`, `spark_udf` and
`mlflow models serve` predict exactly what `frontwire serve` does. The prediction's columns are plain values
(`scores` a label → score map, `entities` a list of span objects), so a client of `mlflow models serve` reads
them without parsing JSON inside JSON; `signature` declares them in MLflow's own types.

The model is logged as "models from code" (`CODE_FILE`, which only imports this module), so the registered
model holds no cloudpickle of frontwire code: loading it needs no pickle, like the model dir itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Object, Property, Schema

#: The file `mlflow.pyfunc.log_model(python_model=...)` stores in the model: it calls `mlflow.models.set_model`.
CODE_FILE = Path(__file__).with_name("pyfunc_code.py")

ENTITY = Object([
    Property("label", DataType.string),
    Property("start", DataType.long),  # Python str offsets into the text, as everywhere in frontwire
    Property("end", DataType.long),
    Property("text", DataType.string),
    Property("score", DataType.double),
])


class FrontwireModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from frontwire.predictor import Predictor

        artifacts = context.artifacts
        self.predictor = Predictor(classifier_dir=artifacts.get("classifier"), ner_dir=artifacts.get("ner"))

    def predict(self, context: Any, model_input: pd.DataFrame | list[str], params: dict | None = None) -> pd.DataFrame:
        texts = model_input["text"].astype(str).tolist() if isinstance(model_input, pd.DataFrame) else list(model_input)
        return predictions_frame(self.predictor.predict(texts))


def predictions_frame(predictions: list[dict[str, Any]]) -> pd.DataFrame:
    """Columns: `labels` (list of str) and `scores` (label → float) for a classifier; `entities` (list of
    {label, start, end, text, score}) for an NER model; the predictor's own values, not re-encoded."""
    frame = pd.DataFrame(index=range(len(predictions)))
    if predictions and "labels" in predictions[0]:
        frame["labels"] = [p["labels"] for p in predictions]
        frame["scores"] = [p["scores"] for p in predictions]
    if predictions and "entities" in predictions[0]:
        frame["entities"] = [p["entities"] for p in predictions]
    return frame


def signature(kind: str, labels: list[str]) -> ModelSignature:
    """Stated, not inferred: `infer_signature` cannot type an example whose spans or labels are all empty (a
    tiny or cautious model), and `scores` is an object with one double per label of the model, all present."""
    inputs = Schema([ColSpec(DataType.string, "text")])
    if kind == "classifier":
        outputs = Schema([
            ColSpec(Array(DataType.string), "labels"),
            ColSpec(Object([Property(label, DataType.double) for label in labels]), "scores"),
        ])
    else:
        outputs = Schema([ColSpec(Array(ENTITY), "entities")])
    return ModelSignature(inputs=inputs, outputs=outputs)
