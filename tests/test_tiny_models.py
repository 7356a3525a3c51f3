"""The shared tiny-model fixture produces real, loadable, registered models."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from frontwire.modeling import ModelMeta
from frontwire.predictor import Predictor
from frontwire.schema import load_schema


def test_tiny_models_load_predict_and_are_registered(tiny_models) -> None:
    schema = load_schema()
    predictor = Predictor(tiny_models.classifier_dir, tiny_models.ner_dir)
    texts = ["Russian missiles struck Kyiv overnight, officials said.", "Subscribe to our newsletter 🚀"]
    predictions = predictor.predict(texts)
    assert len(predictions) == 2
    for prediction, text in zip(predictions, texts, strict=True):
        assert set(prediction["scores"]) == set(schema.topic_names)
        assert set(prediction["labels"]) <= set(schema.topic_names)
        for entity in prediction["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] in schema.entity_names
    meta = ModelMeta.load(tiny_models.classifier_dir)
    assert set(meta.thresholds) == set(schema.topic_names)
    for name in ("frontwire-classifier", "frontwire-ner"):
        version = MlflowClient(tracking_uri=tiny_models.tracking_uri).get_model_version_by_alias(name, "candidate")
        assert int(version.version) >= 1
    mlflow.set_tracking_uri(tiny_models.tracking_uri)
    frame = mlflow.pyfunc.load_model("models:/frontwire-classifier@candidate").predict(
        __import__("pandas").DataFrame({"text": texts})
    )
    assert list(frame.columns) == ["labels", "scores"] and len(frame) == 2
