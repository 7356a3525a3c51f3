"""Request and response bodies of the HTTP API (they also make the OpenAPI schema and its examples).

Content rules that do not depend on the config live here (non-empty text, no unpaired surrogates); size
limits are config-dependent and checked by the routes, which answer 413 naming the offending item.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Task = Literal["classifier", "ner"]

EXAMPLE_TEXTS = [
    "Russian missiles struck Kyiv overnight, the mayor said, as air defences shot down 20 Shahed drones.",
    "Subscribe to our newsletter for the latest updates.",
]


class Request(BaseModel):
    # Unknown keys are refused: a misspelt "task" must not silently run every task.
    model_config = ConfigDict(extra="forbid")


def check_text(text: str, where: str) -> str:
    if not text.strip():
        raise ValueError(f"{where} is empty or whitespace only")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # "\ud800" is valid JSON but no valid text: the tokenizer would choke
        raise ValueError(f"{where} contains an unpaired surrogate at character {err.start}") from None
    return text


class PredictRequest(Request):
    texts: list[str] = Field(min_length=1, description="Paragraphs to predict, answered in the same order.")
    tasks: list[Task] | None = Field(default=None, min_length=1,
                                     description="Which models to run; default: every loaded model.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": EXAMPLE_TEXTS}, {"texts": EXAMPLE_TEXTS[:1], "tasks": ["ner"]}]})

    @field_validator("texts")
    @classmethod
    def _texts(cls, texts: list[str]) -> list[str]:
        for index, text in enumerate(texts):
            check_text(text, f"texts[{index}]")
        return texts


class ArticleRequest(Request):
    id: str | None = Field(default=None, max_length=512, description="Echoed back.")
    text: str | None = Field(default=None, description="Article text; paragraphs are separated by blank lines.")
    html: str | None = Field(default=None, description="Article HTML; block elements become paragraphs.")
    tasks: list[Task] | None = Field(default=None, min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "a1", "text": "Kyiv came under attack overnight.\n\nSubscribe to our newsletter."},
        {"id": "a2", "html": "<html><body><h1>Strikes on Odesa</h1><p>Russia launched drones at Odesa.</p>"
                             "</body></html>"},
    ]})

    @model_validator(mode="after")
    def _one_source(self) -> ArticleRequest:
        if (self.text is None) == (self.html is None):
            raise ValueError("give exactly one of 'text' or 'html'")
        check_text(self.text if self.text is not None else self.html or "", "text" if self.text is not None
                   else "html")
        return self


class Entity(BaseModel):
    start: int = Field(description="Character offset in the text (Unicode code points), inclusive.")
    end: int = Field(description="Character offset, exclusive.")
    label: str
    score: float
    text: str


class Prediction(BaseModel):
    labels: list[str] | None = Field(
        default=None, description="Topics at or over their threshold (absent when the classifier did not run).")
    scores: dict[str, float] | None = Field(default=None, description="Sigmoid score per topic.")
    entities: list[Entity] | None = Field(default=None, description="Absent when the NER model did not run.")


class ModelDescription(BaseModel):
    name: str
    version: str | None = Field(description="Registry version; null for a model dir.")
    alias: str | None = Field(description="Registry alias the version was found through.")
    source: str
    backend: str


def _example_prediction() -> dict:
    """The OpenAPI example for EXAMPLE_TEXTS[0], in the configured label schema's names (configs/labels.yaml)."""
    from frontwire.schema import load_schema

    schema = load_schema()
    topics = schema.topic_names
    text = EXAMPLE_TEXTS[0]
    spans = [{"start": text.index(name), "end": text.index(name) + len(name), "label": label, "score": score,
              "text": name} for name, label, score in (("Kyiv", "LOC", 0.98), ("Shahed drones", "WEAPON", 0.91))]
    return {
        "labels": topics[:1],
        "scores": {name: 0.93 if i == 0 else 0.04 for i, name in enumerate(topics)},
        "entities": [span for span in spans if span["label"] in schema.entity_names],
    }


EXAMPLE_PREDICTION = _example_prediction()
EXAMPLE_MODELS = {"classifier": {"name": "frontwire-classifier", "version": "3", "alias": "champion",
                                 "source": "models:/frontwire-classifier@champion", "backend": "onnx"},
                  "ner": {"name": "frontwire-ner", "version": "2", "alias": "champion",
                          "source": "models:/frontwire-ner@champion", "backend": "onnx"}}


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    models: dict[str, ModelDescription]

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"predictions": [EXAMPLE_PREDICTION], "models": EXAMPLE_MODELS}]})


class ParagraphPrediction(Prediction):
    index: int
    start: int = Field(description="Offset of the paragraph in the article text (for HTML: in `text`).")
    end: int
    text: str


class ArticleResponse(BaseModel):
    id: str | None = None
    text: str | None = Field(default=None, description="For HTML input: the extracted text the offsets index.")
    paragraphs: list[ParagraphPrediction]
    models: dict[str, ModelDescription]


class ReloadRequest(Request):
    classifier: str | None = Field(default=None, description="Model dir or models:/name@alias; default: config.")
    ner: str | None = None


class ReloadResponse(BaseModel):
    changed: bool
    models: dict[str, ModelDescription]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, naming the offending item.")
    errors: list[dict[str, str]] | None = None
